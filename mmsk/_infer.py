"""Guess each DataFrame column's modality from its cells."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mmsk._batch import KINDS
from mmsk.exceptions import InputError, InputTypeError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3"})
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")
_AUDIO_MAGIC = (b"fLaC", b"OggS", b"ID3")
_SAMPLE = 200  # cells looked at per column


def is_missing(cell: Any) -> bool:
    """True for None, NaN and pandas' NA/NaT (never for arrays or strings)."""
    if cell is None:
        return True
    if isinstance(cell, (float, np.floating)):
        return bool(np.isnan(cell))
    return cell is pd.NA or cell is pd.NaT


def _bytes_kind(b: bytes) -> str:
    if (b.startswith(b"RIFF") and b[8:12] == b"WAVE") or b.startswith(_AUDIO_MAGIC):
        return "audio"
    if b.startswith(_IMAGE_MAGIC) or (b.startswith(b"RIFF") and b[8:12] == b"WEBP"):
        return "image"
    return "bytes"


def cell_kind(cell: Any) -> str:
    """Kind of one non-missing cell: image, audio, text, number, bool, or a type name."""
    if isinstance(cell, (str, os.PathLike)):
        suffix = os.path.splitext(os.fspath(cell))[1].lower()
        if suffix in IMAGE_EXTENSIONS:
            return "image"
        if suffix in AUDIO_EXTENSIONS:
            return "audio"
        return "text" if isinstance(cell, str) else "path"
    if isinstance(cell, (bytes, bytearray, memoryview)):
        return _bytes_kind(bytes(cell[:16]))
    if isinstance(cell, np.ndarray):
        if cell.ndim in (2, 3):
            return "image"
        if cell.ndim == 1 and (cell.dtype.kind in "fiu"):
            return "audio"
        return f"{cell.ndim}-D array"
    if "PIL.Image" in sys.modules and isinstance(cell, sys.modules["PIL.Image"].Image):
        return "image"
    if isinstance(cell, (bool, np.bool_)):
        return "bool"
    if isinstance(cell, (int, float, np.integer, np.floating)):
        return "number"
    return type(cell).__name__


def _text_or_categorical(values: pd.Series) -> str:
    words = values.astype(str).map(lambda s: len(s.split()))
    n_unique = values.nunique()
    if words.max() >= 3 or words.mean() >= 2:
        return "text"
    return "categorical" if n_unique <= max(20, len(values) // 2) else "text"


def _label(row: Any) -> Any:
    """A row label as messages show it: ``3``, not ``np.int64(3)``."""
    return row.item() if isinstance(row, np.generic) else row


def _infer_column(name: Any, col: pd.Series) -> str:
    missing = col.map(is_missing) if col.dtype == object else col.isna()
    present = col[~missing.to_numpy(dtype=bool)]
    if present.empty:
        raise InputError(
            f"column {name!r}: every cell is missing, so its modality cannot be inferred; "
            f"pass it in `modalities` (e.g. {{{name!r}: 'text'}}) or drop the column"
        )
    if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(col.dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(col.dtype):
        return "numeric"
    sample = present.iloc[:_SAMPLE]
    kinds = sample.map(cell_kind)
    found = sorted(set(kinds))
    if found == ["number"]:
        return "numeric"
    if found == ["bool"]:  # an object column of True/False with missing cells
        return "categorical"
    if len(found) > 1:
        rows = [_label(sample.index[kinds.tolist().index(k)]) for k in found]
        detail = ", ".join(f"{k} (row {r!r})" for k, r in zip(found, rows, strict=True))
        raise InputTypeError(
            f"column {name!r} mixes cell types: {detail}; expected every cell of a column "
            "to be one kind (image, audio, text, number) or missing (None/NaN)"
        )
    kind = found[0]
    if kind in ("image", "audio"):
        return kind
    if kind == "text":
        return _text_or_categorical(sample)
    bad_row = _label(sample.index[0])
    raise InputTypeError(
        f"column {name!r}, row {bad_row!r}: cannot infer a modality from a {kind} cell; "
        "expected image paths/arrays/bytes/PIL images, audio paths or 1-D arrays, strings, "
        "or numbers (convert lists to numpy arrays, or name the kind in `modalities`)"
    )


def infer_modalities(
    X: pd.DataFrame, modalities: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return ``{column: kind}`` for every column of a DataFrame.

    Kinds are ``"image"`` (2-D/3-D arrays, PIL images, image bytes, or paths
    ending in an image extension), ``"audio"`` (1-D numeric arrays, audio
    bytes, or paths ending in .wav/.flac/.ogg/.mp3), ``"text"`` (strings),
    ``"numeric"`` (numeric dtypes) and ``"categorical"`` (category/bool
    dtypes, and short strings with few distinct values).  Missing cells
    (None/NaN) are ignored when guessing.

    Parameters
    ----------
    X : pandas.DataFrame
        One column per input.
    modalities : mapping of str to str, optional
        Kinds to use for some or all columns; always wins over inference.

    Returns
    -------
    dict of str to str
        The kind of every column, in column order.

    Raises
    ------
    InputTypeError
        X is not a DataFrame, or a column mixes cell kinds or holds cells of no
        kind (lists, dicts); the message names the column and a row.
    InputError
        Duplicate column names, a column whose every cell is missing (name its
        kind in ``modalities``), or a bad ``modalities`` mapping.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"photo": ["a.png", "b.jpg"], "review": ["great fit and colour", None],
    ...                    "price": [9.5, 12.0], "size": ["S", "M"]})
    >>> infer_modalities(df)
    {'photo': 'image', 'review': 'text', 'price': 'numeric', 'size': 'categorical'}
    >>> infer_modalities(df, {"size": "text"})["size"]
    'text'
    """
    if not isinstance(X, pd.DataFrame):
        raise InputTypeError(
            f"Expected a pandas DataFrame with one column per input. Received: {type(X).__name__}"
        )
    if X.columns.has_duplicates:
        dup = sorted({str(c) for c in X.columns[X.columns.duplicated()]})
        raise InputError(f"Expected unique column names. Received duplicates: {dup}")
    given = dict(modalities or {})
    unknown_cols = sorted(str(c) for c in set(given) - set(X.columns))
    if unknown_cols:
        raise InputError(
            f"`modalities` names columns that are not in X: {unknown_cols}; "
            f"X has {[str(c) for c in X.columns]}"
        )
    for col, kind in given.items():
        if kind not in KINDS:
            raise InputError(f"column {col!r}: expected a kind in {KINDS}. Received: {kind!r}")
    return {col: given.get(col) or _infer_column(col, X[col]) for col in X.columns}
