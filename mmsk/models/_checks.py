"""Input conversion of the training core: rows of any accepted form -> a ModalityBatch.

scikit-learn's validation raises bare ``ValueError``/``TypeError`` whose messages
name neither the column nor the row; these functions check first where mmsk can
say more, and turn what remains into :mod:`mmsk.exceptions` classes (keeping
scikit-learn's wording, which its estimator checks look for).  They decide by
the type of input and by which step failed, never by an error's text.

Internal use: part of the training core (:mod:`mmsk.models._training`, which
re-exports ``to_batch``, ``check_batch`` and ``check_target``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import clone
from sklearn.utils.validation import _check_sample_weight, check_array, validate_data

from mmsk._batch import ModalityBatch
from mmsk.exceptions import ColumnMismatchError, InputError, InputTypeError, MmskError
from mmsk.preprocessing import ModalityPreprocessor

_EXPECTED = "expected a DataFrame, a ModalityBatch, or a 2-D array of numbers"


def check_frame_columns(X: pd.DataFrame) -> None:
    """Refuse duplicate column names (after ``str``), naming them and their positions."""
    names = [str(c) for c in X.columns]
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        where = "; ".join(f"{c!r} at positions {[i for i, n in enumerate(names) if n == c]}"
                          for c in dup)  # fmt: skip
        raise InputError(
            f"Expected unique column names, one per input. Received duplicates: {where}"
        )


def check_numeric_array(X: np.ndarray) -> None:
    """NaN/inf in a 2-D float array: name the first bad cell's column (``x<j>``) and row."""
    if X.ndim != 2 or X.dtype.kind not in "fc" or X.size == 0:
        return
    finite = np.isfinite(X)
    if finite.all():
        return
    rows, cols = np.nonzero(~finite)
    value = X[rows[0], cols[0]]
    what = "NaN" if np.isnan(value) else "inf"
    more = f" ({len(rows)} non-finite values in all)" if len(rows) > 1 else ""
    raise InputError(
        f"column 'x{cols[0]}', row {int(rows[0])}: X holds {what}{more}; expected finite "
        "numbers in an array (pass a DataFrame to treat NaN as a missing value)"
    )


def _refuse_container(X: Any) -> None:
    """Sparse matrices, Series and plain mappings: say what to pass instead."""
    if sparse.issparse(X):
        raise InputTypeError(
            "Expected a DataFrame, a ModalityBatch or a dense 2-D array. Received: a sparse "
            f"{type(X).__name__}; sparse input is not supported (pass X.toarray())"
        )
    if isinstance(X, pd.Series):
        raise InputTypeError(
            "Expected a DataFrame (one column per input), a ModalityBatch or a 2-D array. "
            f"Received: a Series named {X.name!r}; pass X.to_frame() for a single column"
        )
    if isinstance(X, Mapping) and not isinstance(X, ModalityBatch):
        raise InputTypeError(
            "Expected a DataFrame (one column per input), a ModalityBatch or a 2-D array. "
            f"Received: a {type(X).__name__}; pass pandas.DataFrame(X)"
        )
    if isinstance(X, np.ndarray):
        check_numeric_array(X)


def _with_columns(estimator: Any, text: str, fit: bool) -> str:
    """scikit-learn's message (its estimator checks look for it) + the columns expected."""
    seen = getattr(estimator, "feature_names_in_", None)
    if fit or seen is None:
        return text
    return f"{text.rstrip()}\nExpected the columns seen in fit: {list(seen)}"


def _check_columns(estimator: Any, X: Any, fit: bool) -> None:
    """Record (``fit``) or compare the column names and count, as scikit-learn does."""
    if not fit and isinstance(X, pd.DataFrame) and hasattr(estimator, "feature_names_in_"):
        return  # the preprocessor selects columns by name, as ColumnTransformer does
    try:
        validate_data(estimator, X, reset=fit, skip_check_array=True)
    except ValueError as exc:  # this step checks only the columns
        raise ColumnMismatchError(_with_columns(estimator, str(exc), fit)) from exc


def to_batch(estimator: Any, X: Any, *, fit: bool) -> ModalityBatch:
    """Rows in any accepted form -> a :class:`~mmsk.ModalityBatch` for ``estimator``.

    Parameters
    ----------
    estimator : BaseMultimodal
        Its ``preprocessor``/``modalities`` settings are read; with ``fit=True``
        it learns ``preprocessor_``, ``n_features_in_`` and
        ``feature_names_in_``, as scikit-learn's ``validate_data`` sets them.
    X : DataFrame, ModalityBatch or 2-D array of numbers
        A raw table (preprocessed by a clone of ``estimator.preprocessor``, or
        the inferred default), preprocessed data, or plain numbers (columns
        ``x0``, ``x1``, ...).  After a fit on a DataFrame, the preprocessing
        selects a DataFrame's columns by name, as ColumnTransformer does.
    fit : bool
        Fit the preprocessing (True) or apply the fitted one (False).

    Returns
    -------
    ModalityBatch

    Raises
    ------
    InputTypeError, InputError, ColumnMismatchError
        For input of the wrong type, bad values, or other columns than in fit.
    """
    _refuse_container(X)
    if isinstance(X, ModalityBatch):
        if fit:
            estimator.preprocessor_ = None
            estimator.n_features_in_ = X.n_modalities
        elif estimator.preprocessor_ is not None:
            raise InputError(
                "this estimator was fitted on a DataFrame; pass a DataFrame with the "
                f"columns {list(estimator.feature_names_in_)}, not a ModalityBatch"
            )
        return X
    if not fit and estimator.preprocessor_ is None:
        raise InputError(
            "this estimator was fitted on a ModalityBatch; pass a ModalityBatch with "
            f"modalities {estimator.modalities_}"
        )
    if isinstance(X, pd.DataFrame):
        check_frame_columns(X)
        if fit or not hasattr(estimator, "feature_names_in_"):
            _check_columns(estimator, X, fit)
        # else: fitted on a DataFrame, the preprocessor selects its columns by name
    else:
        try:
            X = check_array(X, dtype=np.float64, estimator=estimator)
        except TypeError as exc:
            raise InputTypeError(f"X: {exc}") from exc
        except ValueError as exc:
            raise InputError(f"X: {exc}; {_EXPECTED}") from exc
        _check_columns(estimator, X, fit)
        X = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    try:
        if fit:
            base = estimator.preprocessor or ModalityPreprocessor(modalities=estimator.modalities)
            estimator.preprocessor_ = clone(base)
            return estimator.preprocessor_.fit_transform(X)
        return estimator.preprocessor_.transform(X)
    except ColumnMismatchError as exc:
        raise ColumnMismatchError(_with_columns(estimator, str(exc), fit)) from exc
    except MmskError:
        raise
    except TypeError as exc:
        raise InputTypeError(f"X: {exc}") from exc
    except ValueError as exc:
        raise InputError(f"X: {exc}; {_EXPECTED}") from exc


def check_batch(estimator: Any, batch: ModalityBatch) -> None:
    """Refuse a batch whose modalities or row shapes differ from those seen in fit."""
    names = list(batch.keys())
    if names != estimator.modalities_:
        raise ColumnMismatchError(
            f"Expected modalities {estimator.modalities_} as seen in fit. Received: {names}"
        )
    for name in names:
        if batch.specs[name].shape != estimator.specs_[name].shape:
            raise InputError(
                f"modality {name!r}: rows of shape {batch.specs[name].shape}; "
                f"expected {estimator.specs_[name].shape} as seen in fit"
            )


def check_target(y: Any, n_rows: int) -> np.ndarray:
    """``y`` as an array with one target per row, or an InputError."""
    y = np.asarray(y) if not hasattr(y, "iloc") else y.to_numpy()
    if len(y) != n_rows:
        raise InputError(f"X has {n_rows} rows but y has {len(y)}; expected one target per row")
    return y


def check_sample_weight(sample_weight: Any, batch: ModalityBatch) -> np.ndarray | None:
    """Fit's ``sample_weight`` as float32, one weight per row (None stays None)."""
    if sample_weight is None:
        return None
    try:
        return _check_sample_weight(sample_weight, batch, dtype=np.float32)
    except ValueError as exc:
        raise InputError(f"sample_weight: {exc}") from exc


def check_score_weight(sample_weight: Any, n_rows: int) -> None:
    """A ``score`` weight must have one finite value per row."""
    if sample_weight is None:
        return
    w = np.asarray(sample_weight)
    if w.ndim != 1 or len(w) != n_rows:
        raise InputError(
            f"Expected sample_weight of shape ({n_rows},), one weight per row. "
            f"Received: shape {w.shape}"
        )
