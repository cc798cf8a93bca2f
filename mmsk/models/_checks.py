"""Input and parameter checks shared by the estimators, raising mmsk's errors.

scikit-learn's validation raises bare ``ValueError``/``TypeError`` whose messages
name neither the column nor the row; these wrappers check first where mmsk can
say more, and turn what remains into :mod:`mmsk.exceptions` classes (keeping
scikit-learn's wording, which its estimator checks look for).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from mmsk._batch import ModalityBatch
from mmsk._validation import check_param_names
from mmsk.exceptions import (
    ColumnMismatchError,
    InputError,
    InputTypeError,
    MmskError,
    ParameterError,
)


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


class CheckedInputMixin:
    """Put before ``BaseMultimodal`` in the bases: mmsk errors for bad X and params."""

    preprocessor: Any

    def _to_batch(self, X: Any, *, fit: bool) -> ModalityBatch:
        if sparse.issparse(X):
            raise InputTypeError(
                "Expected a DataFrame, a ModalityBatch or a dense 2-D array. Received: a sparse "
                f"{type(X).__name__}; sparse input is not supported (pass X.toarray())"
            )
        if isinstance(X, pd.DataFrame):
            check_frame_columns(X)
        elif isinstance(X, pd.Series):
            raise InputTypeError(
                "Expected a DataFrame (one column per input), a ModalityBatch or a 2-D array. "
                f"Received: a Series named {X.name!r}; pass X.to_frame() for a single column"
            )
        elif isinstance(X, Mapping) and not isinstance(X, ModalityBatch):
            raise InputTypeError(
                "Expected a DataFrame (one column per input), a ModalityBatch or a 2-D array. "
                f"Received: a {type(X).__name__}; pass pandas.DataFrame(X)"
            )
        elif isinstance(X, np.ndarray):
            check_numeric_array(X)
        try:
            return super()._to_batch(X, fit=fit)  # type: ignore[misc]
        except ColumnMismatchError as exc:
            raise ColumnMismatchError(self._with_columns(str(exc), fit)) from exc
        except MmskError:
            raise
        except TypeError as exc:
            raise InputTypeError(f"X: {exc}") from exc
        except ValueError as exc:
            text = str(exc)
            if "features" in text or "feature names" in text:
                raise ColumnMismatchError(self._with_columns(text, fit)) from exc
            raise InputError(
                f"X: {text}; expected a DataFrame, a ModalityBatch, or a 2-D array of numbers"
            ) from exc

    def _with_columns(self, text: str, fit: bool) -> str:
        """scikit-learn's message (its estimator checks look for it) + the columns expected."""
        seen = getattr(self, "feature_names_in_", None)
        if fit or seen is None or "Expected the columns" in text:
            return text
        return f"{text.rstrip()}\nExpected the columns seen in fit: {list(seen)}"

    def set_params(self, **params: Any) -> Any:
        check_param_names(self, params)
        nested = sorted(k for k in params if k.startswith("preprocessor__"))
        if nested and self.preprocessor is None and params.get("preprocessor") is None:
            raise ParameterError(
                f"set_params({nested[0]}=...): preprocessor is None, so it has no settings. "
                "Expected preprocessor=ModalityPreprocessor(...) first (in the same call or "
                "the constructor)"
            )
        try:
            return super().set_params(**params)  # type: ignore[misc]
        except MmskError:
            raise
        except (ValueError, TypeError, AttributeError) as exc:
            raise ParameterError(f"set_params: {exc}") from exc


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
