"""Red-team catalogue for mmsk.load: crafted files that try to run code, hang, or destroy.

Every crafted file starts as a real save and is edited as an attacker would
(see ``_crafted.py``).  A payload's only effect is a marker file in the test's
own temporary folder; each test asserts that the documented mmsk error is
raised, that the marker never appears and that nothing under the test's folder
changed (the load runs with that folder's ``cwd`` subfolder as working
directory).  Files that could hang or exhaust memory are loaded in a child
process with a time and memory limit, so a regression fails instead of hanging.
When a new hole is found, add its file here first.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _crafted import (
    SYMLINK,
    Entry,
    array_key,
    copy_save,
    edit_config,
    edit_keras_config,
    entry,
    estimator,
    folder_entries,
    keras_layers,
    keras_members,
    load_isolated,
    npy_header,
    raw_zip,
    read_config,
    read_npz,
    snapshot,
    write_keras,
    write_npz,
    zeros_bomb,
    zip_members,
)
from sklearn.base import clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import mmsk
from mmsk.exceptions import PersistenceError, UnsafeFileError

TOUCH = shutil.which("touch") or "/usr/bin/touch"
ISO = ":IsotonicRegression"
LOGREG = ":LogisticRegression"
SCALER = ":StandardScaler"
FUNC = ":FunctionTransformer"
CLF = ":MultimodalClassifier"


# ---- fitted models, saved once per module ------------------------------------------------


@dataclass
class Bases:
    X: np.ndarray  # 30 x 3 numbers
    clf: Any
    clf_save: Path  # MultimodalClassifier on X, two classes
    other_model: Path  # a .keras model with other inputs (numbers and text) and three classes
    iso: Any
    iso_save: Path
    pipe: Any
    pipe_save: Path  # log1p -> StandardScaler -> LogisticRegression


def _text_frame(n: int = 30) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, n)
    colours = np.array(["red", "green", "blue"])
    frame = pd.DataFrame(
        {"size": y + rng.normal(0, 0.3, n), "caption": [f"a {c} thing" for c in colours[y]]}
    )
    return frame, colours[y]


def _other_model(path: Path) -> Path:
    from mmsk import _backend

    keras = _backend.keras()
    numbers, words = keras.Input((5,), name="numeric"), keras.Input((4,), name="caption")
    merged = keras.layers.Concatenate()([numbers, keras.layers.Flatten()(
        keras.layers.Embedding(10, 2)(words))])  # fmt: skip
    keras.Model([numbers, words], keras.layers.Dense(3, activation="softmax")(merged)).save(path)
    return path


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Bases:
    root = tmp_path_factory.mktemp("bases")
    X = np.random.default_rng(1).normal(size=(30, 3))
    y = np.where(X[:, 0] > 0, "yes", "no")
    clf = mmsk.MultimodalClassifier(epochs=1, random_state=0).fit(X, y)
    iso = IsotonicRegression().fit(X[:, 0], X[:, 1])
    pipe = make_pipeline(
        FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression()
    ).fit(np.abs(X), y)
    return Bases(
        X=X,
        clf=clf,
        clf_save=mmsk.save(clf, root / "clf"),
        other_model=_other_model(root / "other.keras"),
        iso=iso,
        iso_save=mmsk.save(iso, root / "iso"),
        pipe=pipe,
        pipe_save=mmsk.save(pipe, root / "pipe"),
    )


# ---- one crafted file, watched -----------------------------------------------------------


class Hung(BaseException):
    """Raised by the alarm; a BaseException so no ``except Exception`` can swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def ring(signum: int, frame: Any) -> None:
        raise Hung(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Scene:
    root: Path  # the test's folder: everything under it is watched
    marker: Path  # what a payload would create
    cwd: Path  # the working directory during the load

    def copy(self, base: Path, name: str = "save") -> Path:
        return copy_save(base, self.root / name)

    def to_zip(
        self, folder: Path, entries: list[Entry] | None = None, name: str = "save.zip"
    ) -> Path:
        """The folder save zipped as ``entries`` (default: its files); the folder is removed."""
        entries = folder_entries(folder) if entries is None else entries
        path = self.root / name
        path.write_bytes(raw_zip(entries))
        shutil.rmtree(folder)
        return path

    def refuses(
        self,
        path: Path,
        error: type[BaseException],
        *words: str,
        use: Callable[[Any], Any] | None = None,
        not_error: type[BaseException] | None = None,
        seconds: float = 60,
        settle: bool = False,
        **load_kwargs: Any,
    ) -> BaseException:
        """Load ``path`` and ``use`` it; expect ``error`` naming ``words``, and no effect."""
        before = snapshot(self.root)
        caught: BaseException | None = None
        try:
            with time_limit(seconds):
                loaded = mmsk.load(path, **load_kwargs)
                if use is not None:
                    with contextlib.suppress(Exception):
                        use(loaded)
        except BaseException as exc:  # Hung too: it must fail the test
            caught = exc
        if settle:
            time.sleep(0.5)  # a process the payload started would have touched the marker
        assert not self.marker.exists(), f"the payload ran ({caught!r})"
        assert snapshot(self.root) == before, "the load changed files in the test's folder"
        assert isinstance(caught, error), f"Expected {error.__name__}. Received: {caught!r}"
        if not_error is not None:
            assert not isinstance(caught, not_error), f"{caught!r} is a {not_error.__name__}"
        for word in words:
            assert re.search(word, str(caught), re.IGNORECASE), (word, str(caught))
        return caught

    def refuses_isolated(
        self, path: Path, *words: str, seconds: float = 30, max_mb: float = 900
    ) -> dict[str, Any]:
        """Like :meth:`refuses` with PersistenceError, in a child with time and memory limits."""
        before = snapshot(self.root)
        result = load_isolated(path, self.cwd, timeout=seconds, rss_limit_mb=1500)
        assert "killed" not in result, result["killed"]
        assert not self.marker.exists()
        assert snapshot(self.root) == before
        assert result["persistence"], f"Expected PersistenceError. Received: {result}"
        for word in words:
            assert re.search(word, result["message"], re.IGNORECASE), (word, result["message"])
        assert result["seconds"] < 20, result
        assert result["maxrss_mb"] < max_mb, result
        return result


@pytest.fixture
def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scene:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return Scene(root=tmp_path, marker=tmp_path / "MARKER", cwd=cwd)


def _type(name: str) -> dict[str, Any]:
    return {"$": "type", "class": name}


def _ufunc(name: str) -> dict[str, Any]:
    return {"$": "ufunc", "name": name}


# ---- 1. attribute chains from each trusted root ------------------------------------------

POPEN_CHAINS = [
    "mmsk._batch:np.f2py.subprocess.Popen",  # the example
    "sklearn.base:np.f2py.subprocess.Popen",
    "sklearn:utils.validation.np.f2py.subprocess.Popen",
    "numpy:f2py.subprocess.Popen",
    "numpy.f2py:subprocess.Popen",
]
FILE_CHAINS = [
    "mmsk:_persist.io.FileIO",
    "sklearn.base:inspect.dis.io.FileIO",
    "mmsk:_backend.logging.FileHandler",
]
OTHER_CHAINS = [
    "mmsk._batch:np.ctypeslib.ctypes.CDLL",
    "sklearn.utils:validation.np.ctypeslib.ctypes.CDLL",
    "mmsk:_backend.logging.threading.Thread",
]


def _isotonic_gadget(scene: Scene, bases: Bases, cls: str, first: Any, second: Any) -> Path:
    """IsotonicRegression.__setstate__ calls ``self._build_f(X_thresholds_, y_thresholds_)``."""
    path = scene.copy(bases.iso_save)

    def edit(config: dict[str, Any]) -> None:
        state = estimator(config, ISO)["state"]
        state.update(_build_f=_type(cls), X_thresholds_=first, y_thresholds_=second)

    edit_config(path, edit)
    return path


@pytest.mark.parametrize("chain", POPEN_CHAINS)
def test_a_popen_reached_through_module_attributes_never_runs(scene, bases, chain):
    path = _isotonic_gadget(scene, bases, chain, [TOUCH, str(scene.marker)], 0)
    scene.refuses(path, UnsafeFileError, re.escape(chain), settle=True)


@pytest.mark.parametrize("chain", FILE_CHAINS)
def test_a_file_class_reached_through_module_attributes_never_opens(scene, bases, chain):
    path = _isotonic_gadget(scene, bases, chain, str(scene.marker), "w")
    scene.refuses(path, UnsafeFileError, re.escape(chain))


@pytest.mark.parametrize("chain", OTHER_CHAINS)
def test_ctypes_and_threads_reached_through_module_attributes_are_refused(scene, bases, chain):
    first, second = ("libc.so.6", 0) if "CDLL" in chain else (None, None)
    path = _isotonic_gadget(scene, bases, chain, first, second)
    scene.refuses(path, UnsafeFileError, re.escape(chain))


@pytest.mark.parametrize("chain", POPEN_CHAINS + FILE_CHAINS)
def test_reviewing_a_crafted_file_runs_and_imports_nothing(scene, bases, chain):
    first = [TOUCH, str(scene.marker)] if "Popen" in chain else str(scene.marker)
    path = _isotonic_gadget(scene, bases, chain, first, 0 if "Popen" in chain else "w")
    before, modules = snapshot(scene.root), set(sys.modules)
    with time_limit(60):
        found = mmsk.get_untrusted_types(path)
    time.sleep(0.3)
    assert chain in found
    assert not scene.marker.exists() and snapshot(scene.root) == before
    assert not {m for m in set(sys.modules) - modules if "f2py" in m or "ctypes" in m}


@pytest.mark.parametrize(
    "name",
    [
        "sklearn.preprocessing:StandardScaler",  # the same class, re-exported
        "sklearn:preprocessing.StandardScaler",  # the same class, through a module
        "mmsk._batch:np.f2py.subprocess.Popen",
    ],
)
def test_an_estimator_class_must_be_named_exactly(scene, bases, name):
    path = scene.copy(bases.pipe_save)
    edit_config(path, lambda c: estimator(c, SCALER).update({"class": name}))
    scene.refuses(path, UnsafeFileError, re.escape(name))


# ---- 2. callable type nodes --------------------------------------------------------------


def _function_transformer(scene: Scene, bases: Bases, func: Any, kw_args: Any = None) -> Path:
    path = scene.copy(bases.pipe_save)

    def edit(config: dict[str, Any]) -> None:
        params = estimator(config, FUNC)["params"]
        params.update(func=func, kw_args=kw_args, validate=False)

    edit_config(path, edit)
    return path


def test_a_function_transformer_running_popen_on_predict_is_refused(scene, bases):
    kw_args = {"$": "dict", "items": [["executable", TOUCH]]}
    path = _function_transformer(scene, bases, _type(POPEN_CHAINS[0]), kw_args)
    victim = np.array(["photo.png", str(scene.marker)])  # any text column the victim predicts on

    use = lambda m: m.predict(victim)  # noqa: E731
    scene.refuses(path, UnsafeFileError, re.escape(POPEN_CHAINS[0]), use=use, settle=True)


@pytest.mark.parametrize(
    "name", ["builtins:eval", "builtins:exec", "builtins:getattr", "os:system", "subprocess:Popen"]
)
def test_a_type_node_naming_a_builtin_callable_is_refused(scene, bases, name):
    path = _function_transformer(scene, bases, _type(name))
    scene.refuses(path, UnsafeFileError, re.escape(name), use=lambda m: m.predict(bases.X))


@pytest.mark.parametrize(
    "name",
    [
        "sklearn.preprocessing._data:StandardScaler.__class__",  # a metaclass: it makes classes
        "sklearn.preprocessing._data:StandardScaler.__init__",
        "mmsk.components._encoders:CNNEncoder.__class__",  # from an entry point's module
        "mmsk.components._encoders:CNNEncoder.__init__.__globals__",
    ],
)
def test_a_type_reached_through_a_trusted_class_is_refused(scene, bases, name):
    path = _function_transformer(scene, bases, _type(name))
    scene.refuses(path, UnsafeFileError, re.escape(name), use=lambda m: m.predict(bases.X))


@pytest.mark.parametrize("name", ["load", "save", "fromfile", "lib.npyio.DataSource"])
def test_a_ufunc_node_naming_something_else_is_refused(scene, bases, name):
    path = _function_transformer(scene, bases, _ufunc(name))
    scene.refuses(path, UnsafeFileError, re.escape(name))


# ---- 3. state that would replace behaviour -----------------------------------------------


@pytest.mark.parametrize(
    "suffix, key",
    [
        (LOGREG, "predict"),
        (SCALER, "transform"),
        (LOGREG, "__class__"),
        (LOGREG, "__dict__"),
        (LOGREG, "__reduce__"),
        (SCALER, "__setstate__"),
        (ISO, "_build_f"),
        (LOGREG, "fit"),
        (CLF, "predict_proba"),
        (CLF, "_encode_known_target"),  # a private method of the estimator
    ],
)
def test_state_cannot_set_a_method_or_dunder(scene, bases, suffix, key):
    base = {ISO: bases.iso_save, CLF: bases.clf_save}.get(suffix, bases.pipe_save)
    path = scene.copy(base)
    value = (
        {"$": "dict", "items": [["coef_", 1]]} if key == "__dict__" else _ufunc("negative")
    )  # harmless values that load on their own: only the key is wrong
    edit_config(path, lambda c: estimator(c, suffix)["state"].update({key: value}))
    scene.refuses(path, UnsafeFileError, re.escape(key), use=lambda m: m.predict(bases.X))


@pytest.mark.parametrize(
    "suffix, key, value",
    [
        ("sklearn.pipeline:Pipeline", "named_steps", {"$": "dict", "items": []}),  # a property
        (LOGREG, "max_iter", 7),  # a parameter, set again as state
        (LOGREG, "_parameter_constraints", {"$": "dict", "items": []}),  # a class attribute
    ],
)
def test_state_holds_only_fitted_attributes(scene, bases, suffix, key, value):
    path = scene.copy(bases.pipe_save)
    edit_config(path, lambda c: estimator(c, suffix)["state"].update({key: value}))
    scene.refuses(path, PersistenceError, re.escape(key))


@pytest.mark.parametrize(
    "value",
    [_type("sklearn.preprocessing._data:StandardScaler"), {"$": "array", "key": "a0"}, "model"],
)
def test_a_model_attribute_must_hold_a_model(scene, bases, value):
    path = scene.copy(bases.clf_save)
    edit_config(path, lambda c: estimator(c, CLF)["state"].update(model_=value))
    scene.refuses(path, PersistenceError, "model_", use=lambda m: m.predict(bases.X))


# ---- 4. Keras constructs that carry code -------------------------------------------------


def _dense(config: dict[str, Any]) -> dict[str, Any]:
    return keras_layers(config, "Dense")[0]


def _lambda_layer(scene: Scene) -> dict[str, Any]:
    from mmsk import _backend

    keras = _backend.keras()
    marker = str(scene.marker)
    layer = keras.layers.Lambda(lambda x, path=marker: (open(path, "w").close(), x)[1])
    return dict(keras.saving.serialize_keras_object(layer))


def _evil_module(scene: Scene) -> str:
    """A module on sys.path that creates the marker when imported."""
    lib = scene.root / "lib"
    lib.mkdir(exist_ok=True)
    name = f"p2_evil_{os.getpid()}_{time.monotonic_ns()}"
    (lib / f"{name}.py").write_text(
        f"open({str(scene.marker)!r}, 'w').close()\nclass Dense: pass\ndef get(*a): pass\n"
    )
    sys.path.insert(0, str(lib))
    return name


def _function(module: str, name: str) -> dict[str, Any]:
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


def _keras_edit(scene: Scene, kind: str) -> tuple[Callable[[dict[str, Any]], Any], str]:
    """An edit of the model's config.json and a word the refusal must name."""

    def layer(update: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
        return lambda c: _dense(c).update(update)

    def activation(node: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
        return lambda c: _dense(c)["config"].update(activation=node)

    if kind == "lambda_layer":
        lam = _lambda_layer(scene)

        def replace(config: dict[str, Any]) -> None:
            dense = _dense(config)
            lam["config"]["name"] = dense["config"]["name"]
            dense.update(module=lam["module"], class_name="Lambda", config=lam["config"])

        return replace, "Lambda"
    if kind == "lambda_in_nested_model":
        lam = _lambda_layer(scene)

        def nest(config: dict[str, Any]) -> None:
            dense = _dense(config)
            inner = {"name": dense["config"]["name"], "layers": [lam]}
            dense.update(module="keras", class_name="Sequential", config=inner)

        return nest, "Lambda"
    if kind == "lambda_as_loss":
        function = _lambda_layer(scene)["config"]["function"]
        return lambda c: c.setdefault("compile_config", {}).update(loss=function), "lambda"
    if kind == "lambda_activation":
        return activation(_lambda_layer(scene)["config"]["function"]), "lambda"
    if kind == "tfsm_layer":
        sm = {"name": "sm", "filepath": str(scene.root / "sm"), "call_endpoint": "serve"}
        return layer({"class_name": "TFSMLayer", "config": sm}), "TFSMLayer"
    if kind == "torch_module_wrapper":
        return layer({"class_name": "TorchModuleWrapper"}), "TorchModuleWrapper"
    if kind == "class_from_os":
        return layer({"module": "os", "class_name": "system", "registered_name": None}), "os"
    if kind == "class_from_subprocess":
        update = {"module": "subprocess", "class_name": "Popen", "registered_name": "Popen"}
        return layer(update), "Popen"
    if kind == "function_from_builtins":
        return activation(_function("builtins", "exec")), "exec"
    if kind == "function_from_os":
        return activation(_function("os", "system")), "system"
    if kind == "function_in_compile_config":

        def loss(config: dict[str, Any]) -> None:
            config.setdefault("compile_config", {})["loss"] = _function("os", "system")

        return loss, "system"
    if kind == "cve_2025_1550_module_import":
        module = _evil_module(scene)
        return layer({"module": module, "registered_name": f"{module}>Dense"}), module
    if kind == "cve_2025_8747_get_file":
        return activation(_function("keras.utils", "get_file")), "get_file"
    if kind == "cve_2025_8747_file_utils":
        return activation(_function("keras.src.utils.file_utils", "get_file")), "get_file"
    if kind == "cve_2025_9906_enable_unsafe":
        node = _function("keras.config", "enable_unsafe_deserialization")
        return activation(node), "enable_unsafe_deserialization"
    if kind == "unregistered_mmsk_class":
        update = {
            "module": "mmsk.layers._masking",
            "class_name": "NotRegistered",
            "registered_name": "mmsk>NotRegistered",
        }
        return layer(update), "NotRegistered"
    if kind == "registered_name_outside_mmsk":

        def rename(config: dict[str, Any]) -> None:
            keras_layers(config, "ApplyPresence")[0]["registered_name"] = "subprocess>Popen"

        return rename, "ApplyPresence"
    raise AssertionError(kind)


KERAS_CASES = [
    "lambda_layer",
    "lambda_activation",
    "lambda_in_nested_model",
    "lambda_as_loss",
    "tfsm_layer",
    "torch_module_wrapper",
    "class_from_os",
    "class_from_subprocess",
    "function_from_builtins",
    "function_from_os",
    "function_in_compile_config",
    "cve_2025_1550_module_import",
    "cve_2025_8747_get_file",
    "cve_2025_8747_file_utils",
    "cve_2025_9906_enable_unsafe",
    "unregistered_mmsk_class",
    "registered_name_outside_mmsk",
]


@pytest.mark.parametrize("kind", KERAS_CASES)
def test_a_keras_model_that_carries_code_is_refused(scene, bases, kind):
    from keras.src.backend.common import global_state

    path = scene.copy(bases.clf_save)
    edit, word = _keras_edit(scene, kind)
    modules = set(sys.modules)
    try:
        edit_keras_config(path, edit)
        scene.refuses(path, UnsafeFileError, re.escape(word), use=lambda m: m.predict(bases.X))
    finally:
        sys.path[:] = [p for p in sys.path if not p.startswith(str(scene.root))]
    assert not {m for m in set(sys.modules) - modules if m.startswith("p2_evil")}
    assert global_state.get_global_attribute("safe_mode_saving") is not False


# ---- 5. zip and folder tricks ------------------------------------------------------------


ESCAPES = [
    "../escaped",
    "/{root}/escaped",
    "models/../../escaped",
    "models\\..\\..\\escaped",
    "models/0.keras/../../escaped",
    "C:escaped",
]


@pytest.mark.parametrize("name", ESCAPES)
def test_a_member_outside_the_save_is_refused(scene, bases, name):
    name = name.format(root=str(scene.root).lstrip("/"))
    folder = scene.copy(bases.clf_save)
    path = scene.to_zip(folder, [*folder_entries(folder), entry(name, b"payload")])
    scene.refuses(path, PersistenceError, "escaped")
    assert not list(scene.root.rglob("escaped")) and not Path("/escaped").exists()


def test_a_model_file_name_outside_the_save_is_refused(scene, bases):
    path = scene.copy(bases.clf_save)
    outside = scene.root / "outside.keras"
    shutil.copyfile(path / "models" / "0.keras", outside)
    edit_config(path, lambda c: estimator(c, ":MultimodalClassifier")["state"]["model_"].update(
        file="models/../../outside.keras"))  # fmt: skip
    scene.refuses(path, PersistenceError, "outside")


@pytest.mark.parametrize("member", ["config.json", "arrays.npz", "models/0.keras"])
def test_a_member_given_twice_is_refused(scene, bases, member):
    folder = scene.copy(bases.clf_save)
    entries = folder_entries(folder)
    second = next(e for e in entries if e.name == member)
    if member == "config.json":  # the second copy would load another estimator
        config = read_config(folder)
        config["root"]["params"]["epochs"] = 99
        second = entry(member, json.dumps(config).encode())
    path = scene.to_zip(folder, [*entries, second])
    scene.refuses(path, PersistenceError, re.escape(member))


@pytest.mark.parametrize("member", ["config.json", "arrays.npz"])
def test_a_symlink_member_in_a_zip_is_refused(scene, bases, member):
    folder = scene.copy(bases.clf_save)
    entries = [
        entry(e.name, b"/etc/passwd", external_attr=SYMLINK) if e.name == member else e
        for e in folder_entries(folder)
    ]
    scene.refuses(scene.to_zip(folder, entries), PersistenceError, re.escape(member))


def test_a_fifo_named_config_json_does_not_hang(scene, bases):
    path = scene.copy(bases.clf_save)
    (path / "config.json").unlink()
    os.mkfifo(path / "config.json")
    scene.refuses_isolated(path, "config.json")


@pytest.mark.parametrize("target", ["/dev/zero", "outside"])
def test_config_json_linking_out_of_the_save_is_refused(scene, bases, target):
    path = scene.copy(bases.clf_save)
    outside = scene.root / "outside.json"
    shutil.copyfile(path / "config.json", outside)
    (path / "config.json").unlink()
    if target == "/dev/zero":  # a regression would read forever: in a child with limits
        (path / "config.json").symlink_to("/dev/zero")
        scene.refuses_isolated(path, "config.json")
    else:
        (path / "config.json").symlink_to(outside)
        scene.refuses(path, PersistenceError, "config.json")


def test_a_model_linking_out_of_the_save_is_refused(scene, bases):
    path = scene.copy(bases.clf_save)
    outside = scene.root / "outside.keras"
    shutil.move(path / "models" / "0.keras", outside)
    (path / "models" / "0.keras").symlink_to(outside)
    scene.refuses(path, PersistenceError, re.escape("models/0.keras"))


def test_a_models_folder_linking_out_of_the_save_is_refused(scene, bases):
    path = scene.copy(bases.clf_save)
    outside = scene.root / "outside_models"
    shutil.move(path / "models", outside)
    (path / "models").symlink_to(outside)
    scene.refuses(path, PersistenceError, "models")


def test_a_folder_where_a_member_should_be_is_refused(scene, bases):
    path = scene.copy(bases.clf_save)
    (path / "arrays.npz").unlink()
    (path / "arrays.npz").mkdir()
    scene.refuses(path, PersistenceError, re.escape("arrays.npz"))


@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_a_save_path_that_is_not_a_regular_file_does_not_hang(scene, target):
    path = scene.root / "model.zip"
    if target == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(target)
    scene.refuses_isolated(path, "model.zip")


@pytest.mark.parametrize("extra", ["../../escaped", "assets/../../../escaped", "payload.so"])
def test_a_keras_file_with_unexpected_members_is_refused(scene, bases, extra):
    path = scene.copy(bases.clf_save)
    members = keras_members(path)
    members[extra] = b"\x7fELF payload"
    write_keras(path, members)
    scene.refuses(path, PersistenceError, re.escape(extra.rsplit("/", 1)[-1]))
    assert not list(scene.root.rglob("escaped"))


@pytest.mark.parametrize("field", ["encrypted", "method"])
def test_zip_headers_that_zipfile_would_not_handle_are_refused(scene, bases, field):
    folder = scene.copy(bases.clf_save)
    entries = folder_entries(folder)
    for e in entries:
        if e.name == "config.json":
            if field == "encrypted":
                e.flags |= 0x1
            else:
                e.method = 99  # AE-x / an unknown method
    scene.refuses(scene.to_zip(folder, entries), PersistenceError, "config.json")


def test_a_zip_bomb_is_refused_quickly_and_in_little_memory(scene, bases):
    folder = scene.copy(bases.clf_save)
    config = (folder / "config.json").read_bytes()
    size = len(config) + (1 << 30)  # 1 GiB of JSON whitespace after a valid configuration
    entries = [
        zeros_bomb("config.json", size, head=config) if e.name == "config.json" else e
        for e in folder_entries(folder)
    ]
    path = scene.to_zip(folder, entries)
    assert path.stat().st_size < 8 << 20
    scene.refuses_isolated(path, "config.json", max_mb=600)


def test_a_member_declaring_a_huge_size_is_refused(scene, bases):
    folder = scene.copy(bases.clf_save)
    entries = folder_entries(folder)
    for e in entries:
        if e.name == "config.json":
            e.size = 4_000_000_000
    scene.refuses(scene.to_zip(folder, entries), PersistenceError, "config.json")


# ---- 6. damaged and oversized ------------------------------------------------------------


def _npz_member(folder: Path, mutate: Callable[[Entry], Any], deflated: bool = False) -> None:
    """Rewrite arrays.npz with ``mutate`` applied to its first member."""
    members = zip_members((folder / "arrays.npz").read_bytes())
    entries = [entry(n, d, method=8 if deflated else 0) for n, d in members.items()]
    mutate(entries[0])
    (folder / "arrays.npz").write_bytes(raw_zip(entries))


def _corrupt(scene: Scene, bases: Bases, kind: str) -> tuple[Path, str]:
    folder = scene.copy(bases.clf_save)
    config = folder / "config.json"
    if kind == "truncated_zip":
        path = scene.to_zip(folder)
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
        return path, "save.zip"
    if kind == "bad_crc_config":
        entries = folder_entries(folder)
        entries[[e.name for e in entries].index("config.json")].crc ^= 0xFFFF
        return scene.to_zip(folder, entries), "config.json"
    if kind == "npz_truncated":
        data = (folder / "arrays.npz").read_bytes()
        (folder / "arrays.npz").write_bytes(data[: len(data) // 2])
        return folder, "arrays.npz"
    if kind == "npz_bad_crc":
        _npz_member(folder, lambda e: setattr(e, "crc", e.crc ^ 1))
        return folder, "arrays.npz"
    if kind == "npz_corrupt_deflate":
        _npz_member(folder, lambda e: setattr(e, "data", b"\xff" * 20), deflated=True)
        return folder, "arrays.npz"
    if kind == "not_utf8":
        config.write_bytes(config.read_text().encode("utf-16"))
        return folder, "config.json"
    if kind == "not_an_object":
        config.write_text("[1, 2, 3]")
        return folder, "config.json"
    if kind == "params_list":
        edit_config(folder, lambda c: c["root"].update(params=[1, 2]))
        return folder, "params"
    if kind == "state_list":
        edit_config(folder, lambda c: c["root"].update(state=["classes_"]))
        return folder, "state"
    if kind == "scalar_of_1e13_bytes":
        node = {"$": "scalar", "dtype": "|V8", "value": 10**13}
        edit_config(folder, lambda c: c["root"]["params"].update(learning_rate=node))
        return folder, "learning_rate"
    if kind == "tagged_nesting_600":
        node: Any = 1
        for _ in range(600):
            node = {"$": "tuple", "items": [node]}
        edit_config(folder, lambda c: c["root"]["params"].update(class_weight=node))
        return folder, "class_weight|depth|nest|deep"
    if kind == "json_nesting_100000":
        text = config.read_text()
        deep = "[" * 100_000 + "]" * 100_000
        config.write_text(text.replace('"class_weight": null', f'"class_weight": {deep}'))
        return folder, "config.json|depth|nest|deep"
    if kind == "random_state_bad":
        node = {"$": "random_state", "state": ["MT19937", [1, 2, 3], 0, 0, 0.0]}
        edit_config(folder, lambda c: c["root"]["params"].update(random_state=node))
        return folder, "random_state"
    if kind == "objects_huge_shape":
        node = {"$": "objects", "shape": [100_000, 100_000], "items": [1]}
        edit_config(folder, lambda c: c["root"]["params"].update(class_weight=node))
        return folder, "class_weight"
    if kind == "duplicate_json_keys":  # a reviewer's parser may keep the first, json the last
        other = read_config(bases.iso_save)["root"]
        text = json.dumps(read_config(folder))
        config.write_text(text[:-1] + ', "root": ' + json.dumps(other) + "}")
        return folder, "root|duplicate"
    if kind == "huge_int":
        text = config.read_text()
        config.write_text(text.replace('"epochs": 1,', '"epochs": 1' + "0" * 5000 + ",", 1))
        return folder, "config.json|epochs"
    if kind == "keras_config_nesting":
        members = keras_members(folder)
        deep = b"[" * 100_000 + b"]" * 100_000
        members["config.json"] = members["config.json"].replace(
            b'"units": 32', b'"units": ' + deep, 1
        )
        write_keras(folder, members)
        return folder, "config.json|depth|nest|deep"
    if kind == "many_members":
        extra = [entry(f"models/{i}.keras", b"") for i in range(1, 50_001)]
        return scene.to_zip(folder, [*folder_entries(folder), *extra]), "member"
    if kind in ("missing_arrays", "missing_model", "missing_config"):
        member = {"missing_arrays": "arrays.npz", "missing_model": "models/0.keras",
                  "missing_config": "config.json"}[kind]  # fmt: skip
        entries = [e for e in folder_entries(folder) if e.name != member]
        return scene.to_zip(folder, entries), re.escape(member)
    raise AssertionError(kind)


CORRUPT_CASES = [
    "truncated_zip",
    "bad_crc_config",
    "npz_truncated",
    "npz_bad_crc",
    "npz_corrupt_deflate",
    "not_utf8",
    "not_an_object",
    "params_list",
    "state_list",
    "scalar_of_1e13_bytes",
    "tagged_nesting_600",
    "json_nesting_100000",
    "missing_arrays",
    "missing_model",
    "missing_config",
    "random_state_bad",
    "objects_huge_shape",
    "duplicate_json_keys",
    "huge_int",
    "keras_config_nesting",
    "many_members",
]


@pytest.mark.parametrize("kind", CORRUPT_CASES)
def test_a_damaged_file_is_a_persistence_error(scene, bases, kind):
    path, word = _corrupt(scene, bases, kind)
    scene.refuses(path, PersistenceError, word)


def test_an_npz_declaring_a_trillion_elements_is_refused_without_allocating(scene, bases):
    path = scene.copy(bases.clf_save)
    classes = estimator(read_config(path), ":MultimodalClassifier")["state"]["classes_"]
    members = zip_members((path / "arrays.npz").read_bytes())
    members[f"{array_key(classes)}.npy"] = npy_header("<f8", (10**12,)) + b"\0" * 64
    (path / "arrays.npz").write_bytes(raw_zip([entry(n, d) for n, d in members.items()]))
    scene.refuses_isolated(path, "arrays.npz|classes_|" + array_key(classes))


def test_pickled_object_arrays_are_never_unpickled(scene, bases):
    path = scene.copy(bases.clf_save)
    classes = estimator(read_config(path), ":MultimodalClassifier")["state"]["classes_"]
    arrays = read_npz(path)
    payload = np.empty(1, dtype=object)
    payload[0] = _OpensMarker(str(scene.marker))
    arrays[array_key(classes)] = payload
    write_npz(path, arrays, allow_pickle=True)
    scene.refuses(path, PersistenceError, "arrays.npz|pickle|classes_")


class _OpensMarker:
    """Unpickling this creates the marker (through ``io.FileIO``)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return io.FileIO, (self.path, "w")


def test_the_limits_can_be_lowered_and_name_the_member(scene, bases):
    path = scene.copy(bases.clf_save)
    scene.refuses(path, PersistenceError, "max_member_bytes", max_member_bytes=1024)
    scene.refuses(path, PersistenceError, "max_config_bytes", max_config_bytes=64)
    assert type(mmsk.load(path)) is mmsk.MultimodalClassifier


def test_reviewing_a_damaged_or_hostile_file_is_a_persistence_error(scene, bases):
    folder = scene.copy(bases.clf_save)
    truncated = scene.to_zip(scene.copy(bases.clf_save, "copy"), name="truncated.zip")
    truncated.write_bytes(truncated.read_bytes()[:500])
    (folder / "config.json").unlink()
    os.mkfifo(folder / "config.json")
    for path in (truncated, folder):
        with time_limit(30), pytest.raises(PersistenceError):
            mmsk.get_untrusted_types(path)


# ---- 7. state that does not match the model ----------------------------------------------


def test_a_scaler_mean_of_the_wrong_shape_is_refused_at_load(scene, bases):
    path = scene.copy(bases.pipe_save)
    key = array_key(estimator(read_config(path), SCALER)["state"]["mean_"])
    arrays = read_npz(path)
    arrays[key] = np.zeros(5)
    write_npz(path, arrays)
    scene.refuses(path, PersistenceError, "mean_")


@pytest.mark.parametrize("length", [1, 3])
def test_classes_that_do_not_match_the_model_output_are_refused(scene, bases, length):
    path = scene.copy(bases.clf_save)
    node = estimator(read_config(path), ":MultimodalClassifier")["state"]["classes_"]
    arrays = read_npz(path)
    arrays[array_key(node)] = np.array(["no", "yes", "maybe"][:length])
    write_npz(path, arrays)
    scene.refuses(path, PersistenceError, "classes_")


def test_another_saves_model_swapped_in_is_refused(scene, bases):
    path = scene.copy(bases.clf_save)
    shutil.copyfile(bases.other_model, path / "models" / "0.keras")
    scene.refuses(path, PersistenceError, "model")


def test_arrays_of_the_wrong_dtype_are_refused(scene, bases):
    path = scene.copy(bases.pipe_save)
    key = array_key(estimator(read_config(path), LOGREG)["state"]["coef_"])
    arrays = read_npz(path)
    arrays[key] = arrays[key].astype(str)
    write_npz(path, arrays)
    scene.refuses(path, PersistenceError, "coef_")


@pytest.fixture(scope="module")
def text_save(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier on short names: its text step gives word and character n-gram ids."""
    X = pd.DataFrame({"name": ["red apple", "green pear", "red cherry", "ripe pear"] * 8})
    clf = mmsk.MultimodalClassifier(epochs=1, random_state=0).fit(X, [0, 1, 0, 1] * 8)
    assert clf.preprocessor_.specs_["name"].char_columns > 0
    return mmsk.save(clf, tmp_path_factory.mktemp("text") / "clf")


@pytest.mark.parametrize(
    "field, value, word",
    [
        ("char_sequence_length_", 3, "sequence_length_"),  # ids the model does not expect
        ("char_sequence_length_", "50", "sequence_length_"),
        ("char_vocabulary_", ["", "[UNK]"] + [f"g{i}" for i in range(500)], "char_vocabulary_"),
    ],
)
def test_character_ngram_state_that_does_not_match_the_model_is_refused(
    scene, text_save, field, value, word
):
    path = scene.copy(text_save)

    def edit(config: dict[str, Any]) -> None:
        estimator(config, ":TextVectorizer")["state"][field] = value

    edit_config(path, edit)
    scene.refuses(path, PersistenceError, word)


@pytest.mark.parametrize("field, value", [("char_columns", 10_000), ("kind", "video")])
def test_a_spec_no_fit_makes_is_a_persistence_error(scene, text_save, field, value):
    """More character columns than columns, or an unknown kind: refused by the spec's own
    checks, reported as the file's fault (PersistenceError), not the data's."""
    path = scene.copy(text_save)

    def edit(config: dict[str, Any]) -> None:
        estimator(config, ":TextVectorizer")["state"]["spec_"][field] = value

    edit_config(path, edit)
    scene.refuses(path, PersistenceError, field)


# ---- 8. a plugin that is not installed ---------------------------------------------------


GHOST = "mmsk-ghost-encoders"


@pytest.mark.parametrize("how", ["encoder_name", "component_class"])
def test_a_missing_plugin_names_its_distribution_and_is_not_unsafe(scene, bases, how):
    path = scene.copy(bases.clf_save)
    cls = "mmsk_ghost_encoders.encoders:GhostEncoder"

    def edit(config: dict[str, Any]) -> None:
        params = estimator(config, ":MultimodalClassifier")["params"]
        if how == "encoder_name":
            value: Any = "ghost"
        else:
            value = {"$": "estimator", "class": cls, "params": {}, "state": {}}
        params["encoders"] = {"$": "dict", "items": [["numeric", value]]}
        config["plugins"] = [  # what mmsk.save records about the plugins a file uses
            {"group": "encoder", "name": "ghost", "class": cls, "distribution": GHOST,
             "version": "1.2.3"}
        ]  # fmt: skip

    edit_config(path, edit)
    scene.refuses(path, PersistenceError, "ghost", GHOST, not_error=UnsafeFileError)


# ---- 9. reviewing a file, then trusting its extra types ----------------------------------

USER_MODULE = """
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class Doubler(TransformerMixin, BaseEstimator):
    def __init__(self, factor=2.0):
        self.factor = factor

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return np.asarray(X) * self.factor
"""


@pytest.fixture
def user_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bases: Bases):
    module = "p2_user_steps"
    (tmp_path / f"{module}.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    steps = __import__(module)
    y = np.where(bases.X[:, 0] > 0, "yes", "no")
    pipe = Pipeline(
        [("double", steps.Doubler()), ("scale", StandardScaler()), ("clf", LogisticRegression())]
    ).fit(bases.X, y)
    path = mmsk.save(pipe, tmp_path / "user.zip")
    del sys.modules[module]  # the loading process has not imported it yet
    yield pipe, path, f"{module}:Doubler"
    sys.modules.pop(module, None)


def test_get_untrusted_types_lists_exactly_the_extra_types(user_pipeline):
    _, path, name = user_pipeline
    assert mmsk.get_untrusted_types(path) == [name]
    assert "p2_user_steps" not in sys.modules  # reviewing imports nothing


def test_an_untrusted_type_is_refused_by_name_and_not_imported(user_pipeline):
    _, path, name = user_pipeline
    with pytest.raises(UnsafeFileError, match=re.escape(name)):
        mmsk.load(path)
    assert "p2_user_steps" not in sys.modules
    with pytest.raises(UnsafeFileError, match=re.escape(name)):
        mmsk.load(path, trusted=["p2_user_steps:Other"])


def test_trusted_types_load_and_predict_identically(user_pipeline, bases):
    pipe, path, _ = user_pipeline
    loaded = mmsk.load(path, trusted=mmsk.get_untrusted_types(path))
    np.testing.assert_array_equal(loaded.predict_proba(bases.X), pipe.predict_proba(bases.X))
    assert loaded.named_steps["double"].factor == 2.0


def test_trusting_a_chain_name_does_not_make_it_loadable(scene, bases):
    chain = POPEN_CHAINS[0]
    kw_args = {"$": "dict", "items": [["executable", TOUCH]]}
    path = _function_transformer(scene, bases, _type(chain), kw_args)
    victim = np.array(["photo.png", str(scene.marker)])
    assert chain in mmsk.get_untrusted_types(path)
    for trusted in ([chain], ["subprocess:Popen"]):
        scene.refuses(
            path,
            UnsafeFileError,
            re.escape(chain),
            use=lambda m: m.predict(victim),
            settle=True,
            trusted=trusted,
        )


def test_paths_are_not_restored_from_a_file(scene, bases):
    victim = scene.root / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("years of work")
    path = scene.copy(bases.clf_save)
    node = {"$": "path", "value": str(victim)}
    edit_config(path, lambda c: c["root"]["params"].update(checkpoint_dir=node))
    loaded = mmsk.load(path)
    assert loaded.checkpoint_dir is None
    clone(loaded).fit(bases.X, np.where(bases.X[:, 0] > 0, "yes", "no"))  # the victim's refit
    assert sorted(p.name for p in victim.iterdir()) == ["thesis.tex"]
    assert (victim / "thesis.tex").read_text() == "years of work"
    pipe = scene.copy(bases.pipe_save, "pipe")
    edit_config(pipe, lambda c: c["root"]["params"].update(memory=node))
    assert mmsk.load(pipe).memory is None


# ---- 10. saving never destroys -----------------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip


@pytest.mark.parametrize(
    "kind", ["own_config", "marker_and_photos", "save_with_notes", "old_save"]
)
def test_save_refuses_a_folder_it_did_not_write_and_touches_nothing(tmp_path, bases, kind):
    folder = tmp_path / "experiment"
    if kind in ("save_with_notes", "old_save"):
        mmsk.save(bases.iso, folder)
        if kind == "save_with_notes":
            (folder / "notes.txt").write_text("do not lose")
        else:  # written before saves carried the marker
            for marker in [p for p in folder.iterdir() if p.name.startswith(".mmsk")]:
                marker.unlink()
    else:
        folder.mkdir()
        (folder / "data").mkdir()
        (folder / "data" / "x.csv").write_bytes(b"1,2")
        if kind == "own_config":
            (folder / "config.json").write_bytes(b'{"lr": 0.1}')
        else:  # a marker copied in by mistake does not make photos a save
            (folder / "holiday.jpg").write_bytes(b"\xff\xd8 photo")
            mmsk.save(bases.iso, tmp_path / "real")
            for marker in [p for p in (tmp_path / "real").iterdir() if p.name.startswith(".")]:
                shutil.copyfile(marker, folder / marker.name)
            shutil.rmtree(tmp_path / "real")
    files = _files(folder)
    assert (".mmsk-save" in files) == (kind in ("marker_and_photos", "save_with_notes"))
    with pytest.raises(PersistenceError, match="experiment"):
        mmsk.save(bases.clf, folder)
    assert _files(folder) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiment"]


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_saving_twice_replaces_the_earlier_save_and_leaves_nothing_behind(tmp_path, bases, suffix):
    path = tmp_path / f"model{suffix}"
    mmsk.save(bases.iso, path)
    mmsk.save(bases.clf, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert type(mmsk.load(path)) is mmsk.MultimodalClassifier


@pytest.mark.parametrize("content", [b"PK", b"my own notes", b""])
def test_save_does_not_replace_a_file_it_did_not_write(tmp_path, bases, content):
    path = tmp_path / "model.zip"
    if content == b"PK":  # someone's zip
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("holiday.jpg", b"\xff\xd8 photo")
        content = path.read_bytes()
    else:
        path.write_bytes(content)  # an empty file too: documented as refused
    with pytest.raises(PersistenceError, match=r"model\.zip"):
        mmsk.save(bases.iso, path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.zip"]


# ---- 11. round trips of everything that loads --------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_round_trips_give_identical_predictions(tmp_path, bases, suffix):
    X = bases.X
    same = mmsk.load(mmsk.save(bases.clf, tmp_path / f"clf{suffix}"))
    np.testing.assert_array_equal(same.predict_proba(X), bases.clf.predict_proba(X))
    same = mmsk.load(mmsk.save(bases.pipe, tmp_path / f"pipe{suffix}"))
    np.testing.assert_array_equal(
        same.predict_proba(np.abs(X)), bases.pipe.predict_proba(np.abs(X))
    )
    assert same.named_steps["functiontransformer"].func is np.log1p
    same = mmsk.load(mmsk.save(bases.iso, tmp_path / f"iso{suffix}"))
    np.testing.assert_array_equal(same.predict(X[:, 0]), bases.iso.predict(X[:, 0]))


@pytest.mark.slow
def test_round_trips_of_a_regressor_preprocessors_and_unfitted_estimators(tmp_path, bases):
    reg = mmsk.MultimodalRegressor(epochs=1, random_state=0).fit(bases.X, bases.X[:, 1])
    same = mmsk.load(mmsk.save(reg, tmp_path / "reg.zip"))
    np.testing.assert_array_equal(same.predict(bases.X), reg.predict(bases.X))
    frame, _ = _text_frame()
    prep = mmsk.ModalityPreprocessor().fit(frame)
    same = mmsk.load(mmsk.save(prep, tmp_path / "prep"))
    a, b = prep.transform(frame), same.transform(frame)
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    vec = mmsk.TextVectorizer(sequence_length=4).fit(frame["caption"])
    same = mmsk.load(mmsk.save(vec, tmp_path / "vec.zip"))
    np.testing.assert_array_equal(
        same.transform(frame["caption"]), vec.transform(frame["caption"])
    )
    unfitted = mmsk.MultimodalClassifier(epochs=3, fusion="attention")
    same = mmsk.load(mmsk.save(unfitted, tmp_path / "unfitted"))
    assert same.get_params() == unfitted.get_params() and not hasattr(same, "model_")
