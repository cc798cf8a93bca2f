"""KerasAppEncoder: the ``keras_app`` image encoder of mmsk."""

from __future__ import annotations

from numbers import Integral
from typing import Any

from mmsk import ModalitySpec
from mmsk.components import Encoder
from mmsk_keras_apps._backbones import (
    BACKBONES,
    MIN_SIZE,
    build_backbone,
    caffe_projection,
    set_caffe_weights,
)

# Affine maps (scale, offset) from the pixel range mmsk's ImagePreprocessor gives
# (its ``normalization``) to the [0, 255] range keras.applications expect.
TO_255 = {"unit": (255.0, 0.0), "symmetric": (127.5, 127.5), "none": (1.0, 0.0)}


def _size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    size = (value, value) if isinstance(value, Integral) else tuple(value)
    if len(size) != 2 or not all(isinstance(s, Integral) and s >= MIN_SIZE for s in size):
        raise ValueError(
            f"Expected image_size to be None, an int or (height, width), each at least "
            f"{MIN_SIZE}. Received: image_size={value!r}"
        )
    return int(size[0]), int(size[1])


class KerasAppEncoder(Encoder):
    """Image encoder on a ``keras.applications`` backbone (MobileNetV3, EfficientNetB0, ResNet50).

    Registered with mmsk as ``"keras_app"``.  The backbone runs without its
    classification top; its last feature map (N, h, w, c) is averaged into a
    vector, or flattened into ``h * w`` tokens when the fusion asks for a
    sequence (``fusion="attention"``).

    Pixels: mmsk's :class:`~mmsk.preprocessing.ImagePreprocessor` gives
    [0, 1] by default; the encoder maps them to the [0, 255] RGB the
    backbones expect (``normalization`` says which range comes in), then each
    backbone applies its own ImageNet preprocessing inside the model:
    MobileNetV3 rescales to [-1, 1], EfficientNetB0 rescales and normalises
    per channel, ResNet50 gets BGR minus the ImageNet means (a frozen 1x1
    projection).  Grayscale images (one channel) are repeated to RGB.
    Images smaller than 32 x 32, the least keras.applications accept, are
    resized up to 32 on each short side inside the model
    (:class:`keras.layers.Resizing`, bilinear); ``image_size`` resizes to a
    fixed size instead (224 matches the ImageNet weights best).

    Parameters
    ----------
    backbone : {"mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "resnet50"}, \
default="mobilenet_v3_small"
    weights : None, "imagenet" or str, default=None
        None: random initialisation (works offline).  ``"imagenet"``:
        pretrained weights, downloaded once by Keras (internet needed) and
        cached in ``~/.keras/models``.  A path: a Keras weights file of the
        same headless backbone.
    trainable : bool, default=True
        Train the backbone's weights.  False freezes it (its BatchNorm
        layers then run in inference mode): feature extraction, much
        faster to fit, sensible with pretrained weights.
    alpha : float, default=1.0
        Width multiplier of MobileNetV3 (e.g. 0.5 for a tiny model; the
        ImageNet weights exist for 0.75 and 1.0).  Ignored by other backbones.
    minimalistic : bool, default=False
        MobileNetV3's minimalistic variant (no squeeze-excite, no hard-swish,
        3x3 kernels): smaller and faster.  Ignored by other backbones.
    image_size : int, (int, int) or None, default=None
        Resize every image to this size inside the model (each side >= 32).
        None keeps the preprocessed size, resizing only sides under 32 up to 32.
    normalization : {"unit", "symmetric", "none"}, default="unit"
        Pixel range of the input, as ``ImagePreprocessor(normalization=...)``
        gives it: [0, 1], [-1, 1] or [0, 255].
    units : int or None, default=None
        Project the features to this width with a Dense layer (None keeps
        the backbone's width: 576 for MobileNetV3Small, 1280 for
        EfficientNetB0, 2048 for ResNet50).

    Examples
    --------
    >>> from mmsk_keras_apps import KerasAppEncoder
    >>> KerasAppEncoder(backbone="efficientnet_b0", trainable=False).get_params()["backbone"]
    'efficientnet_b0'
    """

    kinds = ("image",)

    def __init__(
        self,
        backbone: str = "mobilenet_v3_small",
        weights: str | None = None,
        trainable: bool = True,
        alpha: float = 1.0,
        minimalistic: bool = False,
        image_size: int | tuple[int, int] | None = None,
        normalization: str = "unit",
        units: int | None = None,
    ) -> None:
        self.backbone = backbone
        self.weights = weights
        self.trainable = trainable
        self.alpha = alpha
        self.minimalistic = minimalistic
        self.image_size = image_size
        self.normalization = normalization
        self.units = units

    def _check(self, spec: ModalitySpec, name: str) -> tuple[int, int, int]:
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"Expected backbone in {sorted(BACKBONES)}. Received: backbone={self.backbone!r}"
            )
        if self.normalization not in TO_255:
            raise ValueError(
                f"Expected normalization in {sorted(TO_255)}. "
                f"Received: normalization={self.normalization!r}"
            )
        if self.units is not None and not (isinstance(self.units, Integral) and self.units > 0):
            raise ValueError(f"Expected units to be None or a positive int. Received: "
                             f"units={self.units!r}")  # fmt: skip
        if len(spec.shape) != 3 or spec.shape[-1] not in (1, 3):
            raise ValueError(
                f"Expected images of shape (height, width, 1 or 3) for modality {name!r}. "
                f"Received: shape={spec.shape}; use ImagePreprocessor(color_mode='rgb')"
            )
        return spec.shape  # type: ignore[return-value]

    def encode(self, x: Any, spec: ModalitySpec, *, sequence: bool, name: str) -> tuple[Any, Any]:
        import keras

        L = keras.layers
        height, width, channels = self._check(spec, name)
        size = _size(self.image_size) or (max(height, MIN_SIZE), max(width, MIN_SIZE))

        scale, offset = TO_255[self.normalization]
        if (scale, offset) != (1.0, 0.0):
            x = L.Rescaling(scale, offset, name=f"{name}_to_255")(x)
        if channels == 1:
            x = L.Concatenate(axis=-1, name=f"{name}_to_rgb")([x, x, x])
        if size != (height, width):
            x = L.Resizing(*size, interpolation="bilinear", name=f"{name}_resize")(x)
        if BACKBONES[self.backbone].preprocessing == "caffe":
            caffe = caffe_projection(keras, f"{name}_caffe")
            x = caffe(x)
            set_caffe_weights(caffe)

        model = build_backbone(
            keras, self.backbone, input_shape=(*size, 3), weights=self.weights,
            alpha=self.alpha, minimalistic=self.minimalistic, name=f"{name}_{self.backbone}",
        )  # fmt: skip
        model.trainable = bool(self.trainable)
        features = model(x)

        if sequence:
            h, w, c = features.shape[1:]
            out = L.Reshape((h * w, c), name=f"{name}_tokens")(features)
        else:
            out = L.GlobalAveragePooling2D(name=f"{name}_gap")(features)
        if self.units is not None:
            out = L.Dense(self.units, name=f"{name}_project")(out)
        return out, None
