"""Decode one image cell (path, bytes, array, PIL image) to a resized float32 array."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mmsk.exceptions import DecodeError, InputError, InputTypeError
from mmsk.preprocessing._column import read_file

CHANNELS = {"rgb": 3, "grayscale": 1, "rgba": 4}
_PIL_MODE = {"rgb": "RGB", "grayscale": "L", "rgba": "RGBA"}
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "area": Image.Resampling.BOX,
}


def _open(cell: Any, size: tuple[int, int]) -> Image.Image:
    data = cell
    if isinstance(cell, (str, os.PathLike)):
        data = read_file(cell, "image")
    what = repr(os.fspath(cell)) if isinstance(cell, (str, os.PathLike)) else "bytes"
    try:
        img = Image.open(io.BytesIO(bytes(data)))
        _check_pixels(img, what)
        if img.format == "JPEG":
            # Let libjpeg decode at a reduced scale that still covers `size`.
            img.draft("RGB", (size[1] * 2, size[0] * 2))
        img.load()
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"{what}: image too large to decode safely ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = "unknown format" if isinstance(exc, UnidentifiedImageError) else str(exc)
        raise DecodeError(
            f"{what} is not a readable image ({reason}); "
            "expected PNG, JPEG, GIF, BMP, WebP or TIFF data"
        ) from exc
    return img


def _check_pixels(img: Image.Image, what: str) -> None:
    """Refuse images over PIL's ``MAX_IMAGE_PIXELS`` before decoding them.

    PIL only warns between one and two times that limit; a warning filter
    cannot turn that into an error here, as filters are process-wide and this
    runs on a thread pool.
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and img.width * img.height > limit:
        raise DecodeError(
            f"{what}: image too large to decode safely: {img.width}x{img.height} = "
            f"{img.width * img.height} pixels, over PIL.Image.MAX_IMAGE_PIXELS={limit}"
        )


def _crop_box(w: int, h: int, target_w: int, target_h: int) -> tuple[int, int, int, int]:
    """Centre box of the target aspect ratio (as keras' ``crop_to_aspect_ratio``)."""
    target = target_w / target_h
    if w / h > target:
        new_w = max(1, round(h * target))
        left = (w - new_w) // 2
        return (left, 0, left + new_w, h)
    new_h = max(1, round(w / target))
    top = (h - new_h) // 2
    return (0, top, w, top + new_h)


def _from_pil(
    img: Image.Image, size: tuple[int, int], mode: str, resample: int, crop: bool
) -> np.ndarray:
    h, w = size
    box = _crop_box(img.width, img.height, w, h) if crop else None
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # High bit-depth grey: keep precision.  16-bit modes are scaled by 65535
        # whatever their content; 32-bit "I" (no declared depth) by 65535 when a
        # value exceeds 255, else by 255; "F" is taken as it is, like float arrays.
        arr = np.asarray(img, dtype=np.float32)
        if img.mode == "F":
            scale = 1.0
        elif img.mode.startswith("I;16") or arr.max(initial=0) > 255:
            scale = 65535.0
        else:
            scale = 255.0
        grey = Image.fromarray(arr / scale, mode="F").resize((w, h), resample, box=box)
        out = np.asarray(grey, dtype=np.float32)[..., None]
        return _match_channels(out, mode)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != _PIL_MODE[mode]:
        img = img.convert(_PIL_MODE[mode])
    if img.size != (w, h) or box is not None:
        img = img.resize((w, h), resample, box=box, reducing_gap=2.0)
    out = np.asarray(img, dtype=np.float32) / 255.0
    return out[..., None] if out.ndim == 2 else out


def _match_channels(arr: np.ndarray, mode: str) -> np.ndarray:
    """Convert (H, W, C) float in [0, 1] with C in 1, 3, 4 to the requested colour mode."""
    c = arr.shape[-1]
    if mode == "grayscale":
        if c == 1:
            return arr
        rgb = arr[..., :3]
        return (rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    rgb = np.repeat(arr, 3, axis=-1) if c == 1 else arr[..., :3]
    if mode == "rgb":
        return rgb
    alpha = arr[..., 3:4] if c == 4 else np.ones_like(arr[..., :1])
    return np.concatenate([rgb, alpha], axis=-1)


def _from_array(
    arr: np.ndarray, size: tuple[int, int], mode: str, resample: int, crop: bool
) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise InputError(
            f"array of shape {arr.shape} is not an image; expected (H, W) or (H, W, C) "
            "with C = 1 (grey), 3 (RGB) or 4 (RGBA) channels"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"image array of shape {arr.shape} has no pixels")
    if arr.dtype in (np.uint8, np.uint16):
        scaled = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    elif arr.dtype.kind in "ui":
        # No declared bit depth (e.g. int64 from np.array([[0, 255]])): 8-bit values.
        low, high = arr.min(), arr.max()
        if low < 0 or high > 255:
            raise InputError(
                f"image array of dtype {arr.dtype} holds values in [{low}, {high}]; expected "
                "8-bit values in [0, 255] (cast 16-bit images to uint16, or pass floats "
                "in [0, 1])"
            )
        scaled = arr.astype(np.float32) / 255.0
    elif arr.dtype.kind == "b":
        scaled = arr.astype(np.float32)
    elif arr.dtype.kind == "f":
        scaled = arr.astype(np.float32)
        if not np.isfinite(scaled).all():
            raise InputError("image array holds NaN or inf; expected finite pixel values")
    else:
        raise InputTypeError(f"image array of dtype {arr.dtype}; expected numbers")
    h, w = size
    box = _crop_box(arr.shape[1], arr.shape[0], w, h) if crop else None
    if arr.shape[:2] != (h, w) or box is not None:
        channels = [
            np.asarray(Image.fromarray(scaled[..., i], mode="F").resize((w, h), resample, box=box))
            for i in range(scaled.shape[-1])
        ]
        scaled = np.stack(channels, axis=-1)
    return _match_channels(scaled, mode)


def decode_image(
    cell: Any, size: tuple[int, int], mode: str, interpolation: str, crop: bool
) -> np.ndarray:
    """Decode one cell to float32 (H, W, C) in [0, 1] (floats arrays are taken as they are)."""
    resample = _RESAMPLE[interpolation]
    if isinstance(cell, np.ndarray):
        return _from_array(cell, size, mode, resample, crop)
    if isinstance(cell, Image.Image):
        return _from_pil(cell, size, mode, resample, crop)
    if isinstance(cell, (str, os.PathLike, bytes, bytearray, memoryview)):
        return _from_pil(_open(cell, size), size, mode, resample, crop)
    raise InputTypeError(
        f"cell of type {type(cell).__name__}; expected an image path, bytes, "
        "a numpy array or a PIL image"
    )
