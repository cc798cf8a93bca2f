"""FiLMFusion: the ``film`` fusion of mmsk (feature-wise linear modulation)."""

from __future__ import annotations

from typing import Any, ClassVar

from mmsk.components import Encoded, Fusion
from mmsk_vit._layers import FeatureModulation


class FiLMFusion(Fusion):
    """Feature-wise linear modulation: one modality conditions all the others.

    Registered with mmsk as ``"film"``.  One modality is the *conditioner*
    (see ``conditioner``); every other modality's vector is projected to
    ``units`` features ``h`` and modulated feature by feature by values the
    conditioner predicts (Perez et al., 2018, "FiLM")::

        gamma, beta = Dense(c), Dense(c)        # from the conditioner's vector c
        out = relu(h * (1 + gamma) + beta)

    ``gamma`` and ``beta`` start at zero, so training starts from the
    unmodulated features.  The fused embedding concatenates the modulated
    modalities, the conditioner's own projection and the presence flags.

    Missing modalities: a row whose conditioner is missing is not modulated
    (``gamma`` and ``beta`` are ignored for it); a missing modulated modality
    contributes zeros, as in mmsk's built-in fusions.  With a single
    modality there is nothing to modulate and the fusion is its projection.

    Parameters
    ----------
    conditioner : str or None, default=None
        The modality that conditions: a modality name (a column, e.g.
        ``"price"``), or a kind (``"numeric"``, ``"text"``, ...) meaning the
        first modality of that kind.  None: the *last* modality, in the
        order of ``fitted.modalities_`` (the DataFrame's column order).
    units : int, default=64
        Width of the projected and modulated features.

    Examples
    --------
    >>> from mmsk_vit import FiLMFusion
    >>> FiLMFusion(conditioner="caption").get_params()
    {'conditioner': 'caption', 'units': 64}
    """

    sequence: ClassVar[bool] = False

    def __init__(self, conditioner: str | None = None, units: int = 64) -> None:
        self.conditioner = conditioner
        self.units = units

    def _pick(self, encoded: list[Encoded]) -> Encoded:
        if self.conditioner is None:
            return encoded[-1]
        for e in encoded:
            if e.name == self.conditioner:
                return e
        for e in encoded:
            if e.kind == self.conditioner:
                return e
        raise ValueError(
            f"Expected conditioner to name a modality {[e.name for e in encoded]} or a kind "
            f"{sorted({e.kind for e in encoded})}. Received: conditioner={self.conditioner!r}"
        )

    def fuse(self, encoded: list[Encoded]) -> Any:
        import keras

        from mmsk.layers import ApplyPresence

        if not isinstance(self.units, int) or isinstance(self.units, bool) or self.units <= 0:
            raise ValueError(f"Expected a positive integer. Received: units={self.units!r}")
        L = keras.layers
        cond = self._pick(encoded)
        present = cond.present
        c = cond.tensor
        parts = []
        for e in encoded:
            if e is cond:
                continue
            h = L.Dense(self.units, name=f"{e.name}_film_in")(e.tensor)
            gamma = L.Dense(self.units, kernel_initializer="zeros",
                            name=f"{e.name}_film_gamma")(c)  # fmt: skip
            beta = L.Dense(self.units, kernel_initializer="zeros",
                           name=f"{e.name}_film_beta")(c)  # fmt: skip
            h = FeatureModulation(cond.index, name=f"{e.name}_film")(h, gamma, beta, present)
            h = L.Activation("relu", name=f"{e.name}_film_relu")(h)
            parts.append(ApplyPresence(e.index, name=f"{e.name}_present")(h, present))
        own = L.Dense(self.units, activation="relu", name=f"{cond.name}_film_own")(c)
        parts.append(ApplyPresence(cond.index, name=f"{cond.name}_present")(own, present))
        return L.Concatenate(name="film_fusion")([*parts, present])
