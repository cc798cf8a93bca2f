"""The keras.applications backbones keras_app can use, and how each wants its pixels."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

MIN_SIZE = 32  # keras.applications refuse smaller inputs

# ImageNet channel means (BGR) that caffe-style models (ResNet50) subtract.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class Backbone:
    """One keras.applications model.

    Attributes
    ----------
    factory : str
        Name of the constructor in ``keras.applications``.
    preprocessing : {"inside", "caffe"}
        ``"inside"``: the model rescales [0, 255] pixels itself (a Rescaling
        layer in its graph).  ``"caffe"``: RGB [0, 255] must become BGR minus
        the ImageNet means first; keras_app adds a frozen 1x1 projection for it.
    mobilenet_v3 : bool
        Accepts ``alpha``, ``minimalistic`` and ``include_preprocessing``.
    """

    factory: str
    preprocessing: str
    mobilenet_v3: bool = False


BACKBONES: dict[str, Backbone] = {
    "mobilenet_v3_small": Backbone("MobileNetV3Small", "inside", mobilenet_v3=True),
    "mobilenet_v3_large": Backbone("MobileNetV3Large", "inside", mobilenet_v3=True),
    "efficientnet_b0": Backbone("EfficientNetB0", "inside"),
    "resnet50": Backbone("ResNet50", "caffe"),
}


class PretrainedWeightsError(OSError):
    """Pretrained weights were asked for but could not be downloaded or read."""


def build_backbone(
    keras: Any,
    backbone: str,
    *,
    input_shape: tuple[int, int, int],
    weights: str | None,
    alpha: float,
    minimalistic: bool,
    name: str,
) -> Any:
    """Return the headless backbone as a Keras model mapping [0, 255] RGB to a feature map."""
    info = BACKBONES[backbone]
    kwargs: dict[str, Any] = {}
    if info.mobilenet_v3:
        kwargs = {"alpha": alpha, "minimalistic": minimalistic, "include_preprocessing": True}
    factory = getattr(keras.applications, info.factory)
    if weights not in (None, "imagenet") and not os.path.exists(str(weights)):
        raise PretrainedWeightsError(
            f"keras_app could not find the weights file weights={weights!r}. Expected None, "
            "'imagenet' or the path of a Keras weights file of the headless backbone"
        )
    try:
        return factory(
            input_shape=input_shape, include_top=False, weights=weights, pooling=None,
            name=name, **kwargs,
        )  # fmt: skip
    except ValueError:
        raise  # a bad combination of settings: keras says which
    except Exception as exc:
        if weights is None:
            raise
        if weights == "imagenet":
            where = (
                "they are downloaded once from storage.googleapis.com and cached in "
                "~/.keras/models, which needs internet access"
            )
        else:
            where = f"weights={weights!r} is read as a Keras weights file"
        raise PretrainedWeightsError(
            f"keras_app could not load the {weights!r} weights of backbone={backbone!r}: "
            f"{where}. Cause: {type(exc).__name__}: {exc}. Train from scratch with "
            "weights=None, or download the weights file where you are online and pass its "
            "path as weights=..."
        ) from exc


def caffe_projection(keras: Any, name: str) -> Any:
    """A frozen Dense layer computing ``BGR(x) - mean`` on the channel axis of RGB [0, 255].

    A Keras built-in (no Lambda, no custom layer), so the model still loads with
    ``safe_mode=True``; its fixed weights are set by :func:`set_caffe_weights`.
    """
    return keras.layers.Dense(3, trainable=False, name=name)


def set_caffe_weights(layer: Any) -> None:
    import numpy as np

    flip = np.eye(3, dtype="float32")[::-1]  # RGB -> BGR
    layer.set_weights([flip, -np.asarray(CAFFE_MEAN_BGR, dtype="float32")])
