"""The import-layer contract: mmsk's modules import downward only.

Every module under ``mmsk/`` is parsed with ``ast``; every import of an mmsk
module counts, at module level, inside functions, under ``TYPE_CHECKING``,
and ``importlib.import_module("mmsk....")`` with a literal name.  A unit (a
top-level module or sub-package of mmsk) may import its own modules and the
units of lower layers; nothing else, except the few function-level imports in
``ALLOWED`` (each with its reason).  docs/design.md draws the same table.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mmsk

# Lowest first.  Units of one layer are independent of each other.
LAYERS: list[set[str]] = [
    {"exceptions", "_docs"},
    {"_backend", "_batch", "_config", "_validation"},
    {"_infer", "layers", "plugins", "datasets"},
    {"mmsk", "preprocessing", "components"},  # "mmsk": the package root (version, lazy names)
    {"_persist", "_export"},
    {"models"},
    {"tuning", "testing"},
    {"widgets"},
    {"_demo"},
    {"__main__"},
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}

# (importing module, imported unit) -> why this upward import is right.  Function-level only.
ALLOWED = {
    ("mmsk.models._base", "widgets"): (
        "fit(monitor=True) makes a widgets.TrainingMonitor, imported only when asked for"
    ),
    ("mmsk.models._base", "tuning"): (
        "estimator.to_hypermodel() is a shortcut of mmsk.tuning.to_hypermodel"
    ),
}

ROOT = Path(mmsk.__file__).parent


def _lazy_names(source: str) -> dict[str, str]:
    """``mmsk/__init__.py``'s ``_LAZY`` table: top-level name -> module defining it."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "_LAZY":
            return ast.literal_eval(node.value)
    return {}


def _from_root(name: str, lazy: dict[str, str]) -> str:
    """What ``from mmsk import name`` imports: a submodule, a lazy name's module, or the root."""
    if (ROOT / name).is_dir() or (ROOT / f"{name}.py").is_file():
        return f"mmsk.{name}"
    return lazy.get(name, "mmsk")


def unit_of(module: str) -> str:
    """The layer unit of a dotted module name: ``mmsk.models._base`` -> ``models``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "mmsk"


def _imports(module: str, source: str, lazy: dict[str, str], is_package: bool):
    """Yield (imported module, line, at module level) for every mmsk import in ``source``."""
    tree = ast.parse(source)
    in_function = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for inner in ast.walk(node)
    }
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        found: list[str] = []
        if isinstance(node, ast.Import):
            found = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            if base == "mmsk":  # from mmsk import x: a submodule, a lazy name, or the root
                found = [_from_root(a.name, lazy) for a in node.names]
            else:
                found = [base]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found = [node.args[0].value]
        for name in found:
            if name == "mmsk" or name.startswith("mmsk."):
                yield name, node.lineno, id(node) not in in_function


def violations(sources: dict[str, tuple[str, bool]], lazy: dict[str, str]) -> list[str]:
    """Upward or sideways imports in ``sources`` (module -> (source, is_package))."""
    found = []
    for module, (source, is_package) in sorted(sources.items()):
        here = unit_of(module)
        if here not in RANK:
            found.append(f"{module}: unit {here!r} is in no layer of LAYERS")
            continue
        for target, line, module_level in _imports(module, source, lazy, is_package):
            there = unit_of(target)
            if there == here:
                continue
            if there not in RANK:
                found.append(f"{module}:{line} imports {target}: unit {there!r} has no layer")
            elif RANK[there] >= RANK[here] and (module_level or (module, there) not in ALLOWED):
                where = "at module level" if module_level else "in a function"
                found.append(
                    f"{module}:{line} imports {target} {where}: {there!r} (layer {RANK[there]}) "
                    f"is not below {here!r} (layer {RANK[here]})"
                )
    return found


def package_sources() -> dict[str, tuple[str, bool]]:
    sources = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        sources[module] = (path.read_text(encoding="utf-8"), is_package)
    return sources


LAZY = _lazy_names((ROOT / "__init__.py").read_text(encoding="utf-8"))


def test_every_import_goes_down_the_layers():
    assert violations(package_sources(), LAZY) == []


def test_every_unit_has_a_layer():
    units = {unit_of(m) for m in package_sources()}
    assert units <= set(RANK), sorted(units - set(RANK))


def test_allowed_upward_imports_are_still_used():
    used = set()
    for module, (source, is_package) in package_sources().items():
        for target, _, _ in _imports(module, source, LAZY, is_package):
            used.add((module, unit_of(target)))
    assert set(ALLOWED) <= used, sorted(set(ALLOWED) - used)


@pytest.mark.parametrize(
    "module, source",
    [
        ("mmsk.preprocessing._new", "from mmsk.models import MultimodalClassifier\n"),
        ("mmsk.preprocessing._new", "def f():\n    from mmsk.models import _training\n"),
        ("mmsk.models._new", "def f():\n    import mmsk.tuning._search\n"),
        ("mmsk.layers._new", "import importlib\nimportlib.import_module('mmsk.components')\n"),
        ("mmsk._persist._new", "from mmsk import KerasTunerSearchCV\n"),
        ("mmsk.components._new", "from ..preprocessing import TextVectorizer\n"),
        ("mmsk.models._base", "from mmsk.widgets import TrainingMonitor\n"),  # allowed lazily only
        ("mmsk.preprocessing", "if True:\n    from mmsk.components import Encoder\n"),
    ],
)
def test_an_upward_import_is_caught(module, source):
    sources = {module: (source, module == "mmsk.preprocessing")}
    found = violations(sources, LAZY)
    assert len(found) == 1 and module in found[0] and "is not below" in found[0], found


def test_downward_and_allowed_imports_pass():
    sources = {
        "mmsk.models._new": ("from mmsk.preprocessing import TextVectorizer\n", False),
        "mmsk.tuning._new": ("def f():\n    from mmsk import save\n", False),
        "mmsk.models._base": ("def f():\n    from mmsk.widgets import TrainingMonitor\n", False),
    }
    assert violations(sources, LAZY) == []


def test_layers_are_written_down_in_the_design_page():
    page = (ROOT.parent / "docs" / "design.md").read_text(encoding="utf-8")
    for layer in LAYERS:
        for unit in layer:
            assert f"`{unit}`" in page, unit
