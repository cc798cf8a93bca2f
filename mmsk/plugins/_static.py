"""Read an encoder's ``kinds`` from its source file without importing it.

The source is found through the distribution's file list (a regular install)
or, for editable installs and source trees on ``sys.path``, through the import
system's finders, which locate a top-level package without running it.  A
class re-exported by ``from ._encoder import X`` in a package ``__init__`` is
followed to the module that defines it.
"""

from __future__ import annotations

import ast
import importlib.util
from importlib import metadata
from pathlib import Path

_MAX_HOPS = 4  # re-exports followed from the entry point's module to the class


def _from_dist(ep: metadata.EntryPoint, parts: list[str]) -> Path | None:
    candidates = {"/".join(parts) + ".py", "/".join(parts) + "/__init__.py"}
    for f in (ep.dist.files or []) if ep.dist is not None else []:
        if str(f).replace("\\", "/") in candidates:
            path = Path(str(ep.dist.locate_file(f)))  # type: ignore[union-attr]
            if path.is_file():
                return path
    return None


def _from_finders(parts: list[str]) -> Path | None:
    """Locate ``a.b.c``'s file from the top-level package's spec; imports nothing."""
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: no parent to import
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if len(parts) == 1:
        origin = spec.origin
        return Path(origin) if origin and origin.endswith(".py") else None
    for location in spec.submodule_search_locations or []:
        base = Path(location).joinpath(*parts[1:])
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return path
    return None


def module_file(ep: metadata.EntryPoint, module: str) -> Path | None:
    """The source file of ``module``, in whichever way its distribution was installed."""
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    return _from_dist(ep, parts) or _from_finders(parts)


def static_kinds(ep: metadata.EntryPoint) -> tuple[str, ...] | None:
    """``kinds`` of the class an entry point names, if written as a literal in its body.

    Returns None when the file cannot be found or the value is not a literal.
    """
    module, _, attr = ep.value.partition(":")
    attr = attr.split("[")[0].strip()
    module = module.strip()
    if not attr or "." in attr:
        return None
    for _ in range(_MAX_HOPS):
        path = module_file(ep, module)
        tree = _parse(path) if path is not None else None
        if path is None or tree is None:
            return None
        found = _class_or_import(tree, attr, module, is_package=path.name == "__init__.py")
        if isinstance(found, tuple):
            return found
        if found is None:
            return None
        module, attr = found.split(":")
    return None


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def _class_or_import(
    tree: ast.Module, attr: str, module: str, *, is_package: bool
) -> tuple[str, ...] | str | None:
    """The class's literal kinds, or ``"module:name"`` it is imported from, or None."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == attr:
            return _literal_kinds(node)
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == attr:
                    source = _absolute(node, module, is_package)
                    return f"{source}:{alias.name}" if source else None
    return None


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    if node.level == 0:
        return node.module
    base = module.split(".")
    drop = node.level - 1 if is_package else node.level
    if drop > len(base) - 1 + (1 if is_package else 0):
        return None
    anchor = base[: len(base) - drop] if drop else base
    return ".".join([*anchor, *([node.module] if node.module else [])])


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
            except (ValueError, TypeError, SyntaxError):
                return None
    return None
