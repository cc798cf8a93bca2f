"""Cheap consistency checks of a loaded object's state, before anyone calls it.

A file whose state does not fit together (a shortened ``classes_``, a ``mean_``
of the wrong length, another save's ``.keras`` model swapped in) is refused here
with a :class:`~mmsk.exceptions.PersistenceError` naming the attribute, rather
than failing later in ``predict`` with an error that blames the user's data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmsk._batch import ModalitySpec
from mmsk.exceptions import PersistenceError

PRESENT = "mmsk_present"
# sklearn attributes of shape (n_features_in_,), or (k, n_features_in_)
PER_FEATURE = ("mean_", "scale_", "var_", "min_", "data_min_", "data_max_", "data_range_",
               "max_abs_", "statistics_", "feature_names_in_", "center_")  # fmt: skip


class _Fail:
    def __init__(self, where: str) -> None:
        self.where = where

    def __call__(self, attr: str, why: str) -> PersistenceError:
        return PersistenceError(
            f"{self.where}.{attr}: {why}; the saved state does not fit together (a damaged or "
            "crafted file), so mmsk.load refuses it"
        )


def _shape(value: Any) -> tuple[int, ...] | None:
    return tuple(value.shape) if isinstance(value, np.ndarray) else None


def check_estimator(obj: Any, where: str) -> None:
    """Check what can be checked cheaply for ``obj``'s class; raise on a mismatch."""
    fail = _Fail(where)
    state = vars(obj)
    module = type(obj).__module__
    if module.startswith("sklearn."):
        _check_sklearn(state, fail)
    if "model_" in state:
        _check_model(obj, state, fail)
    if module.startswith("mmsk.preprocessing"):
        _check_preprocessor(state, fail)


def _check_sklearn(state: dict[str, Any], fail: _Fail) -> None:
    n = state.get("n_features_in_")
    if n is None:
        return
    if type(n) is not int or n < 0:
        raise fail("n_features_in_", f"Expected a non-negative integer. Received: {n!r:.40}")
    for attr in PER_FEATURE:  # (n,), or (k, n) as GaussianNB's var_ per class
        shape = _shape(state.get(attr))
        if shape is not None and (not shape or shape[-1] != n or len(shape) > 2):
            raise fail(
                attr, f"Expected shape ({n},) or (k, {n}) for n_features_in_={n}. "
                f"Received: {shape}"
            )  # fmt: skip
    for attr in (*PER_FEATURE, "coef_", "intercept_"):
        value = state.get(attr)
        if attr != "feature_names_in_" and isinstance(value, np.ndarray):
            if value.dtype.kind not in "biufc":
                raise fail(attr, f"Expected numbers. Received: an array of dtype {value.dtype}")
    shape = _shape(state.get("coef_"))
    if shape is not None and (not shape or shape[-1] != n):
        raise fail(
            "coef_", f"Expected a last dimension of {n} (n_features_in_). Received: {shape}"
        )
    categories = state.get("categories_")
    if isinstance(categories, list) and len(categories) != n:
        raise fail("categories_", f"Expected {n} lists of categories. Received: {len(categories)}")
    classes = state.get("classes_")
    if classes is not None and isinstance(classes, np.ndarray) and classes.ndim != 1:
        raise fail("classes_", f"Expected a 1-d array. Received: shape {classes.shape}")


def _dim(shape: Any) -> tuple[Any, ...]:
    return tuple(shape)[1:]


def _check_model(obj: Any, state: dict[str, Any], fail: _Fail) -> None:
    model = state["model_"]
    keras = __import__("sys").modules.get("keras")
    if keras is None or not isinstance(model, keras.Model):
        raise fail("model_", f"Expected a Keras model. Received: {type(model).__name__}")
    specs = state.get("specs_")
    if not isinstance(specs, dict) or not all(
        isinstance(k, str) and isinstance(v, ModalitySpec) for k, v in specs.items()
    ):
        raise fail("specs_", "Expected a dict of modality name -> ModalitySpec")
    inputs = {getattr(t, "name", None): t for t in model.inputs}
    names = {n.split(":")[0] if isinstance(n, str) else n for n in inputs}
    if names != {*specs, PRESENT}:
        raise fail(
            "model_",
            f"the model's inputs {sorted(map(str, names))} do not match the saved modalities "
            f"{sorted(specs)} (is it another save's model?)",
        )
    for tensor in model.inputs:
        name = tensor.name.split(":")[0]
        want = (len(specs),) if name == PRESENT else tuple(specs[name].shape)
        if _dim(tensor.shape) != want:
            raise fail(
                "model_",
                f"input {name!r} has shape {_dim(tensor.shape)}; specs_ says {want} (is it "
                "another save's model?)",
            )
    modalities = state.get("modalities_")
    if modalities is not None and (
        not isinstance(modalities, list) or sorted(map(str, modalities)) != sorted(specs)
    ):
        raise fail("modalities_", f"Expected the modalities of specs_ {sorted(specs)}")
    units = model.outputs[0].shape[-1] if len(model.outputs) == 1 else None
    if "classes_" in state:
        classes, kind = state["classes_"], state.get("target_type_")
        if not isinstance(classes, np.ndarray) or classes.ndim != 1:
            raise fail("classes_", "Expected a 1-d array of class labels")
        if kind not in ("binary", "multiclass", "multilabel"):
            raise fail("target_type_", f"Expected binary, multiclass or multilabel. "
                       f"Received: {kind!r:.40}")  # fmt: skip
        if kind == "binary" and len(classes) != 2:
            raise fail("classes_", f"a binary classifier has 2 classes. Received: {len(classes)}")
        n_units = 1 if kind == "binary" else len(classes)
        if units != n_units:
            raise fail(
                "classes_",
                f"{len(classes)} classes ({kind}) need a model output of {n_units} units; the "
                f"model has {units}",
            )
        encoder = state.get("_label_encoder")
        saved = getattr(encoder, "classes_", None) if encoder is not None else None
        if kind != "multilabel" and saved is not None and (
            not isinstance(saved, np.ndarray) or saved.shape != classes.shape
            or not np.array_equal(saved, classes)
        ):  # fmt: skip
            raise fail("_label_encoder", "its classes_ differ from the estimator's classes_")
    if "n_outputs_" in state:
        n = state["n_outputs_"]
        if type(n) is not int or n != units:
            raise fail("n_outputs_", f"the model has {units} outputs. Received: {n!r:.40}")
        for attr in ("y_mean_", "y_scale_"):
            shape = _shape(state.get(attr))
            if attr in state and shape != (n,):
                raise fail(attr, f"Expected shape ({n},). Received: {shape}")


def _check_preprocessor(state: dict[str, Any], fail: _Fail) -> None:
    spec = state.get("spec_")
    if spec is None:
        return
    if not isinstance(spec, ModalitySpec):
        raise fail("spec_", "Expected a ModalitySpec")
    shape = tuple(spec.shape)
    for attr in ("mean_", "std_", "scale_"):
        got = _shape(state.get(attr))
        if got and got != (shape[-1],):
            raise fail(attr, f"Expected shape ({shape[-1]},) for spec_ {shape}. Received: {got}")
    size = state.get("size_")
    if spec.kind == "image" and size is not None and tuple(size) != shape[:2]:
        raise fail("size_", f"Expected {shape[:2]} (spec_). Received: {size!r:.40}")
    if spec.kind == "audio" and "n_frames_" in state and state["n_frames_"] != shape[0]:
        raise fail(
            "n_frames_", f"Expected {shape[0]} (spec_). Received: {state['n_frames_']!r:.40}"
        )
    if spec.kind == "text":
        length, chars = state.get("sequence_length_"), state.get("char_sequence_length_", 0)
        if length is not None and (
            not isinstance(chars, int) or (length + chars,) != shape or chars != spec.char_columns
        ):  # fmt: skip
            raise fail(
                "sequence_length_",
                f"Expected {shape} (spec_) for {spec.char_columns} character n-gram "
                f"columns. Received: {length!r:.40} + {chars!r:.40}",
            )
        char_vocab = state.get("char_vocabulary_")
        if isinstance(char_vocab, list) and len(char_vocab) > spec.char_vocabulary_size:
            raise fail("char_vocabulary_", f"{len(char_vocab)} n-grams exceed "
                       f"char_vocabulary_size={spec.char_vocabulary_size}")  # fmt: skip
        vocab, size = state.get("vocabulary_"), state.get("vocabulary_size_")
        if isinstance(vocab, (list, dict)) and isinstance(size, int) and len(vocab) > size:
            raise fail("vocabulary_", f"{len(vocab)} words exceed vocabulary_size_={size}")
        if size is not None and spec.vocabulary_size is not None and size != spec.vocabulary_size:
            raise fail("vocabulary_size_", f"spec_ says {spec.vocabulary_size}. Received: {size}")
