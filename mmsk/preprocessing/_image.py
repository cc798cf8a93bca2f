"""ImagePreprocessor: image cells -> float32 (N, H, W, C)."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from mmsk._batch import ModalitySpec
from mmsk.exceptions import InputError, ParameterError
from mmsk.preprocessing._column import Column, as_column, check_not_empty, parallel_map
from mmsk.preprocessing._files import open_checked
from mmsk.preprocessing._image_io import _RESAMPLE, CHANNELS, decode_image
from mmsk.preprocessing._single import OneColumnTransformer

if TYPE_CHECKING:
    from typing_extensions import Self

_CHUNK = 512  # rows decoded at a time when learning statistics or normalising
AUTO_MAX_SIDE = 64  # size=None: the longer side of the typical image, capped at this
_AUTO_SAMPLE = 256  # images whose size is read to choose it


def _image_column(X: Any) -> Column:
    """Accept an (N, H, W) or (N, H, W, C) numeric array as N image cells."""
    if isinstance(X, np.ndarray) and X.ndim in (3, 4) and X.dtype.kind in "uifb":
        return Column(list(X), "X", range(len(X)))
    return as_column(X, "ImagePreprocessor")


class ImagePreprocessor(  # type: ignore[call-arg]
    OneColumnTransformer,
    auto_wrap_output_keys=None,  # no set_output: a 4-D output cannot be a DataFrame
):
    """Decode, resize and normalise images to a float32 array (N, H, W, C).

    Cells may be file paths, encoded bytes, numpy arrays (H, W) or (H, W, C),
    or PIL images; a whole (N, H, W[, C]) numeric array is also accepted.
    Files are decoded on a thread pool.  ``uint8`` pixels are scaled by 255
    and ``uint16`` ones (and 16-bit image files) by 65535; other integer
    arrays must hold 8-bit values in [0, 255]; float arrays are taken to be
    in [0, 1] already.  Files over ``PIL.Image.MAX_IMAGE_PIXELS`` are refused.
    A missing cell (None/NaN) gives an all-zero image;
    :class:`ModalityPreprocessor` carries it as a presence mask.

    Parameters
    ----------
    size : int, (int, int) or None, default=None
        Output height and width (an int means a square).  None chooses it
        from the data in ``fit``: the median height and width of (up to 256
        of) the training images, scaled down to at most 64 pixels on the
        longer side and never up, so 8x8 digits stay 8x8 and photos become
        at most 64x64.
    color_mode : {"rgb", "grayscale", "rgba"}, default="rgb"
        Output channels: 3, 1 or 4.  Grey images are repeated to RGB, alpha is
        dropped or added (opaque) as needed.
    normalization : {"unit", "symmetric", "standardize", "none"}, default="unit"
        ``"unit"`` scales pixels to [0, 1], ``"symmetric"`` to [-1, 1],
        ``"standardize"`` subtracts the per-channel mean and divides by the
        per-channel standard deviation learned in ``fit``, ``"none"`` keeps
        the 0-255 scale.
    interpolation : {"bilinear", "nearest", "bicubic", "lanczos", "area"}, default="bilinear"
        Resampling filter used to resize.
    crop_to_aspect_ratio : bool, default=False
        Centre-crop to the output's aspect ratio before resizing, instead of
        stretching.
    n_jobs : int or None, default=None
        Decoding threads; None uses the number of CPU cores plus two (at most 32).

    Attributes
    ----------
    size_ : (int, int)
        The output height and width used (given, or chosen from the data).
    mean_, std_ : ndarray of shape (C,)
        Per-channel statistics on the [0, 1] scale (``"standardize"`` only).
    spec_ : ModalitySpec
        ``ModalitySpec("image", (H, W, C), "float32")``.
    n_features_in_ : int
        Always 1.
    feature_names_in_ : ndarray of str
        The column's name, when ``fit`` got a one-column DataFrame or a named Series.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).integers(0, 256, (5, 40, 30, 3), dtype=np.uint8)
    >>> prep = ImagePreprocessor(size=16, color_mode="grayscale").fit(images)
    >>> out = prep.transform(images)
    >>> out.shape, out.dtype.name, bool(out.min() >= 0 and out.max() <= 1)
    ((5, 16, 16, 1), 'float32', True)
    """

    _parameter_constraints: dict = {
        "size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "color_mode": [StrOptions(set(CHANNELS))],
        "normalization": [StrOptions({"unit", "symmetric", "standardize", "none"})],
        "interpolation": [StrOptions(set(_RESAMPLE))],
        "crop_to_aspect_ratio": ["boolean"],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        color_mode: str = "rgb",
        normalization: str = "unit",
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        n_jobs: int | None = None,
    ) -> None:
        self.size = size
        self.color_mode = color_mode
        self.normalization = normalization
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = crop_to_aspect_ratio
        self.n_jobs = n_jobs

    def _decode(self, column: Column) -> np.ndarray:
        """Unit-scale images for every row; missing rows stay zero."""
        h, w = self.size_
        mode = self._setting("color_mode")
        out = np.zeros((len(column), h, w, CHANNELS[mode]), np.float32)
        rows = np.flatnonzero(column.present)
        how = self._setting("interpolation"), self._setting("crop_to_aspect_ratio")

        def one(cell: Any) -> np.ndarray:
            return decode_image(cell, (h, w), mode, *how)

        # Threads pay off when decoding files or bytes (the GIL is released);
        # arrays already in memory are converted faster in this thread.
        in_memory = all(isinstance(column.cells[i], np.ndarray) for i in rows)
        with warnings.catch_warnings():
            # _image_io refuses images over MAX_IMAGE_PIXELS itself; PIL's warning
            # would only repeat that.  Set here, in the calling thread, as
            # warning filters are process-wide.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            images = parallel_map(one, column, rows, 1 if in_memory else self._setting("n_jobs"))
        for i, img in zip(rows, images, strict=True):
            out[i] = img
        return out

    def _chunks(self, column: Column) -> Iterator[Column]:
        for start in range(0, len(column), _CHUNK):
            stop = start + _CHUNK
            yield Column(column.cells[start:stop], column.name, column.index[start:stop])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> Self:
        """Check the settings and learn per-channel statistics if asked.

        Parameters
        ----------
        X : Series, one-column DataFrame, list, or (N, H, W[, C]) array
            Image cells.
        y : ignored

        Returns
        -------
        self : ImagePreprocessor
        """
        size = None if self.size is None else _check_size(self.size)
        column = _image_column(X)
        check_not_empty(column, "ImagePreprocessor")
        self._fit_column(X, column)
        self.size_: tuple[int, int] = _auto_size(column) if size is None else size
        h, w = self.size_
        self.spec_ = ModalitySpec("image", (h, w, CHANNELS[self.color_mode]), "float32")
        if self.normalization == "standardize":
            present = column.present
            if not present.any():
                raise InputError(
                    f"column {column.name!r}: every image is missing; "
                    "'standardize' needs at least one image to learn statistics"
                )
            # Running sums over chunks of rows, so memory stays bounded.
            total = np.zeros(self.spec_.shape[-1])
            squares = np.zeros(self.spec_.shape[-1])
            for part in self._chunks(column):
                images = self._decode(part)[part.present].astype(np.float64)
                total += images.sum(axis=(0, 1, 2))
                squares += np.square(images).sum(axis=(0, 1, 2))
            count = present.sum() * h * w
            mean = total / count
            var = np.maximum(squares / count - np.square(mean), 0.0)
            self.mean_ = mean.astype(np.float32)
            self.std_ = np.maximum(np.sqrt(var), 1e-6).astype(np.float32)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Decode and normalise images.

        Parameters
        ----------
        X : Series, one-column DataFrame, list, or (N, H, W[, C]) array
            Image cells.

        Returns
        -------
        ndarray of shape (N, H, W, C), float32
            Missing rows are all zeros.
        """
        check_is_fitted(self, "spec_")
        column = _image_column(X)
        check_not_empty(column, "ImagePreprocessor")
        return self._transform_column(column)

    def _transform_column(self, column: Column) -> np.ndarray:
        if len(column) > _CHUNK:
            return np.concatenate([self._transform_column(p) for p in self._chunks(column)])
        out = self.normalize(self._decode(column))
        out[~column.present] = 0.0
        return out.astype(np.float32, copy=False)

    def normalize(self, images: Any) -> Any:
        """Map decoded pixels in [0, 1] to the ``normalization`` fitted.

        Plain arithmetic, so it serves NumPy arrays in :meth:`transform` and
        TensorFlow tensors in the graph :func:`mmsk.export` writes alike.

        Parameters
        ----------
        images : ndarray or tensor of shape (N, H, W, C)
            Pixels scaled to [0, 1].

        Returns
        -------
        ndarray or tensor of the same shape

        Examples
        --------
        >>> import numpy as np
        >>> prep = ImagePreprocessor(size=2, normalization="symmetric").fit(np.zeros((1, 2, 2)))
        >>> prep.normalize(np.full((1, 2, 2, 3), 0.5)).max()
        np.float64(0.0)
        """
        check_is_fitted(self, "spec_")
        how = self._setting("normalization")
        if how == "symmetric":
            return images * 2.0 - 1.0
        if how == "standardize":
            return (images - self.mean_) / self.std_
        if how == "none":
            return images * 255.0
        return images

    def iter_transform(self, X: Any, batch_size: int = 256) -> Iterator[np.ndarray]:
        """Yield :meth:`transform` of ``batch_size`` rows at a time (bounded memory).

        Examples
        --------
        >>> import numpy as np
        >>> prep = ImagePreprocessor(size=8).fit(np.zeros((5, 8, 8), np.uint8))
        >>> [b.shape[0] for b in prep.iter_transform(np.zeros((5, 8, 8), np.uint8), 2)]
        [2, 2, 1]
        """
        check_is_fitted(self, "spec_")
        column = _image_column(X)
        check_not_empty(column, "ImagePreprocessor")
        if not isinstance(batch_size, Integral) or batch_size < 1:
            raise InputError(f"Expected a positive integer. Received: batch_size={batch_size!r}")
        for start in range(0, len(column), batch_size):
            stop = start + batch_size
            part = Column(column.cells[start:stop], column.name, column.index[start:stop])
            yield self._transform_column(part)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """One name per output value, in (H, W, C) order: ``<column>_<row>_<col>_<channel>``.

        ``<column>`` is the column seen in ``fit`` (``"X"`` if it had no name);
        ``input_features``, if given, must be that one column.
        """
        name = self._output_prefix(input_features)
        h, w, c = self.spec_.shape
        return np.asarray(
            [f"{name}_{i}_{j}_{k}" for i in range(h) for j in range(w) for k in range(c)],
            dtype=object,
        )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = True  # missing cells are allowed and masked
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _check_size(size: Any) -> tuple[int, int]:
    """``size`` as (height, width); a ParameterError unless a positive int or a pair of them."""
    hw = (size, size) if isinstance(size, Integral) else tuple(size)
    if len(hw) != 2 or not all(isinstance(s, Integral) and int(s) > 0 for s in hw):
        raise ParameterError(
            f"Expected size to be a positive int or (height, width). Received: size={size!r}"
        )
    return int(hw[0]), int(hw[1])


def _cell_size(cell: Any) -> tuple[int, int] | None:
    """(height, width) of one image cell, reading only a file's header; None if unknown."""
    if isinstance(cell, np.ndarray):
        return (int(cell.shape[0]), int(cell.shape[1])) if cell.ndim in (2, 3) else None
    if isinstance(cell, Image.Image):
        return cell.size[1], cell.size[0]
    if isinstance(cell, (str, os.PathLike, bytes, bytearray, memoryview)):
        try:
            if isinstance(cell, (str, os.PathLike)):
                source: Any = open_checked(cell, "image")  # no FIFO, device or huge file
            else:
                source = io.BytesIO(bytes(cell))
            with source, Image.open(source) as img:  # lazy: the header only
                return img.size[1], img.size[0]
        except Exception:  # decoding reports the file properly later
            return None
    return None


def _auto_size(column: Column) -> tuple[int, int]:
    """The output size ``size=None`` chooses: the median image, scaled down to fit 64."""
    rows = np.flatnonzero(column.present)
    if len(rows) > _AUTO_SAMPLE:
        rows = rows[np.linspace(0, len(rows) - 1, _AUTO_SAMPLE).astype(int)]
    sizes = [s for s in (_cell_size(column.cells[i]) for i in rows) if s is not None]
    if not sizes:
        return AUTO_MAX_SIDE, AUTO_MAX_SIDE
    h, w = (float(np.median([s[k] for s in sizes])) for k in (0, 1))
    scale = min(1.0, AUTO_MAX_SIDE / max(h, w, 1.0))
    return max(1, round(h * scale)), max(1, round(w * scale))
