"""ModalityPreprocessor: a DataFrame -> ModalityBatch, one transformer per modality."""

from __future__ import annotations

import dataclasses
import reprlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils._param_validation import HasMethods, InvalidParameterError
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted

from mmsk._batch import ModalityBatch, ModalitySpec, flat_feature_names
from mmsk._infer import infer_modalities, is_missing
from mmsk._validation import ParamsMixin, check_param_names
from mmsk.exceptions import (
    ColumnMismatchError,
    InputError,
    InputTypeError,
    MmskError,
    ParameterError,
)
from mmsk.preprocessing._audio import AudioFeaturizer
from mmsk.preprocessing._image import ImagePreprocessor
from mmsk.preprocessing._text import TextVectorizer

if TYPE_CHECKING:
    from typing_extensions import Self

_KIND_ORDER = ("image", "text", "audio", "numeric", "categorical")


def default_transformer(kind: str) -> Any:
    """The transformer mmsk uses for a kind when none is given."""
    if kind == "image":
        return ImagePreprocessor()
    if kind == "text":  # character n-grams for short texts: the wide path reads them
        return TextVectorizer(char_ngrams="auto")
    if kind == "audio":
        return AudioFeaturizer()
    if kind == "numeric":
        # Partly missing rows are imputed with an indicator the model can see.
        return make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
        )
    return OneHotEncoder(handle_unknown="ignore", sparse_output=False)


def as_frame(X: Any) -> pd.DataFrame:
    """Accept a DataFrame, or a 2-D array-like as columns ``x0..x{m-1}``.

    Numeric arrays and nested lists give numeric columns; object arrays keep
    their cells (so paths, strings and numbers are inferred as in a DataFrame).
    """
    if isinstance(X, pd.DataFrame):
        return X
    if sparse.issparse(X):
        raise InputTypeError(
            "Expected a pandas DataFrame or a dense 2-D array. Received: a sparse matrix; "
            "sparse input is not supported (pass X.toarray())"
        )
    if isinstance(X, pd.Series):
        raise InputTypeError(
            "Expected a pandas DataFrame (one column per input). Received: a Series "
            f"named {X.name!r}; pass X.to_frame() for a single column"
        )
    if not isinstance(X, (list, tuple, np.ndarray)) and not hasattr(X, "__array__"):
        raise InputTypeError(
            "Expected a pandas DataFrame (one column per input) or a 2-D array. "
            f"Received: {type(X).__name__}"
        )
    try:
        arr = np.asarray(X)
        if arr.dtype.kind in "US" and isinstance(X, (list, tuple)):
            arr = np.asarray(X, dtype=object)  # keep numbers numbers next to strings
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"Expected a DataFrame or a rectangular 2-D array. Received: a {type(X).__name__} "
            f"that is not one ({exc})"
        ) from exc
    if arr.dtype.kind == "c":
        raise InputError(
            f"Complex data not supported; expected real numbers. Received: dtype {arr.dtype}"
        )
    if arr.ndim != 2:
        raise InputError(
            f"Expected a DataFrame or a 2-D array. Received: an array of shape {arr.shape}. "
            "Reshape your data: pass a DataFrame with one column per input, or use "
            "X.reshape(-1, 1) if it holds a single column"
        )
    if arr.dtype.kind not in "biufOUS":
        raise InputTypeError(
            f"Expected a DataFrame or a 2-D array of numbers or cells. Received: dtype {arr.dtype}"
        )
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


def _empty_message(shape: tuple[int, ...]) -> str:
    if shape[0] == 0:
        return (
            f"Expected at least one row. Received: 0 sample(s) (shape={shape}) while a "
            "minimum of 1 is required"
        )
    return (
        f"Expected at least one column. Received: 0 feature(s) (shape={shape}) while a "
        "minimum of 1 is required."
    )


def _single(cols: Any) -> bool:
    return not isinstance(cols, (list, tuple, np.ndarray, pd.Index))


def _cols(cols: Any) -> list[str]:
    return [str(cols)] if _single(cols) else [str(c) for c in cols]


def _check_unique(columns: list[str]) -> None:
    seen: dict[str, list[int]] = {}
    for i, c in enumerate(columns):
        seen.setdefault(c, []).append(i)
    dup = {c: at for c, at in seen.items() if len(at) > 1}
    if dup:
        where = "; ".join(f"{c!r} at positions {at}" for c, at in dup.items())
        raise InputError(
            f"Expected unique column names, one per input. Received duplicates: {where}"
        )


def _check_finite(frame: pd.DataFrame) -> None:
    for col in frame.columns:
        values = _to_numbers(frame[col]).to_numpy(dtype=float)
        bad = np.flatnonzero(np.isinf(values))
        if bad.size:
            rows = frame.index[bad[:5]].tolist()
            raise InputError(
                f"column {col!r} holds inf at rows {rows}; expected finite numbers "
                "(use NaN for a missing value)"
            )


def _to_numbers(cells: pd.Series) -> pd.Series:
    """A column as float, refusing cells that are neither numbers nor missing."""
    if cells.dtype != object and not isinstance(cells.dtype, pd.StringDtype):
        if pd.api.types.is_numeric_dtype(cells.dtype) or pd.api.types.is_bool_dtype(cells.dtype):
            return cells.astype(float)
    numbers = pd.to_numeric(cells, errors="coerce")
    lost = numbers.isna().to_numpy() & ~cells.map(is_missing).to_numpy(dtype=bool)
    if lost.any():
        i = int(np.flatnonzero(lost)[0])
        cell = cells.iloc[i]
        raise InputTypeError(
            f"column {cells.name!r}, row {cells.index[i]!r}: expected a number (or None/NaN "
            f"for a missing value) in a numeric column. Received: {type(cell).__name__} "
            f"{reprlib.repr(cell)}"
            + (f" ({int(lost.sum())} such cells)" if lost.sum() > 1 else "")
        )
    return numbers.astype(float)


def _check_categories(frame: pd.DataFrame) -> None:
    """Categorical cells must be scalars (str, number, bool) or missing."""
    for col in frame.columns:
        if frame[col].dtype != object:
            continue
        for row, cell in frame[col].items():
            if isinstance(cell, (list, tuple, dict, set, np.ndarray)):
                raise InputTypeError(
                    f"column {col!r}, row {row!r}: expected a category (a str, number or bool, "
                    f"or None/NaN when missing). Received: {type(cell).__name__} "
                    f"{reprlib.repr(cell)}"
                )


class ModalityPreprocessor(  # type: ignore[call-arg]
    ParamsMixin,
    _BaseComposition,
    TransformerMixin,
    BaseEstimator,
    auto_wrap_output_keys=None,  # no set_output: the output is a ModalityBatch
):
    """Turn a DataFrame into a :class:`~mmsk.ModalityBatch`, one transformer per modality.

    Like :class:`~sklearn.compose.ColumnTransformer`, but the output keeps each
    modality as its own array with a spec and a presence mask.  With no
    ``transformers`` it infers each column's kind (:func:`mmsk.infer_modalities`)
    and builds defaults: one modality per image, text and audio column, all
    numeric columns together as ``"numeric"``, all categorical ones as
    ``"categorical"``.

    A row whose cells of a modality are all missing (None/NaN) is marked
    missing in ``masks`` and holds zeros.  Numeric rows that are only partly
    missing are imputed by the default numeric transformer, which also adds
    missing-value indicators.

    ``X`` may also be a 2-D array (or nested lists), read as columns
    ``x0..x{m-1}``: a numeric one becomes one ``"numeric"`` modality.

    Parameters
    ----------
    transformers : list of (name, transformer, columns), optional
        ``columns`` is a column name (the transformer gets a Series) or a list
        of names (it gets a DataFrame).  Settings are reachable as
        ``<name>__<param>``.
    modalities : dict of str to str, optional
        Kinds for some columns, overriding inference (used when
        ``transformers`` is None, and to label plain sklearn transformers).
    image, text, audio, numeric, categorical : transformer, optional
        Templates cloned for every column of that kind when ``transformers``
        is None, e.g. ``image=ImagePreprocessor(size=32)``; reachable as
        ``image__size``.  Setting a nested parameter of a template left at
        None (``set_params(image__size=32)``) first puts the default
        transformer of that kind there.

    Attributes
    ----------
    transformers_ : list of (name, fitted transformer, columns)
    specs_ : dict of str to ModalitySpec
    feature_names_in_ : ndarray of str
        Columns seen in ``fit``.  Given a DataFrame, ``transform`` selects
        the columns it uses by name, as ``ColumnTransformer`` does: their
        order and any other columns do not matter, and a missing one is a
        :class:`~mmsk.exceptions.ColumnMismatchError` naming it.  A 2-D array
        must have the columns of ``fit``, in the same order.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({
    ...     "photo": [np.zeros((8, 8, 3), np.uint8), None, np.ones((9, 9), np.uint8)],
    ...     "caption": ["a red bus", "two dogs playing", None],
    ...     "price": [1.0, 2.5, 4.0],
    ... })
    >>> prep = ModalityPreprocessor(image=ImagePreprocessor(size=4))
    >>> batch = prep.fit_transform(df)
    >>> batch
    ModalityBatch(n=3, {photo: image (4, 4, 3) float32 (1 missing), caption: text (3,) int32 (1 missing), numeric: numeric (1,) float32})
    >>> prep.set_params(image__size=2).fit_transform(df)["photo"].shape
    (3, 2, 2, 3)
    """  # noqa: E501

    _parameter_constraints: dict = {
        "transformers": [list, None],
        "modalities": [dict, None],
        **{kind: [HasMethods(["fit", "transform"]), None] for kind in _KIND_ORDER},
    }

    def __init__(
        self,
        transformers: list[tuple[str, Any, Any]] | None = None,
        *,
        modalities: dict[str, str] | None = None,
        image: Any = None,
        text: Any = None,
        audio: Any = None,
        numeric: Any = None,
        categorical: Any = None,
    ) -> None:
        self.transformers = transformers
        self.modalities = modalities
        self.image = image
        self.text = text
        self.audio = audio
        self.numeric = numeric
        self.categorical = categorical

    # get_params/set_params reach into named transformers, as ColumnTransformer does.
    @property
    def _transformers(self) -> list[tuple[str, Any]]:
        try:
            return [(name, t) for name, t, _ in (self.transformers or [])]
        except (TypeError, ValueError):  # malformed; fit reports it
            return []

    @_transformers.setter
    def _transformers(self, value: list[tuple[str, Any]]) -> None:
        self.transformers = [
            (name, t, cols)
            for (name, t), (_, _, cols) in zip(value, self.transformers or [], strict=True)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return self._get_params("_transformers", deep=deep)

    def set_params(self, **params: Any) -> ModalityPreprocessor:
        """Set parameters, including nested ones (``image__size``, ``<name>__<param>``).

        A template left at None is replaced by the default transformer of its
        kind when a nested parameter names it, so ``image__size=32`` works on
        ``ModalityPreprocessor()``.
        """
        names = {name for name, _ in self._transformers}
        check_param_names(self, params, extra=names)
        for kind in _KIND_ORDER:
            if (
                kind not in params
                and kind not in names
                and getattr(self, kind, None) is None
                and any(key.startswith(f"{kind}__") for key in params)
            ):
                params[kind] = default_transformer(kind)
        try:
            self._set_params("_transformers", **params)
        except MmskError:
            raise
        except (ValueError, AttributeError) as exc:  # a nested object's unknown name
            raise ParameterError(f"set_params: {exc}") from exc
        return self

    def _explicit_kind(self, X: pd.DataFrame, transformer: Any, cols: list[str]) -> str:
        for kind, cls in (("image", ImagePreprocessor), ("text", TextVectorizer),
                          ("audio", AudioFeaturizer)):  # fmt: skip
            if isinstance(transformer, cls):
                return kind
        given = (self.modalities or {}).get(cols[0])
        if given:
            return given
        try:
            return infer_modalities(X[cols[:1]])[cols[0]]
        except MmskError:
            return "numeric"

    def _plan(self, X: pd.DataFrame) -> list[tuple[str, Any, Any, str]]:
        """(name, unfitted transformer, columns, kind) for each modality."""
        if self.transformers is not None:
            plan = []
            self._check_transformers()
            for name, transformer, cols in self.transformers:
                cols = str(cols) if _single(cols) else _cols(cols)
                missing = [c for c in _cols(cols) if c not in X.columns]
                if missing:
                    raise ColumnMismatchError(
                        f"transformer {name!r} names columns {missing} that are not in X; "
                        f"X has {list(X.columns)}"
                    )
                kind = self._explicit_kind(X, transformer, _cols(cols))
                plan.append((name, clone(transformer), cols, kind))
            return plan
        kinds = infer_modalities(X, self.modalities)
        plan = []
        for kind in _KIND_ORDER:
            cols = [c for c, k in kinds.items() if k == kind]
            template = getattr(self, kind)

            def make(kind: str = kind, template: Any = template) -> Any:
                return default_transformer(kind) if template is None else clone(template)

            if kind in ("numeric", "categorical") and cols:
                name = kind
                while name in X.columns:  # a column of another kind has that name
                    name += "_"
                plan.append((name, make(), cols, kind))
            else:
                plan += [(c, make(), c, kind) for c in cols]
        order = {c: i for i, c in enumerate(X.columns)}
        return sorted(plan, key=lambda p: order.get(p[0], len(order)))

    def _check_transformers(self) -> None:
        entries = list(self.transformers or [])
        for entry in entries:
            if not (isinstance(entry, (tuple, list)) and len(entry) == 3):
                raise ParameterError(
                    "Expected transformers as a list of (name, transformer, columns). "
                    f"Received: an entry {entry!r}"
                )
            name, transformer, _ = entry
            if not isinstance(name, str) or "__" in name:
                raise ParameterError(
                    f"Expected transformer names to be strings without '__'. Received: {name!r}"
                )
            if not (hasattr(transformer, "fit") and hasattr(transformer, "transform")):
                raise ParameterError(
                    f"transformer {name!r}: expected an estimator with fit and transform. "
                    f"Received: {transformer!r}"
                )
        names = [entry[0] for entry in entries]
        if len(set(names)) != len(names):
            raise ParameterError(f"Expected unique transformer names. Received: {names}")

    def _run(self, name: str, transformer: Any, cols: Any, method: str, data: Any) -> Any:
        """Call ``transformer.<method>(data)``; other libraries' errors name the modality."""
        try:
            return getattr(transformer, method)(data)
        except (MmskError, InvalidParameterError):
            raise
        except Exception as exc:
            error = InputTypeError if isinstance(exc, TypeError) else InputError
            how = (
                "a 1-D Series, as `columns` is one name; pass a list of names for a DataFrame"
                if _single(cols)
                else "a DataFrame"
            )
            raise error(
                f"modality {name!r}: {type(transformer).__name__}.{method} failed on columns "
                f"{_cols(cols)} (given {how}): {type(exc).__name__}: {exc}"
            ) from exc

    def _input(self, X: pd.DataFrame, cols: Any, kind: str) -> Any:
        if _single(cols):
            if kind == "numeric":
                _check_finite(X[[cols]])
            return X[cols]
        frame = X[cols]
        if kind == "numeric":
            _check_finite(frame)
            return frame.apply(_to_numbers)
        if kind == "categorical":
            _check_categories(frame)
            return frame.astype(object).where(frame.notna(), "<missing>").astype(str)
        return frame

    @staticmethod
    def _present(X: pd.DataFrame, cols: Any) -> np.ndarray:
        frame = X[_cols(cols)]
        return ~np.all(frame.map(is_missing).to_numpy(dtype=bool), axis=1)

    def _output(
        self, name: str, transformer: Any, out: Any, kind: str, present: np.ndarray
    ) -> tuple[np.ndarray, ModalitySpec]:
        if sparse.issparse(out):
            out = out.toarray()
        out = np.asarray(out)
        spec = getattr(transformer, "spec_", None)
        if spec is None:
            out = out.reshape(len(out), -1).astype(np.float32)
            spec = ModalitySpec("categorical" if kind == "categorical" else "numeric",
                                out.shape[1:], "float32")  # fmt: skip
        out = out.copy() if not out.flags.writeable else out
        out[~present] = 0
        bad = ~np.isfinite(out.reshape(len(out), -1)).all(axis=1) if out.dtype.kind == "f" else []
        if np.any(bad):
            raise InputError(
                f"modality {name!r}: its transformer returned NaN/inf for rows "
                f"{np.flatnonzero(bad)[:5].tolist()}; expected finite numbers "
                "(add an imputer, or leave the whole row missing)"
            )
        return out, spec

    @_fit_context(prefer_skip_nested_validation=False)  # the transformers check their own
    def fit(self, X: Any, y: Any = None) -> Self:
        """Fit one transformer per modality.  Returns self."""
        self.fit_transform(X, y)
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> ModalityBatch:
        """Fit every transformer and return the training data as a ModalityBatch."""
        by_name = isinstance(X, pd.DataFrame)
        X = as_frame(X)
        X = X.set_axis([str(c) for c in X.columns], axis=1)
        _check_unique(list(X.columns))
        if len(X) == 0 or X.shape[1] == 0:
            raise InputError(_empty_message(X.shape))
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self._by_name = by_name  # transform selects a DataFrame's columns by name
        fitted, arrays, specs, masks = [], {}, {}, {}
        for name, transformer, cols, kind in self._plan(X):
            present = self._present(X, cols)
            out = self._run(name, transformer, cols, "fit_transform", self._input(X, cols, kind))
            arrays[name], spec = self._output(name, transformer, out, kind, present)
            specs[name] = dataclasses.replace(spec, columns=tuple(_cols(cols)))
            masks[name] = present
            fitted.append((name, transformer, cols))
        self.transformers_ = fitted
        self.specs_ = specs
        return ModalityBatch(arrays, specs, masks)

    def transform(self, X: Any) -> ModalityBatch:
        """Transform a table with the columns seen in ``fit``.

        A DataFrame's columns are selected by name (in any order, others
        ignored); a 2-D array's by position.
        """
        check_is_fitted(self, "transformers_")
        by_name = isinstance(X, pd.DataFrame) and getattr(self, "_by_name", True)
        X = as_frame(X)
        X = X.set_axis([str(c) for c in X.columns], axis=1)
        _check_unique(list(X.columns))
        X = self._select(X) if by_name else self._by_position(X)
        if len(X) == 0:
            raise InputError(_empty_message(X.shape))
        arrays, masks = {}, {}
        for name, transformer, cols in self.transformers_:
            kind = self.specs_[name].kind
            present = self._present(X, cols)
            out = self._run(name, transformer, cols, "transform", self._input(X, cols, kind))
            arrays[name], _ = self._output(name, transformer, out, kind, present)
            masks[name] = present
        return ModalityBatch(arrays, self.specs_, masks)

    def _select(self, X: pd.DataFrame) -> pd.DataFrame:
        """The columns the fitted transformers use, by name; missing ones are an error."""
        used = {c for _, _, cols in self.transformers_ for c in _cols(cols)}
        needed = [c for c in self.feature_names_in_ if c in used]
        missing = [c for c in needed if c not in X.columns]
        if missing:
            raise ColumnMismatchError(
                f"X lacks the columns {missing} seen in fit. Expected a DataFrame with the "
                f"columns {needed} (in any order; other columns are ignored). "
                f"Received: {list(X.columns)}"
            )
        return X[needed]

    def _by_position(self, X: pd.DataFrame) -> pd.DataFrame:
        """An array's columns are those of fit, in order: the count must match."""
        seen = list(self.feature_names_in_)
        if X.shape[1] != len(seen):
            raise ColumnMismatchError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{len(seen)} features as input. Expected the columns {seen}, in this order "
                "(or a DataFrame, whose columns are selected by name)"
            )
        return X.set_axis(seen, axis=1)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the columns of ``np.asarray(batch)`` (flattened modalities, then masks)."""
        check_is_fitted(self, "specs_")
        if input_features is not None and list(input_features) != list(self.feature_names_in_):
            raise InputError(
                f"input_features should be the columns seen in fit, "
                f"{list(self.feature_names_in_)}. Received: {list(input_features)}"
            )
        return flat_feature_names(self.specs_)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a NaN cell is a missing modality
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        # The output is a ModalityBatch of float32/int32 arrays, whatever X's dtype.
        tags.transformer_tags.preserves_dtype = []
        return tags
