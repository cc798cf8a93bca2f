"""Built-in fusions: concat, sum, attention, gated, late."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

from sklearn.utils._param_validation import Interval

from mmsk import _backend
from mmsk.components._base import Encoded, Fusion

_POSITIVE = [Interval(Integral, 1, None, closed="left")]


def _present_vectors(encoded: list[Encoded]) -> list[Any]:
    """Each modality's vector with missing rows zeroed."""
    from mmsk.layers import ApplyPresence

    return [ApplyPresence(e.index, name=f"{e.name}_present")(e.tensor, e.present) for e in encoded]


def _stack(L: Any, vectors: list[Any], name: str) -> Any:
    """(N, d) vectors -> (N, K, d)."""
    width = vectors[0].shape[-1]
    rows = [L.Reshape((1, width), name=f"{name}_row{i}")(v) for i, v in enumerate(vectors)]
    return rows[0] if len(rows) == 1 else L.Concatenate(axis=1, name=f"{name}_stack")(rows)


class ConcatFusion(Fusion):
    """Concatenate the modality vectors and the presence flags.

    Missing modalities contribute zeros, and their flag tells the head so.

    Examples
    --------
    >>> ConcatFusion().get_params()
    {}
    """

    def fuse(self, encoded: list[Encoded]) -> Any:
        L = _backend.keras().layers
        parts = [*_present_vectors(encoded), encoded[0].present]
        return L.Concatenate(name="concat_fusion")(parts)


class SumFusion(Fusion):
    """Project every modality to ``units`` and add them (missing ones add nothing).

    Parameters
    ----------
    units : int, default=64

    Examples
    --------
    >>> SumFusion(units=16).units
    16
    """

    _parameter_constraints: ClassVar[dict] = {"units": _POSITIVE}

    def __init__(self, units: int = 64) -> None:
        self.units = units

    def fuse(self, encoded: list[Encoded]) -> Any:
        from mmsk.layers import ApplyPresence

        L = _backend.keras().layers
        projected = [
            ApplyPresence(e.index, name=f"{e.name}_present")(
                L.Dense(self.units, name=f"{e.name}_project")(e.tensor), e.present
            )
            for e in encoded
        ]
        return projected[0] if len(projected) == 1 else L.Add(name="sum_fusion")(projected)


class AttentionFusion(Fusion):
    """A Transformer over the tokens of all modalities.

    Every modality's token sequence is projected to ``d_model`` and tagged
    with a learned modality-type embedding; the sequences are joined behind
    a [CLS] token and run through ``num_blocks`` Transformer blocks
    (softmax(QK^T / sqrt(d)) V attention), where padding tokens and missing
    modalities are masked out.  The output is the mean over valid tokens.

    Parameters
    ----------
    d_model : int, default=64
    num_heads : int, default=4
    ff_dim : int, default=128
    num_blocks : int, default=1
    dropout : float, default=0.1

    Examples
    --------
    >>> AttentionFusion(num_heads=2).sequence
    True
    """

    sequence: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict] = {
        "d_model": _POSITIVE, "num_heads": _POSITIVE, "ff_dim": _POSITIVE,
        "num_blocks": _POSITIVE, "dropout": [Interval(Real, 0, 1, closed="left")],
    }  # fmt: skip

    def __init__(
        self, d_model: int = 64, num_heads: int = 4, ff_dim: int = 128, num_blocks: int = 1,
        dropout: float = 0.1,
    ) -> None:  # fmt: skip
        self.d_model = d_model
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.num_blocks = num_blocks
        self.dropout = dropout

    def fuse(self, encoded: list[Encoded]) -> Any:
        from mmsk.layers import (
            JoinTokens,
            MaskedMeanPool,
            ModalityTypeEmbedding,
            SequenceMask,
            TransformerBlock,
        )

        L = _backend.keras().layers
        tokens, masks = [], []
        for e in encoded:
            t = L.Dense(self.d_model, name=f"{e.name}_to_model")(e.tensor)
            tokens.append(ModalityTypeEmbedding(name=f"{e.name}_type")(t))
            args = [e.tensor, e.present] + ([e.token_mask] if e.token_mask is not None else [])
            masks.append(SequenceMask(e.index, name=f"{e.name}_keys")(*args))
        x, mask = JoinTokens(name="join_tokens")(tokens, masks)
        for i in range(self.num_blocks):
            x = TransformerBlock(self.num_heads, self.ff_dim, self.dropout,
                                 name=f"fusion_block{i}")(x, mask=mask)  # fmt: skip
        x = L.LayerNormalization(epsilon=1e-6, name="fusion_norm")(x)
        return MaskedMeanPool(name="attention_fusion")(x, mask=mask)


class GatedFusion(Fusion):
    """Learned gates: a softmax over present modalities weights their projections.

    Parameters
    ----------
    units : int, default=64

    Examples
    --------
    >>> GatedFusion().units
    64
    """

    _parameter_constraints: ClassVar[dict] = {"units": _POSITIVE}

    def __init__(self, units: int = 64) -> None:
        self.units = units

    def fuse(self, encoded: list[Encoded]) -> Any:
        from mmsk.layers import PresenceSoftmaxPool

        L = _backend.keras().layers
        hidden = [
            L.Dense(self.units, activation="tanh", name=f"{e.name}_gate_in")(e.tensor)
            for e in encoded
        ]
        if len(hidden) == 1:  # nothing to gate between
            from mmsk.layers import ApplyPresence

            return ApplyPresence(encoded[0].index, name="gated_fusion")(
                hidden[0], encoded[0].present
            )
        stacked = _stack(L, hidden, "gated")
        return PresenceSoftmaxPool(name="gated_fusion")(stacked, encoded[0].present)


class LateFusion(Fusion):
    """One head per modality; predictions are averaged over the present modalities.

    The fused embedding (for ``transform``) is the concatenation of the
    modality vectors (zeros for missing ones).

    Examples
    --------
    >>> LateFusion().get_params()
    {}
    """

    def fuse(self, encoded: list[Encoded]) -> Any:
        vectors = _present_vectors(encoded)
        if len(vectors) == 1:
            return vectors[0]
        return _backend.keras().layers.Concatenate(name="late_fusion")(vectors)

    def logits(self, fused: Any, encoded: list[Encoded], *, n_outputs: int) -> Any:
        from mmsk.layers import SplitHeads

        sizes = [e.tensor.shape[-1] for e in encoded]
        return SplitHeads(sizes, n_outputs, name="late_heads")(fused, encoded[0].present)
