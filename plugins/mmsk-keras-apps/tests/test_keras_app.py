"""The keras_app encoder, used by name through mmsk's registry (install the package first)."""

import pickle

import keras
import numpy as np
import pytest
from keras.src.utils import file_utils
from mmsk_keras_apps import BACKBONES, KerasAppEncoder, PretrainedWeightsError

import mmsk
from mmsk import ModalitySpec
from mmsk.preprocessing import ImagePreprocessor, ModalityPreprocessor

# A frozen minimalistic MobileNetV3Small: the fastest configuration to fit on a CPU.
FAST = {"trainable": False, "minimalistic": True}


def classifier(**kw):
    params = dict(
        encoders={"image": "keras_app"},
        preprocessor=ModalityPreprocessor(image=ImagePreprocessor(size=16)),
        epochs=1,
        batch_size=8,
        random_state=0,
    )
    return mmsk.MultimodalClassifier(**{**params, **kw})


def build(encoder, shape=(16, 16, 3), sequence=False, name="photo"):
    """Apply the encoder to a symbolic input; return (model from input to output, output)."""
    x = keras.Input(shape=shape, name=name)
    out, mask = encoder.encode(x, ModalitySpec("image", shape), sequence=sequence, name=name)
    assert mask is None
    return keras.Model(x, out), out


def test_registered_under_its_name():
    assert mmsk.plugins.load("encoder", "keras_app") is KerasAppEncoder
    (info,) = [p for p in mmsk.plugins.list_plugins("encoder") if p.name == "keras_app"]
    assert (info.distribution, info.kinds) == ("mmsk-keras-apps", ("image",))


def test_classifier_by_name_fits_predicts_and_pickles(frame):
    X, y = frame
    clf = classifier().set_params(**{f"encoders__image__{k}": v for k, v in FAST.items()})
    clf.fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert set(clf.predict(X)) <= {0, 1}
    restored = pickle.loads(pickle.dumps(clf))
    assert np.allclose(restored.predict_proba(X), proba, atol=1e-5)


@pytest.mark.parametrize(
    ("backbone", "extra", "width"),
    [
        ("mobilenet_v3_small", {}, 576),
        ("mobilenet_v3_small", {"minimalistic": True, "alpha": 0.5}, 288),
        ("efficientnet_b0", {}, 1280),
        ("resnet50", {}, 2048),
    ],
)
def test_backbones_give_vectors_and_token_sequences(backbone, extra, width):
    encoder = KerasAppEncoder(backbone=backbone, image_size=64, **extra)
    _, vector = build(encoder)
    assert tuple(vector.shape) == (None, width)
    _, tokens = build(encoder, sequence=True)
    assert tuple(tokens.shape) == (None, 4, width)  # a 2x2 feature map from 64x64


def test_all_documented_backbones_exist():
    assert sorted(BACKBONES) == [
        "efficientnet_b0", "mobilenet_v3_large", "mobilenet_v3_small", "resnet50",
    ]  # fmt: skip
    for info in BACKBONES.values():
        assert callable(getattr(keras.applications, info.factory))


def test_small_and_grayscale_images_are_resized_and_repeated_to_rgb():
    model, out = build(KerasAppEncoder(**FAST, units=8), shape=(8, 12, 1))
    assert tuple(out.shape) == (None, 8)
    layers = {layer.name: layer for layer in model.layers}
    assert "photo_to_rgb" in layers
    assert tuple(layers["photo_resize"].output.shape) == (None, 32, 32, 3)
    assert layers["photo_mobilenet_v3_small"].trainable is False


def test_image_size_resizes_and_large_images_are_kept():
    model, _ = build(KerasAppEncoder(**FAST, image_size=(40, 48)))
    assert tuple(model.get_layer("photo_resize").output.shape) == (None, 40, 48, 3)
    model, _ = build(KerasAppEncoder(**FAST), shape=(36, 36, 3))
    assert "photo_resize" not in [layer.name for layer in model.layers]


@pytest.mark.parametrize(
    ("normalization", "pixels", "expected"),
    [("unit", [0.0, 1.0], [0.0, 255.0]), ("symmetric", [-1.0, 1.0], [0.0, 255.0])],
)
def test_pixels_are_mapped_to_0_255(normalization, pixels, expected):
    model, _ = build(KerasAppEncoder(**FAST, normalization=normalization), shape=(32, 32, 3))
    scaled = keras.Model(model.input, model.get_layer("photo_to_255").output)
    x = np.stack([np.full((32, 32, 3), p, "float32") for p in pixels])
    assert np.allclose(scaled.predict(x, verbose=0)[:, 0, 0, 0], expected)


def test_pixels_already_0_255_are_not_rescaled():
    model, _ = build(KerasAppEncoder(**FAST, normalization="none"), shape=(32, 32, 3))
    assert "photo_to_255" not in [layer.name for layer in model.layers]


def test_resnet50_gets_caffe_preprocessing_inside_the_model():
    model, _ = build(KerasAppEncoder(backbone="resnet50", trainable=False), shape=(32, 32, 3))
    caffe = keras.Model(model.input, model.get_layer("photo_caffe").output)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    expected = keras.applications.resnet50.preprocess_input(x * 255.0)
    assert np.allclose(caffe.predict(x, verbose=0), expected, atol=1e-3)
    assert not model.get_layer("photo_caffe").trainable_weights


@pytest.mark.parametrize(
    ("params", "shape", "message"),
    [
        ({"backbone": "vgg99"}, (16, 16, 3), "Expected backbone in"),
        ({"normalization": "standardize"}, (16, 16, 3), "Expected normalization in"),
        ({"image_size": 16}, (16, 16, 3), "each at least 32"),
        ({"units": 0}, (16, 16, 3), "units"),
        ({}, (16, 16, 4), "1 or 3"),
    ],
)
def test_bad_settings_are_named(params, shape, message):
    with pytest.raises(ValueError, match=message):
        build(KerasAppEncoder(**params), shape=shape)


def test_imagenet_weights_offline_give_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(PretrainedWeightsError, match="internet access") as err:
        build(KerasAppEncoder(weights="imagenet", image_size=224), shape=(32, 32, 3))
    assert "name resolution" in str(err.value) and "weights=None" in str(err.value)


def test_bad_imagenet_settings_are_keras_errors_not_download_errors():
    with pytest.raises(ValueError, match="alpha"):
        build(KerasAppEncoder(weights="imagenet", alpha=0.5), shape=(32, 32, 3))


def test_weights_from_a_file(tmp_path):
    source = keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), include_top=False, weights=None, minimalistic=True
    )
    path = str(tmp_path / "backbone.weights.h5")
    source.save_weights(path)
    model, _ = build(KerasAppEncoder(weights=path, minimalistic=True), shape=(32, 32, 3))
    loaded = model.get_layer("photo_mobilenet_v3_small").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(loaded, source.get_weights(), strict=True))


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(PretrainedWeightsError, match="could not find the weights file"):
        build(KerasAppEncoder(weights=str(tmp_path / "nope.weights.h5")), shape=(32, 32, 3))


def test_mmsk_conformance_check():
    from mmsk.testing import check_encoder

    check_encoder(KerasAppEncoder(**FAST))


@pytest.mark.slow
def test_trainable_backbone_fits(frame):
    X, y = frame
    clf = classifier().set_params(encoders__image__minimalistic=True).fit(X, y)
    assert clf.model_.get_layer("image_mobilenet_v3_small").trainable
    assert np.isfinite(clf.history_["loss"]).all()
