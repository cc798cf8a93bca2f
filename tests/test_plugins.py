"""The plugin registry and the conformance checks (installed packages: test_plugin_packages)."""

import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import make_frame

import mmsk
from mmsk import plugins
from mmsk.components import (
    AttentionFusion,
    AudioCNNEncoder,
    BagEncoder,
    CNNEncoder,
    ConcatFusion,
    Encoder,
    GatedFusion,
    LateFusion,
    MLPEncoder,
    RNNEncoder,
    SumFusion,
    TransformerEncoder,
)
from mmsk.exceptions import (
    ParameterError,
    PluginContractError,
    PluginError,
    UnknownComponentError,
)
from mmsk.testing import check_encoder, check_fusion


def run_mmsk(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "mmsk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_builtins_come_from_mmsk_entry_points():
    infos = {(p.group, p.name): p for p in plugins.list_plugins()}
    assert {"cnn", "rnn", "transformer", "audio_cnn", "mlp"} <= set(plugins.names("encoder"))
    assert {"concat", "sum", "attention", "gated", "late"} <= set(plugins.names("fusion"))
    cnn = infos[("encoder", "cnn")]
    assert (cnn.distribution, cnn.kinds, cnn.target) == (
        "mmsk",
        ("image",),
        "mmsk.components._encoders:CNNEncoder",
    )
    assert infos[("encoder", "mlp")].kinds == ("numeric", "categorical")
    assert plugins.load("encoder", "cnn") is CNNEncoder


def test_listing_imports_no_component_code():
    code = (
        "import sys, mmsk.plugins as p; infos = p.list_plugins(); "
        "assert len(infos) >= 10; "
        "print(sorted(m for m in sys.modules if m.startswith(('mmsk.components', 'keras', "
        "'tensorflow'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(UnknownComponentError, match=r"Unknown fusion 'avg'. Available: \["):
        plugins.load("fusion", "avg")
    with pytest.raises(ValueError, match="group"):
        plugins.load("decoder", "x")


def test_register_for_notebooks_and_use_by_name():
    class TinyMLP(MLPEncoder):
        kinds = ("numeric",)

    plugins.register("encoder", "tiny_mlp", TinyMLP)
    try:
        plugins.register("encoder", "tiny_mlp", TinyMLP)  # a re-run notebook cell
        info = next(p for p in plugins.list_plugins("encoder") if p.name == "tiny_mlp")
        assert (info.status, info.distribution, info.kinds) == (
            "registered",
            "<registered>",
            ("numeric",),
        )
        X, y = make_frame(40)
        clf = mmsk.MultimodalClassifier(encoders={"numeric": "tiny_mlp"}, epochs=1)
        clf.set_params(encoders__numeric__units=3).fit(X[["size"]], y)
        assert clf.model_.get_layer("numeric_dense0").units == 3
    finally:
        plugins.unregister("encoder", "tiny_mlp")
    assert "tiny_mlp" not in plugins.names("encoder")


def test_register_cannot_shadow_an_installed_name():
    with pytest.raises(PluginError, match="already provided by distribution 'mmsk'"):
        plugins.register("encoder", "cnn", MLPEncoder)
    with pytest.raises(ValueError, match="name"):
        plugins.register("encoder", "my encoder", MLPEncoder)


@pytest.mark.slow  # spawns two interpreters
def test_cli_table_and_disable_env():
    out = run_mmsk("plugins")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["name", "group", "distribution", "version", "kinds", "status"]
    assert any(line.split()[:3] == ["cnn", "encoder", "mmsk"] for line in lines)
    out = run_mmsk("plugins", env={"MMSK_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert out.returncode == 0 and "only mmsk's built-ins" in out.stdout


@pytest.mark.slow  # --check imports every component, and so TensorFlow, in a new process
def test_cli_check_loads_the_listed_group():
    out = run_mmsk("plugins", "--group", "fusion", "--check")
    assert out.returncode == 0 and "loaded" in out.stdout and "encoder" not in out.stdout


# ---- conformance checks ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "encoder",
    [
        CNNEncoder(filters=4),
        RNNEncoder(units=4),
        TransformerEncoder(embedding_dim=8),
        AudioCNNEncoder(filters=4),
        MLPEncoder(units=4),
    ],
    ids=lambda e: type(e).__name__,
)
def test_builtin_encoders_pass_check_encoder(encoder):
    check_encoder(encoder)


@pytest.mark.slow
@pytest.mark.parametrize(
    "fusion",
    [
        ConcatFusion(),
        SumFusion(units=8),
        AttentionFusion(d_model=8, num_heads=2),
        GatedFusion(units=8),
        LateFusion(),
    ],
    ids=lambda f: type(f).__name__,
)
def test_builtin_fusions_pass_check_fusion(fusion):
    check_fusion(fusion)


class NotAnEncoder:
    kinds = ("numeric",)


class ChangesItsArguments(MLPEncoder):
    def __init__(self, units=4, layers=1, dropout=0.0):
        super().__init__(units=units * 2, layers=layers, dropout=dropout)


class NoKinds(MLPEncoder):
    kinds = ()


class WrongRank(Encoder):
    kinds = ("numeric",)

    def encode(self, x, spec, *, sequence, name):
        return keras.layers.Reshape((*spec.shape, 1), name=f"{name}_r")(x), None


class UsesLambda(Encoder):
    kinds = ("numeric",)

    def encode(self, x, spec, *, sequence, name):
        h = keras.layers.Lambda(lambda t: t * 2.0, name=f"{name}_double")(x)
        if sequence:
            return keras.layers.Reshape((1, spec.shape[0]), name=f"{name}_tok")(h), None
        return h, None


class FixedLayerName(Encoder):
    """Names its layer without the prefix: two columns of one kind collide."""

    kinds = ("numeric",)

    def encode(self, x, spec, *, sequence, name):
        h = keras.layers.Dense(4, name="hidden")(x)
        if sequence:
            return keras.layers.Reshape((1, 4), name=f"{name}_tok")(h), None
        return h, None


class UnprefixedLayerName(Encoder):
    """Unique names, but not under the prefix given."""

    kinds = ("numeric",)

    def encode(self, x, spec, *, sequence, name):
        h = keras.layers.Dense(4, name=f"dense_for_{name}")(x)
        if sequence:
            return keras.layers.Reshape((1, 4), name=f"{name}_tok")(h), None
        return h, None


@pytest.mark.parametrize(
    "component, message",
    [
        (NotAnEncoder(), "must subclass mmsk.components.Encoder"),
        (FixedLayerName(), "two numeric columns builds layers with the same name"),
        (UnprefixedLayerName(), r"must name each layer .*dense_for_first_numeric"),
        (ChangesItsArguments(), "parameter rules"),
        (NoKinds(), "kinds must be a non-empty tuple"),
        (WrongRank(), r"must return a rank-2 tensor. Received shape: \(None, 3, 1\)"),
        (UsesLambda(), "save/load"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else "",
)
def test_check_encoder_names_the_broken_rule(component, message):
    with pytest.raises(PluginContractError, match=message):
        check_encoder(component)


def test_check_fusion_rejects_an_encoder():
    with pytest.raises(PluginContractError, match=r"must subclass mmsk\.components\.Fusion"):
        check_fusion(MLPEncoder())


def test_using_a_non_component_by_name_is_a_contract_error():
    plugins.register("fusion", "not_a_fusion", NotAnEncoder)
    try:
        X = np.random.default_rng(0).normal(size=(20, 2))
        with pytest.raises(PluginContractError, match=r"mmsk\.components\.Fusion"):
            mmsk.MultimodalClassifier(fusion="not_a_fusion", epochs=1).fit(X, [0, 1] * 10)
    finally:
        plugins.unregister("fusion", "not_a_fusion")


def _source_tree_plugin(root, package, body, kinds):
    """A plugin as an editable install or a source checkout shows it: a .dist-info with
    entry points but no file list, the class defined in a private module and re-exported
    by the package's ``__init__``; importing the module would fail."""
    (root / package).mkdir()
    (root / package / "__init__.py").write_text(f"from ._enc import {body}\n")
    (root / package / "_enc.py").write_text(
        f"raise RuntimeError('imported!')\n\nclass {body}:\n    kinds = {kinds!r}\n"
    )
    info = root / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[mmsk.encoders]\n{package} = {package}:{body}\n")


def test_listing_reads_kinds_of_editable_and_reexported_plugins(tmp_path):
    _source_tree_plugin(tmp_path, "mmsk_srcplugin", "SrcEncoder", ("image", "text"))
    _source_tree_plugin(tmp_path, "mmsk_badkinds", "BadEncoder", ("txt",))
    code = (
        "import json, sys, warnings\n"
        "from mmsk.plugins import list_plugins\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    rows = {p.name: [p.kinds, p.status, p.error] for p in list_plugins('encoder')}\n"
        "print(json.dumps({'rows': rows, 'warnings': [str(w.message) for w in seen],\n"
        "                  'imported': [m for m in sys.modules if m.startswith('mmsk_')]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    rows = result["rows"]
    assert rows["mmsk_srcplugin"] == [["image", "text"], "available", None]
    kinds, status, error = rows["mmsk_badkinds"]
    assert kinds == ["txt"] and status == "available" and "unknown kinds ['txt']" in error
    assert any("'mmsk_badkinds' of mmsk_badkinds" in w and "txt" in w for w in result["warnings"])
    assert result["imported"] == []  # listing ran no plugin code


def test_an_encoder_ignoring_its_prefix_is_a_clear_error_on_two_columns():
    from mmsk.exceptions import ModelBuildError

    class FixedTextName(Encoder):
        kinds = ("text",)

        def encode(self, x, spec, *, sequence, name):
            h = keras.layers.Embedding(spec.vocabulary_size, 4, name="embed")(x)
            return keras.layers.GlobalAveragePooling1D(name=f"{name}_pool")(h), None

    words = np.array(["red bus", "blue car", "big dog", "small cat"])
    X = pd.DataFrame({"title": words[np.arange(20) % 4], "tags": words[np.arange(20) % 3]})
    clf = mmsk.MultimodalClassifier(encoders={"text": FixedTextName()}, epochs=1)
    with pytest.raises(ModelBuildError, match=r"FixedTextName.*named with the `name`"):
        clf.fit(X, np.arange(20) % 2)


# ---- settings checked when a component is made -------------------------------------------

BUILT_INS = [CNNEncoder, AudioCNNEncoder, RNNEncoder, TransformerEncoder, MLPEncoder, BagEncoder,
             ConcatFusion, SumFusion, AttentionFusion, GatedFusion, LateFusion]  # fmt: skip


@pytest.mark.parametrize("cls", BUILT_INS, ids=lambda c: c.__name__)
def test_built_in_components_constrain_every_parameter(cls):
    assert set(cls._parameter_constraints) == set(cls().get_params())


def test_a_bad_setting_fails_when_the_component_is_made():
    with pytest.raises(
        ParameterError, match=r"'cell' parameter of RNNEncoder must be a str among"
    ):
        RNNEncoder(cell="foo")
    with pytest.raises(ParameterError, match="'num_heads' parameter of AttentionFusion"):
        AttentionFusion(num_heads=0)
    assert RNNEncoder(cell="gru").cell == "gru"


def test_set_params_checks_and_leaves_the_component_unchanged_on_error():
    enc = RNNEncoder(units=8)
    with pytest.raises(ParameterError, match="'units' parameter") as info:
        enc.set_params(units=-1, cell="gru")
    assert isinstance(info.value, ValueError)
    assert enc.get_params() == RNNEncoder(units=8).get_params()
    assert enc.set_params(cell="gru").cell == "gru"


def test_a_bad_nested_setting_fails_in_the_estimators_set_params():
    clf = mmsk.MultimodalClassifier(encoders={"text": "rnn"})
    with pytest.raises(ParameterError, match="'cell' parameter of RNNEncoder"):
        clf.set_params(encoders__text__cell="foo")


class _Widened(RNNEncoder):
    """A subclass whose __init__ calls the parent's: checked once, when fully made."""

    def __init__(self, units=4, cell="lstm", bidirectional=False, embedding_dim=8, extra=1):
        super().__init__(units, cell, bidirectional, embedding_dim)
        self.extra = extra


def test_subclasses_are_checked_after_their_own_init():
    assert _Widened(extra=2).get_params()["extra"] == 2
    with pytest.raises(ParameterError, match="'cell'"):
        _Widened(cell="foo")
