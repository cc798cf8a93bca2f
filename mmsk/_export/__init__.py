"""``mmsk.export``: a TensorFlow SavedModel that takes raw columns and runs without mmsk.

The SavedModel holds the trained Keras model and every modality's
preprocessing as TensorFlow ops: image bytes are decoded and resized, text is
tokenised with the fitted vocabulary, waveforms become log-mel features, and
numbers and categories are imputed, scaled and one-hot encoded, all in-graph.
Load it with ``tf.saved_model.load(path)`` and call ``serve({column: tensor})``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from mmsk import _backend
from mmsk._batch import PRESENT
from mmsk._export._inputs import Modality, modality
from mmsk.exceptions import ExportError

__all__ = ["METADATA", "export"]

METADATA = "mmsk_export.json"


def _modalities(estimator: Any) -> list[Modality]:
    prep = getattr(estimator, "preprocessor_", None)
    if prep is None:
        raise ExportError(
            f"{type(estimator).__name__} was fitted on a ModalityBatch, so there is no "
            "preprocessing to export. Expected an estimator fitted on a DataFrame or an array; "
            "for already-preprocessed inputs use estimator.model_.export(path)"
        )
    out = []
    for name, transformer, columns in prep.transformers_:
        out.append(modality(name, transformer, columns, estimator.specs_[name]))
    return out


def _head(estimator: Any, tf: Any) -> tuple[Any, dict[str, Any]]:
    """A function of the model's output -> the serving outputs; and their description."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:  # a regressor: back to the target's scale
        mean = np.asarray(estimator.y_mean_, np.float32)
        scale = np.asarray(estimator.y_scale_, np.float32)
        single = estimator.n_outputs_ == 1

        def regress(out: Any) -> dict[str, Any]:
            pred = out * scale + mean
            return {"predictions": pred[:, 0] if single else pred}

        return regress, {"predictions": "float32 (N,) or (N, n_outputs)"}
    names = tf.constant([str(c) for c in classes.tolist()], tf.string)
    binary = estimator.target_type_ == "binary"
    multilabel = estimator.target_type_ == "multilabel"

    def classify(out: Any) -> dict[str, Any]:
        proba = tf.concat([1.0 - out, out], axis=1) if binary else out
        if multilabel:
            label = tf.cast(proba >= 0.5, tf.int32)
            return {"probabilities": proba, "labels": label, "classes": names}
        return {
            "probabilities": proba,
            "label": tf.gather(names, tf.argmax(proba, axis=1)),
            "classes": names,
        }

    return classify, {
        "probabilities": "float32 (N, n_classes), columns in `classes` order",
        "label" if not multilabel else "labels": "the predicted class name (str) per row",
        "classes": "the class names as strings",
    }


def _module(estimator: Any, mods: list[Modality], tf: Any) -> Any:
    model = estimator.model_
    order = list(estimator.modalities_)
    by_name = {m.name: m for m in mods}
    spec = {col: s for m in mods for col, s in m.inputs.items()}
    head, _ = _head(estimator, tf)

    module = tf.Module()
    module.model = model
    module.tracked = [obj for m in mods for obj in m.track]

    def run(inputs: dict[str, Any], present: Any) -> dict[str, Any]:
        arrays, masks = {}, []
        for name in order:
            arrays[name], mask = by_name[name].build(inputs)
            masks.append(mask)
        derived = tf.stack(masks, axis=1)
        arrays[PRESENT] = derived if present is None else derived * present
        return head(model(arrays, training=False))

    module.serve = tf.function(
        lambda inputs: run(inputs, None), input_signature=[spec], autograph=False
    )
    masked = [spec, tf.TensorSpec([None, len(order)], tf.float32)]
    module.serve_masked = tf.function(run, input_signature=masked, autograph=False)
    return module


def export(estimator: Any, path: str | os.PathLike[str]) -> Path:
    """Write a TensorFlow SavedModel that predicts from raw column values, without mmsk.

    Parameters
    ----------
    estimator : MultimodalClassifier or MultimodalRegressor
        Fitted on a DataFrame (or a numeric array, whose columns are ``x0..``).
    path : str or path-like
        A folder for the SavedModel; replaced if it holds an earlier export.

    Returns
    -------
    pathlib.Path
        ``path``.  It also holds ``mmsk_export.json``, describing each input.

    Raises
    ------
    ExportError
        A modality whose preprocessing cannot run in-graph (a custom
        transformer, a OneHotEncoder that drops categories, ...), named in the
        message; or an estimator fitted on a ModalityBatch.

    Notes
    -----
    ``tf.saved_model.load(path).serve(inputs)`` takes a dict with one tensor per
    DataFrame column: encoded image bytes (``tf.string``, ``b""`` when missing),
    text (``tf.string``), audio as float32 ``(N, samples)`` waveforms at the
    featurizer's ``sample_rate``, numbers as float32 (NaN when missing) and
    categories as strings (``""`` when missing).  It returns
    ``probabilities``, ``label`` and ``classes`` for a classifier (``labels``
    for multilabel targets) or ``predictions`` for a regressor.
    ``serve_masked(inputs, present)`` also takes the (N, n_modalities)
    presence matrix, for missing texts and clips.  See docs/saving.md.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd, mmsk
    >>> X = pd.DataFrame({"note": ["good", "bad"] * 10, "score": np.arange(20.0)})
    >>> clf = mmsk.MultimodalClassifier(epochs=1, random_state=0).fit(X, X["note"])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = mmsk.export(clf, tmp + "/served")
    ...     sorted(p.name for p in path.iterdir())
    ['assets', 'fingerprint.pb', 'mmsk_export.json', 'saved_model.pb', 'variables']
    """
    check_is_fitted(estimator, "model_")
    tf = _backend.tf()
    mods = _modalities(estimator)
    module = _module(estimator, mods, tf)
    _, outputs = _head(estimator, tf)
    target = Path(os.fspath(path))
    if target.exists() and not (target / METADATA).is_file():
        if not target.is_dir() or any(target.iterdir()):
            raise ExportError(
                f"Expected a new folder or an earlier export. Received: {os.fspath(target)!r}, "
                "which exists and holds something else; mmsk.export does not replace it"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        signatures = {
            "serving_default": module.serve.get_concrete_function(),
            "serve_masked": module.serve_masked.get_concrete_function(),
        }
        try:
            tf.saved_model.save(module, os.fspath(tmp), signatures=signatures)
        except Exception as exc:  # TensorFlow's own errors, e.g. an op it cannot save
            raise ExportError(f"TensorFlow could not save the model: {exc}") from exc
        meta = {
            "inputs": {
                col: {
                    "modality": m.name,
                    "kind": m.kind,
                    "dtype": s.dtype.name,
                    "shape": s.shape.as_list(),
                    "what": m.notes,
                }
                for m in mods
                for col, s in m.inputs.items()
            },
            "modalities": list(estimator.modalities_),
            "outputs": outputs,
        }
        (tmp / METADATA).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
