"""A tiny image encoder declared under a name another distribution also uses."""

from __future__ import annotations

from typing import Any

from mmsk.components import Encoder


class OtherKerasAppEncoder(Encoder):
    """Global average of the pixels: a valid encoder whose only fault is its name."""

    kinds = ("image",)

    def encode(self, x: Any, spec: Any, *, sequence: bool, name: str) -> tuple[Any, Any]:
        import keras

        L = keras.layers
        if sequence:
            h, w, c = spec.shape
            return L.Reshape((h * w, c), name=f"{name}_pixels")(x), None
        return L.GlobalAveragePooling2D(name=f"{name}_gap")(x), None
