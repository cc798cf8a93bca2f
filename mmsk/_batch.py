"""The preprocessed form of a multimodal table: :class:`ModalityBatch`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from mmsk.exceptions import InputError

KINDS = ("image", "text", "audio", "numeric", "categorical")
PRESENT = "mmsk_present"  # name of the models' presence-mask input


@dataclass(frozen=True)
class ModalitySpec:
    """What one modality of a :class:`ModalityBatch` holds.

    Parameters
    ----------
    kind : {"image", "text", "audio", "numeric", "categorical"}
        The modality's kind; encoders are chosen by it.
    shape : tuple of int
        Shape of one row, e.g. ``(64, 64, 3)`` for images, ``(L,)`` for tokens,
        ``(T, M)`` for spectrograms, ``(D,)`` for numbers.
    dtype : str
        NumPy dtype name of the array, ``"float32"`` or ``"int32"``.
    vocabulary_size : int or None
        Number of token ids (padding 0 and out-of-vocabulary included) for text.
    columns : tuple of str
        The DataFrame columns this modality was made from.
    char_columns : int, default=0
        For text: how many of the last columns of each row hold character
        n-gram ids (the first ``shape[0] - char_columns`` hold word ids).
        mmsk's encoders see the words (:meth:`words`); the character n-grams
        feed the wide (linear) path only.
    char_vocabulary_size : int, default=0
        Number of character n-gram ids (padding 0 and out-of-vocabulary 1
        included), an id space of their own.

    Examples
    --------
    >>> spec = ModalitySpec("text", (12,), "int32", 500, char_columns=8, char_vocabulary_size=90)
    >>> spec
    ModalitySpec(kind='text', shape=(12,), dtype='int32', vocabulary_size=500, columns=(), \
char_columns=8, char_vocabulary_size=90)
    >>> spec.words()
    ModalitySpec(kind='text', shape=(4,), dtype='int32', vocabulary_size=500, columns=())
    """

    kind: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    vocabulary_size: int | None = None
    columns: tuple[str, ...] = field(default=())
    char_columns: int = 0
    char_vocabulary_size: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"Expected a modality kind in {KINDS}. Received: kind={self.kind!r}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "columns", tuple(self.columns))
        chars = int(self.char_columns)
        object.__setattr__(self, "char_columns", chars)
        object.__setattr__(self, "char_vocabulary_size", int(self.char_vocabulary_size))
        fits = self.kind == "text" and len(self.shape) == 1 and 0 < chars < self.shape[0]
        if chars and not (fits and self.char_vocabulary_size > 0):
            raise InputError(
                "Expected char_columns only for a text modality, fewer than its columns, with "
                f"char_vocabulary_size > 0. Received: kind={self.kind!r}, shape={self.shape}, "
                f"char_columns={chars}, char_vocabulary_size={self.char_vocabulary_size}"
            )

    def __repr__(self) -> str:
        # The character n-gram fields only where there are n-grams, as for any other kind.
        hide = "" if self.char_columns else "char_"
        shown = [f.name for f in fields(self) if not (hide and f.name.startswith(hide))]
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"ModalitySpec({args})"

    def words(self) -> ModalitySpec:
        """The spec of the word ids alone (itself when there are no character n-grams)."""
        if not self.char_columns:
            return self
        return ModalitySpec(self.kind, (self.shape[0] - self.char_columns,), self.dtype,
                            self.vocabulary_size, self.columns)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary (the inverse of ``ModalitySpec(**d)``)."""
        return {
            "kind": self.kind,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "vocabulary_size": self.vocabulary_size,
            "columns": list(self.columns),
            "char_columns": self.char_columns,
            "char_vocabulary_size": self.char_vocabulary_size,
        }


class ModalityBatch(Mapping):
    """Preprocessed multimodal rows: a mapping ``name -> array`` plus specs and masks.

    Every array has the same first dimension N.  ``masks[name][i]`` is False
    when row ``i`` has no value for that modality (a missing modality); such
    rows hold zeros in the array and must be read through the mask.

    Indexing by a modality name returns its array; indexing by anything else
    (an int, a slice, an integer or boolean array) selects rows and returns a
    new batch, so scikit-learn's cross-validation can split it.
    ``np.asarray(batch)`` gives a flat float matrix (every modality flattened,
    then the masks), for classical scikit-learn models.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        One array per modality, all with N rows.
    specs : mapping of str to ModalitySpec
        One spec per modality; ``spec.shape`` is the shape of one row.
    masks : mapping of str to ndarray of bool, optional
        Presence of each modality per row; missing entries mean all present.

    Examples
    --------
    >>> import numpy as np
    >>> batch = ModalityBatch(
    ...     {"x": np.ones((4, 2), "float32")},
    ...     {"x": ModalitySpec("numeric", (2,))},
    ...     masks={"x": np.array([True, False, True, True])},
    ... )
    >>> len(batch), batch["x"].shape, len(batch[1:3]), batch[1:3].masks["x"].tolist()
    (4, (4, 2), 2, [False, True])
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        specs: Mapping[str, ModalitySpec],
        masks: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        if not arrays:
            raise InputError("Expected at least one modality. Received: an empty mapping")
        if set(arrays) != set(specs):
            raise InputError(
                "Expected one spec per array. Received: arrays for "
                f"{sorted(arrays)}, specs for {sorted(specs)}"
            )
        lengths = {name: len(a) for name, a in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise InputError(f"Expected every modality to have the same rows. Received: {lengths}")
        n = next(iter(lengths.values()))
        self._arrays = {name: np.asarray(a) for name, a in arrays.items()}
        self._specs = {name: specs[name] for name in self._arrays}
        for name, a in self._arrays.items():
            if a.shape[1:] != tuple(self._specs[name].shape):
                raise InputError(
                    f"Expected rows of modality {name!r} to have the shape of its spec, "
                    f"{tuple(self._specs[name].shape)}. Received: an array of shape {a.shape}"
                )
        given = dict(masks or {})
        self._masks = {
            name: np.asarray(given[name], dtype=bool) if name in given else np.ones(n, bool)
            for name in self._arrays
        }
        for name, m in self._masks.items():
            if m.shape != (n,):
                raise InputError(
                    f"Expected mask of modality {name!r} to have shape ({n},). Received: {m.shape}"
                )

    # Mapping protocol: name -> array
    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._arrays[key]
        return self.take(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:  # number of rows, like a DataFrame
        return len(next(iter(self._arrays.values())))

    def __contains__(self, key: object) -> bool:
        return key in self._arrays

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def keys(self) -> Any:
        return self._arrays.keys()

    @property
    def n_modalities(self) -> int:
        """Number of modalities."""
        return len(self._arrays)

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of ``np.asarray(batch)``: (rows, flattened values + one mask per modality).

        scikit-learn counts rows with ``shape[0]`` and, in ``predict``, checks
        ``shape[1]`` against the width of the matrix it was fitted on, so this
        must be the flat matrix's shape (see :attr:`n_modalities` for the count
        of modalities).
        """
        width = sum(int(np.prod(a.shape[1:])) for a in self._arrays.values())
        return (len(self), width + self.n_modalities)

    @property
    def specs(self) -> dict[str, ModalitySpec]:
        """The spec of each modality."""
        return dict(self._specs)

    @property
    def masks(self) -> dict[str, np.ndarray]:
        """Presence of each modality per row (bool arrays of length N)."""
        return dict(self._masks)

    def take(self, rows: Any) -> ModalityBatch:
        """Return the rows selected by an int, slice, or integer/boolean array."""
        if isinstance(rows, tuple):  # scikit-learn indexes as ``batch[rows, ...]``
            rows = rows[0]
        if isinstance(rows, (int, np.integer)):
            rows = [int(rows)]
        if isinstance(rows, list):
            rows = np.asarray(rows, dtype=int if not rows else None)
        return ModalityBatch(
            {k: a[rows] for k, a in self._arrays.items()},
            self._specs,
            {k: m[rows] for k, m in self._masks.items()},
        )

    def with_masks(self, masks: Mapping[str, np.ndarray]) -> ModalityBatch:
        """Return a copy whose masks are replaced for the given modalities.

        Rows newly marked missing are zeroed, so the array never holds data the
        mask says is absent.
        """
        unknown = sorted(str(k) for k in masks if k not in self._arrays)
        if unknown:
            raise InputError(
                f"with_masks names modalities {unknown} that are not in the batch; "
                f"it has {list(self._arrays)}"
            )
        new_masks = {**self._masks, **{k: np.asarray(v, bool) for k, v in masks.items()}}
        for k in masks:
            if new_masks[k].shape != (len(self),):
                raise InputError(
                    f"Expected mask of modality {k!r} to have shape ({len(self)},). "
                    f"Received: {new_masks[k].shape}"
                )
        arrays = {}
        for k, a in self._arrays.items():
            arrays[k] = a
            if k in masks:
                arrays[k] = a.copy()
                arrays[k][~new_masks[k]] = 0
        return ModalityBatch(arrays, self._specs, new_masks)

    def to_inputs(self, order: list[str] | None = None) -> dict[str, np.ndarray]:
        """Return Keras model inputs: each array, plus ``PRESENT`` (N, K) float32 masks.

        ``order`` fixes the modalities' order in the mask matrix (default: this
        batch's order).
        """
        names = list(self._arrays) if order is None else list(order)
        unknown = [k for k in names if k not in self._arrays]
        if unknown:
            raise InputError(
                f"Expected modalities among {list(self._arrays)}. Received: unknown {unknown}"
            )
        out = {k: self._arrays[k] for k in names}
        out[PRESENT] = np.stack([self._masks[k] for k in names], axis=1).astype("float32")
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if copy is False:
            raise ValueError("a ModalityBatch cannot be viewed as one array without a copy")
        parts = [a.reshape(len(a), -1).astype("float64") for a in self._arrays.values()]
        parts += [m[:, None].astype("float64") for m in self._masks.values()]
        flat = np.hstack(parts)
        return flat if dtype is None else flat.astype(dtype)

    def feature_names(self) -> np.ndarray:
        """Names of the columns of ``np.asarray(batch)``."""
        return flat_feature_names(self._specs)

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{k}: {s.kind} {tuple(s.shape)} {s.dtype}"
            + (f" ({int((~self._masks[k]).sum())} missing)" if not self._masks[k].all() else "")
            for k, s in self._specs.items()
        )
        return f"ModalityBatch(n={len(self)}, {{{parts}}})"


def flat_feature_names(specs: Mapping[str, ModalitySpec]) -> np.ndarray:
    """Column names of a batch's flat matrix: ``<name>_<i>`` per value, then ``<name>_present``."""
    names: list[str] = []
    for k, spec in specs.items():
        names += [f"{k}_{i}" for i in range(int(np.prod(spec.shape)))]
    names += [f"{k}_present" for k in specs]
    return np.asarray(names, dtype=object)
