"""Conformance checks for encoder and fusion plugins (like sklearn's check_estimator)."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils import estimator_checks as sk

from mmsk import _backend
from mmsk._batch import KINDS, ModalityBatch, ModalitySpec
from mmsk.components import Encoder, Fusion
from mmsk.exceptions import PluginContractError

# Tiny inputs of every kind: (spec, random rows)
_SPECS = {
    "image": ModalitySpec("image", (16, 16, 3), "float32"),
    "text": ModalitySpec("text", (6,), "int32", vocabulary_size=20),
    "audio": ModalitySpec("audio", (16, 8), "float32"),
    "numeric": ModalitySpec("numeric", (3,), "float32"),
    "categorical": ModalitySpec("categorical", (4,), "float32"),
}


def _rows(spec: ModalitySpec, n: int, rng: np.random.Generator) -> np.ndarray:
    if spec.kind == "text":
        ids = rng.integers(2, spec.vocabulary_size or 2, (n, *spec.shape))
        ids[:, 4:] = 0  # padding
        return ids.astype("int32")
    if spec.kind == "categorical":
        return np.eye(spec.shape[0], dtype="float32")[rng.integers(0, spec.shape[0], n)]
    return rng.random((n, *spec.shape), dtype=np.float32)


def _batch(kinds: list[str], n: int = 24, seed: int = 0) -> tuple[ModalityBatch, np.ndarray]:
    rng = np.random.default_rng(seed)
    specs = {f"m_{k}": _SPECS[k] for k in kinds}
    arrays = {name: _rows(spec, n, rng) for name, spec in specs.items()}
    masks = {name: np.arange(n) % 5 != 0 for name in specs}  # some rows missing
    return ModalityBatch(arrays, specs, masks), np.arange(n) % 2


def _step(what: str, check: Callable[[], Any]) -> Any:
    try:
        return check()
    except PluginContractError:
        raise
    except Exception as exc:
        raise PluginContractError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _check_params(obj: Any, base: Any) -> None:
    name = type(obj).__name__
    if not isinstance(obj, base):
        raise PluginContractError(
            f"{name} must subclass mmsk.components.{base.__name__}; got bases "
            f"{[b.__name__ for b in type(obj).__mro__[1:]]}"
        )
    rules = "scikit-learn's parameter rules: __init__ must store each argument unchanged"
    copy: Any = _step(f"clone({name}) failed ({rules})", partial(clone, obj))
    for check in (
        sk.check_parameters_default_constructible,
        sk.check_no_attributes_set_in_init,
        sk.check_get_params_invariance,
        sk.check_set_params,
        sk.check_estimator_repr,
    ):
        rule = f"{name} breaks scikit-learn's parameter rules ({check.__name__})"
        with warnings.catch_warnings():  # components check settings when set, on purpose
            warnings.filterwarnings("ignore", ".*delay parameter validation", UserWarning)
            _step(rule, partial(check, name, clone(obj)))
    if copy.get_params() != obj.get_params():
        raise PluginContractError(f"clone({name}) changed its parameters")


def _check_in_model(kinds: list[str], **params: Any) -> None:
    from mmsk.models import MultimodalClassifier

    X, y = _batch(kinds)
    clf = MultimodalClassifier(epochs=1, batch_size=8, random_state=0, **params)
    what = f"{params} in a MultimodalClassifier on {kinds}"
    _step(f"fitting {what}", lambda: clf.fit(X, y))
    proba = _step(f"predicting with {what}", lambda: clf.predict_proba(X))
    if not np.isfinite(proba).all():
        raise PluginContractError(f"{what} predicts NaN or inf (rows with missing modalities?)")
    # deepcopy runs the estimator's __getstate__/__setstate__ (the .keras round trip with
    # safe_mode that pickling, joblib and clone-with-state use) without unpickling bytes.
    restored = _step(
        f"save/load (__getstate__/__setstate__ through .keras with safe_mode) of {what}; "
        "register custom Keras layers with keras.saving.register_keras_serializable and do "
        "not use Lambda layers",
        lambda: copy.deepcopy(clf),
    )
    if not np.allclose(restored.predict_proba(X), proba, atol=1e-6):
        raise PluginContractError(f"{what} predicts differently after save/load")


def check_encoder(encoder: Encoder) -> None:
    """Check that an encoder keeps mmsk's plugin contract; raise if it does not.

    Checks scikit-learn's parameter rules (default-constructible, ``__init__``
    stores arguments unchanged, get/set_params, clone), that ``kinds`` names
    known modality kinds, that :meth:`~mmsk.components.Encoder.encode` builds
    a vector (N, d) and a token sequence (N, T, d) with an optional (N, T)
    mask on a tiny input of every accepted kind, that every layer it adds is
    named with the ``name`` prefix (so two columns of one kind can share a
    model), and that a small
    :class:`~mmsk.MultimodalClassifier` using it fits, predicts finite values
    with missing rows, and gives identical predictions after save/load.

    Parameters
    ----------
    encoder : Encoder
        An instance, with the settings to check.

    Raises
    ------
    mmsk.exceptions.PluginContractError
        Names the broken rule.

    Examples
    --------
    >>> from mmsk.components import MLPEncoder
    >>> check_encoder(MLPEncoder(units=4))
    """
    _check_params(encoder, Encoder)
    name = type(encoder).__name__
    kinds = tuple(getattr(encoder, "kinds", ()))
    if not kinds or not set(kinds) <= set(KINDS):
        raise PluginContractError(
            f"{name}.kinds must be a non-empty tuple of modality kinds from {KINDS}. "
            f"Received: {kinds!r}"
        )
    keras = _backend.keras()
    for kind in kinds:
        spec = _SPECS[kind]
        for sequence in (False, True):
            x = keras.Input(shape=spec.shape, dtype=spec.dtype, name="x")
            out = _step(
                f"{name}.encode on a {kind} input {spec.shape} (sequence={sequence})",
                partial(encoder.encode, x, spec, sequence=sequence, name=f"check_{kind}"),
            )
            _check_output(name, kind, sequence, out)
        _check_layer_names(encoder, kind)
        _check_in_model([kind, "numeric"] if kind != "numeric" else [kind],
                        encoders={kind: clone(encoder)})  # fmt: skip
        _check_in_model([kind], encoders={kind: clone(encoder)}, fusion="attention")


def _check_layer_names(encoder: Encoder, kind: str) -> None:
    """Every layer an encoder adds is named ``<name>...``, so two columns of one kind fit."""
    keras = _backend.keras()
    name, spec = type(encoder).__name__, _SPECS[kind]
    inputs = [keras.Input(shape=spec.shape, dtype=spec.dtype, name=f"in_{i}") for i in (1, 2)]
    prefixes = [f"first_{kind}", f"second_{kind}"]
    outputs = [
        _step(f"{name}.encode on a {kind} input", partial(clone(encoder).encode, x, spec,
                                                          sequence=False, name=prefix))
        for x, prefix in zip(inputs, prefixes, strict=True)
    ]  # fmt: skip
    try:
        model = keras.Model(inputs, [out[0] for out in outputs])
    except ValueError as exc:
        raise PluginContractError(
            f"{name}.encode on two {kind} columns builds layers with the same name "
            f"({exc}); name every layer with the `name` argument as a prefix, e.g. "
            f'keras.layers.Dense(8, name=f"{{name}}_dense")'
        ) from exc
    stray = [
        layer.name
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
        and not layer.name.startswith(tuple(prefixes))
    ]
    if stray:
        raise PluginContractError(
            f"{name}.encode must name each layer it adds with the `name` argument as a "
            f"prefix (name={prefixes[0]!r} -> '{prefixes[0]}_...'). Received layers: {stray}"
        )


def _check_output(name: str, kind: str, sequence: bool, out: Any) -> None:
    if not (isinstance(out, tuple) and len(out) == 2):
        raise PluginContractError(
            f"{name}.encode must return (tensor, token_mask_or_None). Received: {type(out)}"
        )
    tensor, mask = out
    rank = 3 if sequence else 2
    if len(tensor.shape) != rank:
        raise PluginContractError(
            f"{name}.encode(sequence={sequence}) on {kind} must return a rank-{rank} tensor. "
            f"Received shape: {tuple(tensor.shape)}"
        )
    if mask is not None and (not sequence or tuple(mask.shape) != tuple(tensor.shape[:2])):
        raise PluginContractError(
            f"{name}.encode's token mask must be None or of shape (N, T) = "
            f"{tuple(tensor.shape[:2])} for a sequence. Received: {tuple(mask.shape)}"
        )


def check_fusion(fusion: Fusion) -> None:
    """Check that a fusion keeps mmsk's plugin contract; raise if it does not.

    Checks scikit-learn's parameter rules and that a small
    :class:`~mmsk.MultimodalClassifier` with this fusion fits on one and on
    three modalities (image, text, numeric; some rows missing), predicts
    finite values, and predicts the same after save/load.

    Raises
    ------
    mmsk.exceptions.PluginContractError
        Names the broken rule.

    Examples
    --------
    >>> from mmsk.components import SumFusion
    >>> check_fusion(SumFusion(units=4))
    """
    _check_params(fusion, Fusion)
    if not isinstance(getattr(fusion, "sequence", None), bool):
        raise PluginContractError(
            f"{type(fusion).__name__}.sequence must be True (token sequences) or False (vectors)"
        )
    _check_in_model(["numeric"], fusion=clone(fusion))
    _check_in_model(["image", "text", "numeric"], fusion=clone(fusion))
