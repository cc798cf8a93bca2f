"""estimator.export / mmsk.export: a SavedModel that takes raw columns and runs without mmsk."""

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import mmsk
from mmsk.exceptions import ExportError
from mmsk.preprocessing import (
    AudioFeaturizer,
    ImagePreprocessor,
    ModalityPreprocessor,
)

# Predictions of the SavedModel against the estimator's (docs/saving.md): images at the model's
# size decode identically, so only float rounding differs; resized images differ by at most
# 2/255 a pixel (PIL resizes 8-bit images in 8-bit fixed point), which moves predictions ~1e-3.
EXACT = 1e-5
RESIZED = 5e-3

# Runs in a fresh interpreter that cannot import mmsk.
SERVE = textwrap.dedent(
    """
    import json, sys
    import numpy as np

    class NoMmsk:
        def find_spec(self, name, path=None, target=None):
            if name == "mmsk" or name.startswith("mmsk."):
                raise ImportError("the export must load without mmsk")

    sys.meta_path.insert(0, NoMmsk())
    import tensorflow as tf

    spec = json.load(open(sys.argv[1]))
    data = np.load(spec["arrays"])
    photos = tf.constant([open(p, "rb").read() if p else b"" for p in spec["photos"]])
    inputs = {
        "photo": photos,
        "caption": tf.constant(spec["captions"]),
        "clip": tf.constant(data["clips"]),
        "price": tf.constant(data["price"]),
        "shape": tf.constant(spec["shapes"]),
    }
    clf = tf.saved_model.load(spec["clf"])
    out = clf.serve(inputs)
    masked = clf.serve_masked(inputs, tf.constant(data["present"]))
    default = clf.signatures["serving_default"]
    reg = tf.saved_model.load(spec["reg"])
    big = tf.constant([open(p, "rb").read() for p in spec["big_photos"]])
    pred = reg.serve({"photo": big, "price": tf.constant(data["price"])})["predictions"]
    np.savez(
        spec["out"],
        proba=out["probabilities"].numpy(),
        label=out["label"].numpy().astype(str),
        classes=out["classes"].numpy().astype(str),
        masked=masked["probabilities"].numpy(),
        signature=sorted(default.structured_outputs),
        pred=pred.numpy(),
    )
    assert not [m for m in sys.modules if m == "mmsk" or m.startswith("mmsk.")]
    print("served without mmsk")
    """
)


def _png(array, path):
    Image.fromarray(array).save(path)
    return str(path)


def _data(folder, n=24, seed=0):
    """Photos as PNG files (8x8, the model's size; grey, RGBA and 16-bit among them), captions
    with one missing, clips, prices with one missing, and a category."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = np.arange(800) / 8000
    photos = []
    for i, c in enumerate(y):
        base = (rng.integers(0, 90, (8, 8, 3)) + 150 * c).astype(np.uint8)
        if i % 4 == 1:
            img = base[..., 0]  # grey
        elif i % 4 == 2:
            img = np.dstack([base, np.full((8, 8), 255, np.uint8)])  # opaque RGBA
        elif i % 4 == 3:
            img = base[..., 0].astype(np.uint16) * 257  # 16-bit grey
        else:
            img = base
        photos.append(_png(img, folder / f"p{i}.png"))
    photos[5] = None
    X = pd.DataFrame(
        {
            "photo": photos,
            "caption": [f"a {'bright' if c else 'dark'} photo of a thing" for c in y],
            "clip": [np.sin(2 * np.pi * (300 + 400 * c) * t).astype("float32") for c in y],
            "price": rng.normal(size=n) + y,
            "shape": rng.choice(["round", "square", "flat"], n),
        }
    )
    X.loc[3, "caption"] = None
    X.loc[4, "price"] = np.nan
    return X, np.array(["dark", "bright"])[y]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    X, y = _data(folder)
    prep = ModalityPreprocessor(
        image=ImagePreprocessor(size=8, normalization="standardize"),
        audio=AudioFeaturizer(sample_rate=8000, duration=0.1, n_mels=8),
        modalities={"shape": "categorical"},
    )
    clf = mmsk.MultimodalClassifier(preprocessor=prep, epochs=2, random_state=0).fit(X, y)
    big = X[["photo", "price"]].copy()  # 12x16 photos, resized and cropped to 6x8 in-graph
    big["photo"] = [
        _png(
            np.random.default_rng(i).integers(0, 255, (12, 16, 3), dtype=np.uint8),
            folder / f"big{i}.png",
        )
        for i in range(len(big))
    ]
    reg_prep = ModalityPreprocessor(
        image=ImagePreprocessor(size=(6, 8), crop_to_aspect_ratio=True)
    )
    reg = mmsk.MultimodalRegressor(preprocessor=reg_prep, epochs=1, random_state=0)
    reg.fit(big, X["price"].fillna(0))
    clf.export(folder / "clf")
    mmsk.export(reg, folder / "reg")
    present = np.stack(list(clf.preprocessor_.transform(X).masks.values()), 1)
    np.savez(
        folder / "arrays.npz",
        clips=np.stack(X["clip"]),
        price=X["price"].to_numpy(np.float32),
        present=present.astype(np.float32),
    )
    spec = {
        "arrays": str(folder / "arrays.npz"),
        "photos": [p if isinstance(p, str) else "" for p in X["photo"]],
        "big_photos": big["photo"].tolist(),
        "captions": X["caption"].fillna("").tolist(),
        "shapes": X["shape"].tolist(),
        "clf": str(folder / "clf"),
        "reg": str(folder / "reg"),
        "out": str(folder / "out.npz"),
    }
    (folder / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run(
        [sys.executable, "-c", SERVE, str(folder / "spec.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "served without mmsk" in run.stdout
    return clf, reg, X, big, np.load(folder / "out.npz"), folder


@pytest.mark.slow
def test_the_saved_model_predicts_like_the_estimator_without_mmsk(served):
    clf, _, X, _, out, folder = served
    expected = clf.predict_proba(X)
    np.testing.assert_allclose(out["masked"], expected, atol=EXACT)
    # serve() marks a missing image (b"") and missing numbers (NaN) by itself; a missing text
    # needs serve_masked (row 3), as "" is an empty text, not a missing one
    rows = np.arange(len(X)) != 3
    np.testing.assert_allclose(out["proba"][rows], expected[rows], atol=EXACT)
    assert out["classes"].tolist() == list(clf.classes_)
    assert out["label"][rows].tolist() == clf.predict(X)[rows].tolist()
    assert out["signature"].tolist() == ["classes", "label", "probabilities"]
    meta = json.loads((folder / "clf" / "mmsk_export.json").read_text())
    assert {c: v["dtype"] for c, v in meta["inputs"].items()} == {
        "photo": "string",
        "caption": "string",
        "clip": "float32",
        "price": "float32",
        "shape": "string",
    }


@pytest.mark.slow
def test_resized_and_cropped_images_predict_within_the_documented_tolerance(served):
    _, reg, _, big, out, _ = served
    np.testing.assert_allclose(out["pred"], reg.predict(big), atol=RESIZED)


def _encode(image, fmt, **kw):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["rgb", "grayscale", "rgba"])
def test_in_graph_decoding_matches_pil_within_two_levels(mode):
    import tensorflow as tf

    from mmsk._export._inputs import image

    ramp = (np.add.outer(np.arange(24), np.arange(24)) * 5).astype(np.uint8)
    rgb = np.stack([ramp, ramp.T, 255 - ramp], -1)
    cells = [
        _encode(Image.fromarray(rgb), "PNG"),
        _encode(Image.fromarray(ramp.astype(np.uint16) * 257), "PNG"),  # 16-bit grey
        _encode(Image.fromarray(rgb).convert("P"), "PNG", transparency=0),  # palette
        _encode(Image.fromarray(rgb).convert("P"), "GIF"),
        _encode(Image.fromarray(rgb), "BMP"),
        _encode(Image.fromarray(np.dstack([rgb, np.full((24, 24), 255, np.uint8)])), "PNG"),
    ]
    prep = ImagePreprocessor(size=(8, 6), color_mode=mode).fit(cells)
    expected = prep.transform(cells)
    got = image("p", "p", prep).build({"p": tf.constant(cells)})[0].numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2 / 255 + 1e-6)  # 8-bit rounding, twice


# ---- what cannot be exported ------------------------------------------------------------


def test_a_modality_that_cannot_run_in_graph_is_named(tmp_path):
    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    prep = ModalityPreprocessor(
        [("logs", make_pipeline(FunctionTransformer(np.log1p), StandardScaler()), ["a", "b"])],
        modalities={"a": "numeric"},
    )
    clf = mmsk.MultimodalClassifier(preprocessor=prep, epochs=1).fit(X, X["a"] > 9)
    with pytest.raises(ExportError, match=r"modality 'logs': FunctionTransformer is not a"):
        clf.export(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_estimator_fitted_on_a_modality_batch_is_refused(tmp_path):
    X = pd.DataFrame({"a": np.arange(20.0)})
    batch = ModalityPreprocessor().fit_transform(X)
    clf = mmsk.MultimodalClassifier(epochs=1).fit(batch, X["a"] > 9)
    with pytest.raises(ExportError, match=r"fitted on a ModalityBatch.*model_\.export"):
        mmsk.export(clf, tmp_path / "out")


def test_export_does_not_replace_a_folder_it_did_not_write(tmp_path):
    X = pd.DataFrame({"a": np.arange(20.0)})
    clf = mmsk.MultimodalClassifier(epochs=1).fit(X, X["a"] > 9)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ExportError, match="does not replace it"):
        clf.export(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_export_before_fit():
    from mmsk.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        mmsk.MultimodalRegressor().export("never")


def test_docstring_examples_run():
    import doctest

    import mmsk._export

    result = doctest.testmod(mmsk._export, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
