"""The real plugin packages in plugins/, installed the way a user installs them.

``pip install`` of each package directory (a copy, so no build files land in the
repository) into a temporary target directory, with no network and no build
isolation.  In-process tests put that directory on ``sys.path`` (where
``importlib.metadata`` finds the ``.dist-info`` and its entry points); subprocess
tests get it through ``PYTHONPATH``.  tests/plugins/ holds two packages made to
fail: one whose module raises ImportError, one whose name collides.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV

import mmsk
from mmsk.plugins import PluginError, list_plugins, load
from mmsk.preprocessing import ImagePreprocessor, ModalityPreprocessor

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ("mmsk-keras-apps", "mmsk-vit")
KERAS_APP_FAST = {"trainable": False, "minimalistic": True}  # frozen: quick to trace and fit
VIT_SMALL = {"patch_size": 4, "embedding_dim": 16, "num_heads": 2, "ff_dim": 32, "num_blocks": 1}
BUILD_FILES = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".*cache")


def pip_install(target: Path, *packages: Path) -> Path:
    """``pip install --target`` of package directories (copied first); returns ``target``."""
    sources = target.parent / f"{target.name}-src"
    copies = []
    for package in packages:
        copy = sources / package.name
        shutil.copytree(package, copy, ignore=BUILD_FILES)
        copies.append(str(copy))
    env = {
        **os.environ,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PIP_ROOT_USER_ACTION": "ignore",
    }
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
           "--no-build-isolation", "--target", str(target), *copies]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return target


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory):
    """mmsk-keras-apps and mmsk-vit, installed together."""
    base = tmp_path_factory.mktemp("plugins")
    return pip_install(base / "site", *(ROOT / "plugins" / name for name in PLUGINS))


@pytest.fixture(scope="session")
def broken_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("broken")
    return pip_install(base / "site", ROOT / "tests" / "plugins" / "broken_plugin")


@pytest.fixture(scope="session")
def colliding_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("colliding")
    return pip_install(base / "site", ROOT / "tests" / "plugins" / "colliding_plugin")


@pytest.fixture(scope="module", autouse=True)
def on_path(plugin_dir):
    """The installed plugins are visible to this module's tests only."""
    sys.path.insert(0, str(plugin_dir))
    importlib.invalidate_caches()
    yield plugin_dir
    sys.path.remove(str(plugin_dir))
    importlib.invalidate_caches()


def run(args: list[str], *site: Path, **env: str) -> subprocess.CompletedProcess:
    """Run ``python *args`` in a fresh interpreter that sees the given site directories."""
    full = {k: v for k, v in os.environ.items() if k != "MMSK_DISABLE_PLUGIN_AUTOLOAD"}
    full["PYTHONPATH"] = os.pathsep.join([*map(str, site), full.get("PYTHONPATH", "")])
    full.update(env)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=ROOT, env=full
    )


def frame(n: int = 24, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Small dark or bright RGB images (uint8 arrays) and a noisy number telling the class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    images = [(rng.integers(0, 90, (16, 16, 3)) + 150 * c).astype(np.uint8) for c in y]
    return pd.DataFrame({"image": images, "size": y + rng.normal(0, 0.3, n)}), y


def classifier(**kw):
    params = dict(
        preprocessor=ModalityPreprocessor(image=ImagePreprocessor(size=16)),
        epochs=1,
        batch_size=8,
        random_state=0,
    )
    return mmsk.MultimodalClassifier(**{**params, **kw})


def plugin_params(encoder: str) -> dict:
    small = KERAS_APP_FAST if encoder == "keras_app" else VIT_SMALL
    return {f"encoders__image__{k}": v for k, v in small.items()}


@pytest.fixture(scope="module")
def vit_film():
    """A classifier whose encoder and fusion are both plugins, named only by strings."""
    X, y = frame()
    clf = classifier(encoders={"image": "vit"}, fusion="film").fit(X, y)
    return clf, X


# ---- installed and listed ----------------------------------------------------


def test_pip_installed_the_distributions_with_their_entry_points():
    assert metadata.version("mmsk-keras-apps") == "0.1.0"
    assert metadata.version("mmsk-vit") == "0.1.0"
    found = {
        (ep.group, ep.name, ep.value)
        for name in PLUGINS
        for ep in metadata.distribution(name).entry_points
    }
    assert found == {
        ("mmsk.encoders", "keras_app", "mmsk_keras_apps._encoder:KerasAppEncoder"),
        ("mmsk.encoders", "vit", "mmsk_vit._encoder:ViTEncoder"),
        ("mmsk.fusions", "film", "mmsk_vit._film:FiLMFusion"),
    }


def test_listing_names_distributions_and_kinds_without_importing_plugins(plugin_dir):
    code = (
        "import json, sys\n"
        "from mmsk.plugins import list_plugins\n"
        "rows = {p.name: [p.group, p.distribution, p.version, p.kinds, p.status]\n"
        "        for p in list_plugins()}\n"
        "heavy = ['mmsk_keras_apps', 'mmsk_vit', 'tensorflow', 'keras']\n"
        "print(json.dumps({'rows': rows, 'imported': [m for m in heavy if m in sys.modules]}))\n"
    )
    result = run(["-c", code], plugin_dir)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["imported"] == []
    rows = out["rows"]
    assert rows["keras_app"] == ["encoder", "mmsk-keras-apps", "0.1.0", ["image"], "available"]
    assert rows["vit"] == ["encoder", "mmsk-vit", "0.1.0", ["image"], "available"]
    assert rows["film"] == ["fusion", "mmsk-vit", "0.1.0", None, "available"]
    assert rows["cnn"][:2] == ["encoder", "mmsk"]


@pytest.mark.slow  # two processes; the fast tier runs the command in tests/test_plugins.py
def test_command_line_table_shows_plugins_and_their_distributions(plugin_dir):
    result = run(["-m", "mmsk", "plugins"], plugin_dir)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert rows["keras_app"][:4] == ["keras_app", "encoder", "mmsk-keras-apps", "0.1.0"]
    assert rows["vit"][:4] == ["vit", "encoder", "mmsk-vit", "0.1.0"]
    assert rows["film"][:4] == ["film", "fusion", "mmsk-vit", "0.1.0"]

    off = run(["-m", "mmsk", "plugins"], plugin_dir, MMSK_DISABLE_PLUGIN_AUTOLOAD="1")
    assert off.returncode == 0, off.stderr
    assert "cnn" in off.stdout
    assert not {"keras_app", "vit", "film"} & {line.split()[0] for line in off.stdout.split("\n")
                                                if line.strip()}  # fmt: skip


# ---- used by name ------------------------------------------------------------


@pytest.mark.slow  # a MobileNetV3 backbone: the slowest model to trace here
def test_keras_app_by_name_in_a_classifier():
    X, y = frame()
    clf = classifier(encoders={"image": "keras_app"}).set_params(**plugin_params("keras_app"))
    clf.fit(X, y)
    assert type(clf.encoders["image"]).__module__ == "mmsk_keras_apps._encoder"
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(pickle.loads(pickle.dumps(clf)).predict_proba(X), proba, atol=1e-5)


@pytest.mark.slow  # the fast tier fits a vit in test_a_broken_plugin_breaks_only_itself
def test_vit_and_film_by_name_in_a_classifier(vit_film):
    clf, X = vit_film
    assert clf.encoders == {"image": "vit"} and clf.fusion == "film"
    layers = {type(layer).__name__ for layer in clf.model_.layers}
    assert {"PositionEmbedding", "FeatureModulation"} <= layers
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    assert np.allclose(pickle.loads(pickle.dumps(clf)).predict_proba(X), proba, atol=1e-5)


@pytest.mark.slow
def test_fitted_plugin_model_loads_in_a_fresh_process(vit_film, plugin_dir, tmp_path):
    # The plugin's Keras layers are registered only once its module is imported: a new
    # process that unpickles a model naming "vit" and "film" must import them first.
    clf, X = vit_film
    with open(tmp_path / "model.pkl", "wb") as fh:
        pickle.dump({"clf": clf, "X": X, "proba": clf.predict_proba(X)}, fh)
    code = (
        "import pickle, sys\nimport numpy as np\n"
        "d = pickle.load(open(sys.argv[1], 'rb'))\n"
        "assert np.allclose(d['clf'].predict_proba(d['X']), d['proba'], atol=1e-5)\n"
        "print('same predictions')\n"
    )
    result = run(["-c", code, str(tmp_path / "model.pkl")], plugin_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "same predictions" in result.stdout


@pytest.mark.slow
def test_grid_search_over_a_plugin_by_name_and_its_parameter():
    X, y = frame()
    grid = {"encoders__image": ["vit"], "encoders__image__patch_size": [4, 8],
            "encoders__image__num_blocks": [1]}  # fmt: skip
    one_split = [(np.arange(12), np.arange(12, 24))]  # both classes on each side
    search = GridSearchCV(
        classifier(encoders={"image": "cnn"}, fusion="film"), grid, cv=one_split
    ).fit(X, y)
    assert [p["encoders__image__patch_size"] for p in search.cv_results_["params"]] == [4, 8]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_.encoders["image"]
    assert type(best).__name__ == "ViTEncoder" and best.patch_size in (4, 8)
    assert search.predict(X).shape == (len(X),)


# The conformance checks (check_encoder on vit and keras_app, check_fusion on film) are
# part of each plugin's own suite, which test_plugin_packages_own_test_suites_pass runs
# against this mmsk as installed; they are not run a second time here.


def test_register_cannot_shadow_an_installed_plugin():
    from mmsk.components import CNNEncoder

    try:
        with pytest.raises(PluginError, match="mmsk-vit"):
            mmsk.plugins.register("encoder", "vit", CNNEncoder)
    finally:
        mmsk.plugins.unregister("encoder", "vit")
    assert load("encoder", "vit").__module__ == "mmsk_vit._encoder"


# ---- a broken plugin and a name collision -------------------------------------


def test_a_broken_plugin_breaks_only_itself(broken_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(broken_dir))
    rows = {p.name: p for p in list_plugins("encoder")}
    assert rows["broken"].distribution == "mmsk-broken-plugin"
    assert rows["broken"].kinds == ("image",)  # read from the source, not imported

    with pytest.raises(PluginError) as err:
        load("encoder", "broken")
    assert "mmsk-broken-plugin" in str(err.value) and "_fastconv" in str(err.value)
    row = next(p for p in list_plugins("encoder") if p.name == "broken")
    assert row.status == "error" and "_fastconv" in row.error

    X, y = frame(8)
    with pytest.raises(PluginError, match="mmsk-broken-plugin"):
        classifier(encoders={"image": "broken"}).fit(X, y)
    # everything else still works
    assert load("encoder", "vit").__name__ == "ViTEncoder"
    assert load("encoder", "keras_app").__name__ == "KerasAppEncoder"
    assert load("encoder", "cnn").__name__ == "CNNEncoder"
    clf = classifier(encoders={"image": "vit"}).set_params(**plugin_params("vit")).fit(X, y)
    assert clf.predict(X).shape == (8,)


@pytest.mark.slow
def test_a_broken_plugin_does_not_break_import_or_the_command_line(broken_dir, plugin_dir):
    code = "import mmsk, mmsk.plugins; print(sorted(mmsk.plugins.names('encoder')))"
    result = run(["-c", code], broken_dir, plugin_dir)
    assert result.returncode == 0, result.stderr
    assert "'broken'" in result.stdout and "'vit'" in result.stdout

    listed = run(["-m", "mmsk", "plugins"], broken_dir, plugin_dir)
    assert listed.returncode == 0, listed.stderr
    assert "mmsk-broken-plugin" in listed.stdout and "mmsk-vit" in listed.stdout

    checked = run(["-m", "mmsk", "plugins", "--check"], broken_dir, plugin_dir)
    assert checked.returncode == 1, checked.stderr
    rows = {line.split()[0]: line.split() for line in checked.stdout.splitlines() if line.strip()}
    assert rows["broken"][-1] == "error" and rows["vit"][-1] == "loaded"
    assert "_fastconv" in checked.stdout


def test_colliding_names_are_an_error_naming_both_distributions(colliding_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(colliding_dir))
    with pytest.raises(PluginError) as err:
        load("encoder", "keras_app")
    assert "mmsk-keras-apps" in str(err.value) and "mmsk-colliding-plugin" in str(err.value)
    row = next(p for p in list_plugins("encoder") if p.name == "keras_app")
    assert row.status == "conflict"
    assert "mmsk-keras-apps" in row.distribution and "mmsk-colliding-plugin" in row.distribution

    X, y = frame(8)
    with pytest.raises(PluginError, match="mmsk-colliding-plugin"):
        classifier(encoders={"image": "keras_app"}).fit(X, y)
    assert load("encoder", "vit").__name__ == "ViTEncoder"  # other names are unaffected


@pytest.mark.slow
@pytest.mark.parametrize("name", PLUGINS)
def test_plugin_packages_own_test_suites_pass(name, plugin_dir):
    """Each plugin's own tests (its fast ones) pass against this mmsk, as installed."""
    env = {k: v for k, v in os.environ.items() if k != "MMSK_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_dir), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider"],
        cwd=ROOT / "plugins" / name,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
