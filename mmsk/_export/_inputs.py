"""Each modality's preprocessing as TensorFlow ops, from raw column values.

A :class:`Modality` holds, for one modality of a fitted estimator, the raw
inputs it reads (one per DataFrame column), a function from those tensors to
the model's input array and presence (float32 (N,)), and what must be tracked
for the SavedModel (lookup tables).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from mmsk import _backend
from mmsk._batch import ModalitySpec
from mmsk.exceptions import ExportError
from mmsk.preprocessing import AudioFeaturizer, ImagePreprocessor, TextVectorizer
from mmsk.preprocessing._image_io import CHANNELS

MISSING_CATEGORY = "<missing>"  # what ModalityPreprocessor makes of a missing categorical cell
# PIL's filters as TensorFlow's ScaleAndTranslate kernels
_KERNEL = {"bilinear": "triangle", "bicubic": "keyscubic", "lanczos": "lanczos3", "area": "box"}


@dataclass
class Modality:
    """One modality of an export: its raw inputs and their preprocessing in-graph."""

    name: str
    kind: str
    inputs: dict[str, Any]  # column -> tf.TensorSpec
    build: Callable[[dict[str, Any]], tuple[Any, Any]]  # raw tensors -> (array, presence)
    track: list[Any] = field(default_factory=list)
    notes: str = ""


def _fail(name: str, transformer: Any, why: str) -> ExportError:
    return ExportError(
        f"modality {name!r}: {type(transformer).__name__} {why}, so it cannot be preprocessed "
        "inside the TensorFlow graph. Expected ImagePreprocessor, TextVectorizer, "
        "AudioFeaturizer, or for numbers SimpleImputer/StandardScaler/MinMaxScaler (in a "
        "Pipeline) and for categories OneHotEncoder(handle_unknown='ignore')"
    )


# ---- images ---------------------------------------------------------------------------------


def _to_channels(tf: Any, img: Any, mode: str) -> Any:
    """float (H, W, c) with c in 1..4 -> the colour mode's channels, as PIL's convert."""
    c = tf.shape(img)[-1]
    first = img[..., :1]
    rgb = tf.cond(c >= 3, lambda: img[..., :3], lambda: tf.concat([first] * 3, -1))
    alpha = tf.cond(
        tf.equal(c, 4) | tf.equal(c, 2),
        lambda: img[..., -1:],
        lambda: tf.ones_like(first),
    )
    if mode == "rgb":
        return rgb
    if mode == "rgba":
        return tf.concat([rgb, alpha], -1)

    def luma() -> Any:  # PIL's "L": (R*19595 + G*38470 + B*7471 + 2**15) >> 16 on 8 bits
        v = tf.cast(tf.round(rgb * 255.0), tf.int32)
        weights = tf.constant([19595, 38470, 7471], tf.int32)
        grey = (tf.reduce_sum(v * weights, -1, keepdims=True) + 32768) // 65536
        return tf.cast(grey, tf.float32) / 255.0

    return tf.cond(c >= 3, luma, lambda: first)


def _box(tf: Any, img: Any, h: int, w: int, crop: bool) -> Any:
    """(top, left, height, width) of the source region, as ImagePreprocessor's crop box."""
    shape = tf.shape(img)
    ih, iw = shape[0], shape[1]
    if not crop:
        return 0, 0, ih, iw
    fh, fw, target = tf.cast(ih, tf.float64), tf.cast(iw, tf.float64), w / h
    wide = fw / fh > target
    new_w = tf.maximum(tf.cast(tf.round(fh * target), tf.int32), 1)
    new_h = tf.maximum(tf.cast(tf.round(fw / target), tf.int32), 1)
    bw = tf.where(wide, new_w, iw)
    bh = tf.where(wide, ih, new_h)
    return (ih - bh) // 2, (iw - bw) // 2, bh, bw


def _resize(tf: Any, img: Any, h: int, w: int, method: str, crop: bool) -> Any:
    """Resize the crop box of ``img`` to (h, w) as PIL does.

    PIL's filters read pixels outside a crop box, and are antialiased when
    shrinking; ``ScaleAndTranslate`` samples the whole image the same way.
    """
    top, left, bh, bw = _box(tf, img, h, w, crop)
    if method == "nearest":
        part = img[top : top + bh, left : left + bw]
        return tf.image.resize(part, (h, w), method="nearest")
    sy = tf.cast(h, tf.float32) / tf.cast(bh, tf.float32)
    sx = tf.cast(w, tf.float32) / tf.cast(bw, tf.float32)
    out = tf.raw_ops.ScaleAndTranslate(
        images=img[None],
        size=[h, w],
        scale=tf.stack([sy, sx]),
        translation=tf.stack([-tf.cast(top, tf.float32) * sy, -tf.cast(left, tf.float32) * sx]),
        kernel_type=_KERNEL[method],
        antialias=True,
    )
    return out[0]


def image(name: str, column: str, t: ImagePreprocessor) -> Modality:
    tf = _backend.tf()
    h, w = t.size_
    c = CHANNELS[t.color_mode]
    method = t.interpolation

    def one(data: Any) -> Any:
        img = tf.io.decode_image(data, expand_animations=False, dtype=tf.float32)
        eight_bit = tf.reduce_all(tf.abs(img * 255.0 - tf.round(img * 255.0)) < 1e-3)
        img = _to_channels(tf, img, t.color_mode)
        same = tf.reduce_all(tf.equal(tf.shape(img)[:2], [h, w]))
        if t.crop_to_aspect_ratio:
            same = tf.zeros((), tf.bool)  # a box of the full image still resizes

        def resize() -> Any:
            if t.color_mode != "rgba":
                out = _resize(tf, img, h, w, method, t.crop_to_aspect_ratio)
            else:  # PIL resizes RGBA with premultiplied alpha
                alpha = img[..., 3:]
                out = _resize(tf, tf.concat([img[..., :3] * alpha, alpha], -1), h, w, method,
                              t.crop_to_aspect_ratio)  # fmt: skip
                a = out[..., 3:]
                safe = tf.where(a > 0, a, tf.ones_like(a))
                rgb = tf.where(a > 0, out[..., :3] / safe, tf.zeros_like(out[..., :3]))
                out = tf.concat([tf.clip_by_value(rgb, 0.0, 1.0), a], -1)
            # PIL resizes 8-bit images in 8 bits: round as it does
            return tf.cond(eight_bit, lambda: tf.round(out * 255.0) / 255.0, lambda: out)

        img = tf.cond(same, lambda: img, resize)
        return tf.ensure_shape(tf.clip_by_value(img, 0.0, 1.0), (h, w, c))

    def build(raw: dict[str, Any]) -> tuple[Any, Any]:
        data = raw[column]
        present = tf.strings.length(data) > 0
        images = tf.map_fn(
            lambda d: tf.cond(
                tf.strings.length(d) > 0, lambda: one(d), lambda: tf.zeros((h, w, c))
            ),
            data,
            fn_output_signature=tf.TensorSpec((h, w, c), tf.float32),
        )
        images = t.normalize(images) * tf.cast(present, tf.float32)[:, None, None, None]
        return images, tf.cast(present, tf.float32)

    notes = (
        "encoded image bytes (PNG, JPEG, GIF, BMP; b'' for a missing image), decoded and "
        f"resized to {h}x{w} in-graph"
    )
    return Modality(name, "image", {column: tf.TensorSpec([None], tf.string)}, build, [], notes)


# ---- text and audio -------------------------------------------------------------------------


def text(name: str, column: str, t: TextVectorizer) -> Modality:
    tf = _backend.tf()
    layer, char_layer = t.keras_layer(), t.char_keras_layer()
    size = t.vocabulary_size_
    chars = getattr(t, "char_sequence_length_", 0)

    def known(ids: Any, size: int) -> Any:
        ids = tf.cast(ids, tf.int32)
        if size <= 2:  # nothing learned: the placeholder's id is out of vocabulary too
            ids = tf.where(ids >= size, tf.ones_like(ids), ids)
        return ids

    def build(raw: dict[str, Any]) -> tuple[Any, Any]:
        ids = known(layer(raw[column]), size)
        if char_layer is not None:  # as transform: n-grams of the first characters
            cut = tf.strings.substr(raw[column], 0, chars + 1, unit="UTF8_CHAR")
            ids = tf.concat([ids, known(char_layer(cut), t.char_vocabulary_size_)], axis=1)
        return ids, tf.ones(tf.shape(ids)[:1], tf.float32)

    notes = "UTF-8 strings, tokenised in-graph with the fitted vocabulary"
    if char_layer is not None:
        notes += (
            f" (then the ids of their character {min(t._char_widths())}-"
            f"{max(t._char_widths())}-grams)"
        )
    layers = [layer] if char_layer is None else [layer, char_layer]
    return Modality(name, "text", {column: tf.TensorSpec([None], tf.string)}, build, layers, notes)


def audio(name: str, column: str, t: AudioFeaturizer) -> Modality:
    tf = _backend.tf()
    n = t.n_samples_

    def build(raw: dict[str, Any]) -> tuple[Any, Any]:
        waves = raw[column][:, :n]
        waves = tf.pad(waves, [[0, 0], [0, tf.maximum(n - tf.shape(waves)[1], 0)]])
        waves = tf.ensure_shape(waves, (None, n))
        feats = t.features_graph(waves)
        if t.mean_ is not None:
            feats = (feats - t.mean_) / t.scale_
        return feats, tf.ones(tf.shape(waves)[:1], tf.float32)

    notes = (
        f"float32 mono waveforms (N, samples) in [-1, 1] at {t.sample_rate} Hz, zero-padded to "
        f"a common length; cropped or padded to {n} samples in-graph"
    )
    spec = tf.TensorSpec([None, None], tf.float32)
    return Modality(name, "audio", {column: spec}, build, [], notes)


# ---- numbers and categories -----------------------------------------------------------------


def _steps(transformer: Any) -> list[Any]:
    if isinstance(transformer, Pipeline):
        return [s for _, s in transformer.steps if s not in (None, "passthrough")]
    return [transformer]


def _numeric_step(tf: Any, name: str, step: Any) -> Callable[[Any], Any]:
    if isinstance(step, SimpleImputer):
        if not (isinstance(step.missing_values, float) and np.isnan(step.missing_values)):
            raise _fail(name, step, f"has missing_values={step.missing_values!r} (not NaN)")
        stats = np.asarray(step.statistics_, np.float32)
        keep = np.flatnonzero(~np.isnan(stats)) if not step.keep_empty_features else None
        indicator = None if step.indicator_ is None else step.indicator_.features_

        def impute(x: Any) -> Any:
            nan = tf.math.is_nan(x)
            out = tf.where(nan, np.nan_to_num(stats)[None, :], x)
            if keep is not None:
                out = tf.gather(out, keep, axis=1)
            if indicator is not None:
                out = tf.concat([out, tf.cast(tf.gather(nan, indicator, axis=1), tf.float32)], 1)
            return out

        return impute
    if isinstance(step, StandardScaler):
        mean = None if step.mean_ is None else np.asarray(step.mean_, np.float32)
        scale = None if step.scale_ is None else np.asarray(step.scale_, np.float32)
        return lambda x: (x if mean is None else x - mean) / (1.0 if scale is None else scale)
    if isinstance(step, MinMaxScaler):
        scale, low = np.asarray(step.scale_, np.float32), np.asarray(step.min_, np.float32)
        lo, hi = step.feature_range

        def minmax(x: Any) -> Any:
            out = x * scale + low
            return tf.clip_by_value(out, lo, hi) if step.clip else out

        return minmax
    raise _fail(name, step, "is not a supported step")


def numeric(name: str, columns: list[str], transformer: Any, spec: ModalitySpec) -> Modality:
    tf = _backend.tf()
    steps = [_numeric_step(tf, name, s) for s in _steps(transformer)]

    def build(raw: dict[str, Any]) -> tuple[Any, Any]:
        x = tf.stack([tf.cast(raw[c], tf.float32) for c in columns], axis=1)
        present = tf.reduce_any(~tf.math.is_nan(x), axis=1)
        for step in steps:
            x = step(x)
        x = tf.where(present[:, None], x, tf.zeros_like(x))
        return tf.ensure_shape(x, (None, *spec.shape)), tf.cast(present, tf.float32)

    inputs = {c: tf.TensorSpec([None], tf.float32) for c in columns}
    return Modality(name, spec.kind, inputs, build, [], "numbers, NaN for a missing value")


def categorical(name: str, columns: list[str], transformer: Any, spec: ModalitySpec) -> Modality:
    tf = _backend.tf()
    if not isinstance(transformer, OneHotEncoder):
        raise _fail(name, transformer, "is not a OneHotEncoder")
    if transformer.drop is not None or transformer._infrequent_enabled:
        raise _fail(name, transformer, "drops or groups categories")
    if transformer.handle_unknown == "error":
        raise _fail(name, transformer, "has handle_unknown='error'")
    categories = []
    for cats in transformer.categories_:
        if cats.dtype.kind not in "OU" or not all(isinstance(v, str) for v in cats.tolist()):
            raise _fail(name, transformer, "has categories that are not strings")
        categories.append(tf.constant([str(v) for v in cats], tf.string))

    def build(raw: dict[str, Any]) -> tuple[Any, Any]:
        parts, given = [], []
        for column, cats in zip(columns, categories, strict=True):
            x = raw[column]
            given.append(tf.strings.length(x) > 0)
            x = tf.where(given[-1], x, tf.fill(tf.shape(x), MISSING_CATEGORY))
            parts.append(tf.cast(tf.equal(x[:, None], cats[None, :]), tf.float32))
        present = tf.reduce_any(tf.stack(given, axis=1), axis=1)
        x = tf.concat(parts, axis=1) * tf.cast(present, tf.float32)[:, None]
        return tf.ensure_shape(x, (None, *spec.shape)), tf.cast(present, tf.float32)

    inputs = {c: tf.TensorSpec([None], tf.string) for c in columns}
    notes = "categories as strings (str(value)); '' for a missing value"
    return Modality(name, "categorical", inputs, build, [], notes)


def modality(name: str, transformer: Any, columns: Any, spec: ModalitySpec) -> Modality:
    """The in-graph preprocessing of one fitted modality, or an :class:`ExportError`."""
    cols = [columns] if isinstance(columns, str) else [str(c) for c in columns]
    if isinstance(transformer, ImagePreprocessor) and len(cols) == 1:
        return image(name, cols[0], transformer)
    if isinstance(transformer, TextVectorizer) and len(cols) == 1:
        return text(name, cols[0], transformer)
    if isinstance(transformer, AudioFeaturizer) and len(cols) == 1:
        return audio(name, cols[0], transformer)
    if spec.kind == "numeric":
        return numeric(name, cols, transformer, spec)
    if spec.kind == "categorical":
        return categorical(name, cols, transformer, spec)
    raise _fail(name, transformer, f"prepares {spec.kind} data mmsk cannot rebuild")
