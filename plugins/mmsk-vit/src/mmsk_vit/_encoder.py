"""ViTEncoder: the ``vit`` image encoder of mmsk (a Vision Transformer on image patches)."""

from __future__ import annotations

from typing import Any

from mmsk import ModalitySpec
from mmsk.components import Encoder
from mmsk_vit._layers import PositionEmbedding


def _positive(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"Expected a positive integer. Received: {name}={value!r}")
    return value


class ViTEncoder(Encoder):
    """Vision-Transformer encoder: image patches as tokens, then Transformer blocks.

    Registered with mmsk as ``"vit"``.  The image (N, H, W, C) is cut into
    non-overlapping ``patch_size`` x ``patch_size`` patches, each linearly
    embedded to ``embedding_dim`` (a Conv2D whose stride is its kernel size);
    a learned position embedding is added, and ``num_blocks`` pre-norm
    Transformer blocks (:class:`mmsk.layers.TransformerBlock`) attend over
    the ``(H // patch_size) * (W // patch_size)`` patch tokens.  Rows or
    columns beyond the last whole patch are dropped.

    As a sequence (``fusion="attention"``) the encoder returns the patch
    tokens (no padding, so no token mask); as a vector, their mean.

    Parameters
    ----------
    patch_size : int, default=8
        Side of a patch in pixels; at most the image's smaller side.  With
        mmsk's default 64 x 64 images this gives 64 tokens.
    embedding_dim : int, default=64
        Width of the tokens; divisible by ``num_heads``.
    num_heads : int, default=4
    ff_dim : int, default=128
        Hidden width of each block's feed-forward network.
    num_blocks : int, default=2
    dropout : float, default=0.1
        Dropout on attention weights and block outputs.

    Examples
    --------
    >>> from mmsk_vit import ViTEncoder
    >>> ViTEncoder(patch_size=4, embedding_dim=32).get_params()["patch_size"]
    4
    """

    kinds = ("image",)

    def __init__(
        self,
        patch_size: int = 8,
        embedding_dim: int = 64,
        num_heads: int = 4,
        ff_dim: int = 128,
        num_blocks: int = 2,
        dropout: float = 0.1,
    ) -> None:
        self.patch_size = patch_size
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.num_blocks = num_blocks
        self.dropout = dropout

    def _check(self, spec: ModalitySpec, name: str) -> int:
        patch = _positive(self.patch_size, "patch_size")
        width = _positive(self.embedding_dim, "embedding_dim")
        heads = _positive(self.num_heads, "num_heads")
        if width % heads:
            raise ValueError(
                "Expected embedding_dim to be divisible by num_heads. "
                f"Received: embedding_dim={width}, num_heads={heads}"
            )
        if self.num_blocks != 0:
            _positive(self.num_blocks, "num_blocks")
        if len(spec.shape) != 3:
            raise ValueError(
                f"Expected images of shape (height, width, channels) for modality {name!r}. "
                f"Received: shape={spec.shape}"
            )
        if min(spec.shape[:2]) < patch:
            raise ValueError(
                f"Expected patch_size to be at most the image's smaller side. Received: "
                f"patch_size={patch} for images of {spec.shape[0]}x{spec.shape[1]} "
                f"(modality {name!r})"
            )
        return patch

    def encode(self, x: Any, spec: ModalitySpec, *, sequence: bool, name: str) -> tuple[Any, Any]:
        import keras

        from mmsk.layers import TransformerBlock

        L = keras.layers
        patch = self._check(spec, name)
        h = L.Conv2D(self.embedding_dim, patch, strides=patch, padding="valid",
                     name=f"{name}_patches")(x)  # fmt: skip
        rows, cols = h.shape[1], h.shape[2]
        h = L.Reshape((rows * cols, self.embedding_dim), name=f"{name}_tokens")(h)
        h = PositionEmbedding(name=f"{name}_position")(h)
        for i in range(self.num_blocks):
            h = TransformerBlock(self.num_heads, self.ff_dim, self.dropout,
                                 name=f"{name}_block{i}")(h)  # fmt: skip
        h = L.LayerNormalization(epsilon=1e-6, name=f"{name}_norm")(h)
        if sequence:
            return h, None
        return L.GlobalAveragePooling1D(name=f"{name}_mean")(h), None
