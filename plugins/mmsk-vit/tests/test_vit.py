"""The vit encoder, used by name through mmsk's registry (install the package first)."""

import pickle

import keras
import numpy as np
import pytest
from mmsk_vit import PositionEmbedding, ViTEncoder

import mmsk
from mmsk import ModalitySpec
from mmsk.preprocessing import ImagePreprocessor, ModalityPreprocessor

SMALL = {"patch_size": 4, "embedding_dim": 16, "num_heads": 2, "ff_dim": 32, "num_blocks": 1}


def classifier(**kw):
    params = dict(
        encoders={"image": "vit"},
        preprocessor=ModalityPreprocessor(image=ImagePreprocessor(size=16)),
        epochs=1,
        batch_size=8,
        random_state=0,
    )
    return mmsk.MultimodalClassifier(**{**params, **kw})


def build(encoder, shape=(16, 16, 3), sequence=False):
    x = keras.Input(shape=shape, name="photo")
    out, mask = encoder.encode(x, ModalitySpec("image", shape), sequence=sequence, name="photo")
    assert mask is None
    return keras.Model(x, out), out


def test_registered_under_its_names():
    assert mmsk.plugins.load("encoder", "vit") is ViTEncoder
    infos = {(p.group, p.name): p for p in mmsk.plugins.list_plugins()}
    assert infos["encoder", "vit"].distribution == "mmsk-vit"
    assert infos["encoder", "vit"].kinds == ("image",)
    assert infos["fusion", "film"].distribution == "mmsk-vit"


@pytest.mark.parametrize(("shape", "tokens"), [((16, 16, 3), 16), ((18, 13, 1), 12)])
def test_patch_tokens_and_mean_vector(shape, tokens):
    _, seq = build(ViTEncoder(**SMALL), shape=shape, sequence=True)
    assert tuple(seq.shape) == (None, tokens, 16)
    _, vector = build(ViTEncoder(**SMALL), shape=shape)
    assert tuple(vector.shape) == (None, 16)


def test_defaults_give_64_tokens_on_mmsk_default_images():
    _, seq = build(ViTEncoder(), shape=(64, 64, 3), sequence=True)
    assert tuple(seq.shape) == (None, 64, 64)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"patch_size": 32}, "at most the image's smaller side"),
        ({"embedding_dim": 30, "num_heads": 4}, "divisible by num_heads"),
        ({"patch_size": 0}, "Received: patch_size=0"),
        ({"num_heads": 2.5}, "Received: num_heads=2.5"),
    ],
)
def test_bad_settings_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        build(ViTEncoder(**params))


def test_position_embedding_is_registered_and_round_trips():
    assert keras.saving.get_registered_name(PositionEmbedding) == "mmsk_vit>PositionEmbedding"
    layer = PositionEmbedding(stddev=0.1, name="pos")
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(again, PositionEmbedding) and again.stddev == 0.1
    with pytest.raises(ValueError, match="stddev"):
        PositionEmbedding(stddev=0)


@pytest.mark.parametrize("fusion", ["concat", "attention"])
def test_classifier_by_name_fits_predicts_and_pickles(frame, fusion):
    X, y = frame
    clf = classifier(fusion=fusion).set_params(
        **{f"encoders__image__{k}": v for k, v in SMALL.items()}
    )
    clf.fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.isfinite(proba).all()
    restored = pickle.loads(pickle.dumps(clf))
    assert np.allclose(restored.predict_proba(X), proba, atol=1e-5)


def test_mmsk_conformance_check():
    from mmsk.testing import check_encoder

    check_encoder(ViTEncoder(**SMALL))
