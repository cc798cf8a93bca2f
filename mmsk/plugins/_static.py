"""Read an encoder's ``kinds`` from its source file without importing it."""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path


def _module_file(ep: metadata.EntryPoint, module: str) -> Path | None:
    """The source file of ``module``, found through the distribution's file list."""
    parts = module.split(".")
    candidates = ["/".join(parts) + ".py", "/".join(parts) + "/__init__.py"]
    for f in (ep.dist.files or []) if ep.dist is not None else []:
        if str(f).replace("\\", "/") in candidates:
            return Path(str(ep.dist.locate_file(f)))  # type: ignore[union-attr]
    # Editable installs list no sources: use an already imported top-level package.
    top = sys.modules.get(parts[0])
    root = getattr(top, "__file__", None)
    if root is None:
        return None
    base = Path(root).parent.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def static_kinds(ep: metadata.EntryPoint) -> tuple[str, ...] | None:
    """``kinds`` of the class an entry point names, if written as a literal in its body.

    Returns None when the file cannot be found or the value is not a literal.
    """
    module, _, attr = ep.value.partition(":")
    attr = attr.split("[")[0].strip()
    path = _module_file(ep, module.strip())
    if path is None or not attr:
        return None
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == attr:
            return _literal_kinds(node)
    return None


def _literal_kinds(node: ast.ClassDef) -> tuple[str, ...] | None:
    for stmt in node.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "kinds" for t in targets):
            try:
                return tuple(str(k) for k in ast.literal_eval(value))
            except (ValueError, TypeError):
                return None
    return None
