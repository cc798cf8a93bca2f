"""The film fusion, used by name through mmsk's registry (install the package first)."""

import pickle

import keras
import numpy as np
import pytest
from mmsk_vit import FeatureModulation, FiLMFusion

import mmsk
from mmsk.components import Encoded
from mmsk.preprocessing import ImagePreprocessor, ModalityPreprocessor


def encoded(names=("photo", "caption", "price"), kinds=("image", "text", "numeric")):
    present = keras.Input(shape=(len(names),), name="present")
    return [
        Encoded(name, i, kind, keras.Input(shape=(4,), name=name), None, present)
        for i, (name, kind) in enumerate(zip(names, kinds, strict=True))
    ]


def modulated(fusion, parts):
    """Names of the modalities the fusion modulated, and the conditioner's."""
    model = keras.Model([e.tensor for e in parts] + [parts[0].present], fusion.fuse(parts))
    film = sorted(layer.name for layer in model.layers if isinstance(layer, FeatureModulation))
    own = [layer.name for layer in model.layers if layer.name.endswith("_film_own")]
    return film, own


def test_registered_under_its_name():
    assert mmsk.plugins.load("fusion", "film") is FiLMFusion


@pytest.mark.parametrize(
    ("conditioner", "own"),
    [(None, "price"), ("caption", "caption"), ("image", "photo"), ("numeric", "price")],
)
def test_conditioner_by_name_kind_or_last(conditioner, own):
    film, owns = modulated(FiLMFusion(conditioner=conditioner, units=8), encoded())
    assert owns == [f"{own}_film_own"]
    assert film == sorted(f"{n}_film" for n in ("photo", "caption", "price") if n != own)


def test_unknown_conditioner_is_named():
    with pytest.raises(ValueError, match=r"Received: conditioner='colour'"):
        FiLMFusion(conditioner="colour").fuse(encoded())


def test_single_modality_is_its_projection():
    film, owns = modulated(FiLMFusion(units=8), encoded(("price",), ("numeric",)))
    assert film == [] and owns == ["price_film_own"]


def test_modulation_is_skipped_where_the_conditioner_is_missing():
    x = np.array([[1.0, 2.0], [1.0, 2.0]], "float32")
    gamma = np.full((2, 2), 1.0, "float32")
    beta = np.full((2, 2), 0.5, "float32")
    present = np.array([[1.0, 1.0], [1.0, 0.0]], "float32")
    out = FeatureModulation(index=1)(x, gamma, beta, present).numpy()
    assert out.tolist() == [[2.5, 4.5], [1.0, 2.0]]


def test_feature_modulation_is_registered_and_round_trips():
    assert keras.saving.get_registered_name(FeatureModulation) == "mmsk_vit>FeatureModulation"
    again = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(FeatureModulation(index=2))
    )
    assert again.index == 2
    with pytest.raises(ValueError, match="index"):
        FeatureModulation(index=-1)


def test_classifier_with_vit_and_film_by_name(frame):
    X, y = frame
    X = X.copy()
    X.loc[::5, "image"] = None  # some rows miss their image: zeros, masked
    clf = mmsk.MultimodalClassifier(
        encoders={"image": "vit"},
        fusion="film",
        preprocessor=ModalityPreprocessor(image=ImagePreprocessor(size=16)),
        epochs=1,
        batch_size=8,
        random_state=0,
    ).set_params(encoders__image__patch_size=4, fusion__units=8)
    clf.fit(X, y)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    assert clf.modalities_ == ["image", "numeric"]  # the numeric columns condition
    assert "numeric_film_own" in [layer.name for layer in clf.model_.layers]
    restored = pickle.loads(pickle.dumps(clf))
    assert np.allclose(restored.predict_proba(X), proba, atol=1e-5)


def test_mmsk_conformance_check():
    from mmsk.testing import check_fusion

    check_fusion(FiLMFusion(units=8))
