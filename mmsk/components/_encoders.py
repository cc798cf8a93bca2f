"""Built-in encoders: cnn, rnn, transformer, audio_cnn, mlp."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

from sklearn.utils._param_validation import Interval, StrOptions

from mmsk import _backend
from mmsk._batch import ModalitySpec
from mmsk.components._base import Encoder

_POSITIVE = [Interval(Integral, 1, None, closed="left")]
_RATE = [Interval(Real, 0, 1, closed="left")]  # a dropout rate


def _conv_stack(x: Any, conv: Any, pool: Any, filters: int, blocks: int, kernel_size: int,
                name: str) -> Any:  # fmt: skip
    for i in range(blocks):
        width = filters * 2**i
        x = conv(width, kernel_size, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
        if x.shape[1] >= 2:
            x = pool(2, name=f"{name}_pool{i}")(x)
    return x


def _vocabulary(spec: ModalitySpec) -> int:
    if not spec.vocabulary_size:
        raise ValueError(f"a text encoder needs token ids with a vocabulary size; got {spec}")
    return spec.vocabulary_size


class CNNEncoder(Encoder):
    """Convolutional image encoder: ``blocks`` conv layers (filters doubling), pooling between.

    Parameters
    ----------
    filters : int, default=16
        Filters of the first block; each next block doubles them.
    blocks : int, default=2
        Conv blocks.
    kernel_size : int, default=3
    max_tokens : int, default=64
        As a token sequence (attention fusion), the feature map is pooled
        further until it has at most this many positions (8 x 8 by default),
        which keeps attention cheap.

    Examples
    --------
    >>> CNNEncoder(filters=8).get_params()
    {'blocks': 2, 'filters': 8, 'kernel_size': 3, 'max_tokens': 64}
    """

    kinds: ClassVar[tuple[str, ...]] = ("image",)
    _parameter_constraints: ClassVar[dict] = {
        "filters": _POSITIVE, "blocks": _POSITIVE, "kernel_size": _POSITIVE,
        "max_tokens": _POSITIVE,
    }  # fmt: skip

    def __init__(
        self, filters: int = 16, blocks: int = 2, kernel_size: int = 3, max_tokens: int = 64
    ) -> None:
        self.filters = filters
        self.blocks = blocks
        self.kernel_size = kernel_size
        self.max_tokens = max_tokens

    def encode(self, x: Any, spec: ModalitySpec, *, sequence: bool, name: str) -> tuple[Any, Any]:
        keras = _backend.keras()
        L = keras.layers
        x = _conv_stack(x, L.Conv2D, L.MaxPooling2D, self.filters, self.blocks,
                        self.kernel_size, name)  # fmt: skip
        if sequence:
            step = 0
            while x.shape[1] * x.shape[2] > self.max_tokens and min(x.shape[1:3]) >= 2:
                x = L.MaxPooling2D(2, name=f"{name}_token_pool{step}")(x)
                step += 1
            h, w, c = x.shape[1:]
            return L.Reshape((h * w, c), name=f"{name}_tokens")(x), None
        return L.GlobalAveragePooling2D(name=f"{name}_gap")(x), None


class AudioCNNEncoder(Encoder):
    """1-D convolutions over time of a spectrogram (N, T, M), mel bins as channels.

    Parameters
    ----------
    filters : int, default=32
    blocks : int, default=2
    kernel_size : int, default=3

    Examples
    --------
    >>> AudioCNNEncoder(blocks=3).blocks
    3
    """

    kinds: ClassVar[tuple[str, ...]] = ("audio",)
    _parameter_constraints: ClassVar[dict] = {
        "filters": _POSITIVE, "blocks": _POSITIVE, "kernel_size": _POSITIVE,
    }  # fmt: skip

    def __init__(self, filters: int = 32, blocks: int = 2, kernel_size: int = 3) -> None:
        self.filters = filters
        self.blocks = blocks
        self.kernel_size = kernel_size

    def encode(self, x: Any, spec: ModalitySpec, *, sequence: bool, name: str) -> tuple[Any, Any]:
        keras = _backend.keras()
        L = keras.layers
        x = _conv_stack(x, L.Conv1D, L.MaxPooling1D, self.filters, self.blocks,
                        self.kernel_size, name)  # fmt: skip
        if sequence:
            return x, None
        return L.GlobalAveragePooling1D(name=f"{name}_gap")(x), None


class RNNEncoder(Encoder):
    """Token embedding and a recurrent layer (LSTM or GRU) over the unpadded tokens.

    Parameters
    ----------
    units : int, default=32
        Recurrent units (per direction).
    cell : {"lstm", "gru"}, default="lstm"
    bidirectional : bool, default=False
    embedding_dim : int, default=32

    Examples
    --------
    >>> RNNEncoder(cell="gru", bidirectional=True).cell
    'gru'
    """

    kinds: ClassVar[tuple[str, ...]] = ("text",)
    _parameter_constraints: ClassVar[dict] = {
        "units": _POSITIVE, "cell": [StrOptions({"lstm", "gru"})],
        "bidirectional": ["boolean"], "embedding_dim": _POSITIVE,
    }  # fmt: skip

    def __init__(
        self, units: int = 32, cell: str = "lstm", bidirectional: bool = False,
        embedding_dim: int = 32,
    ) -> None:  # fmt: skip
        self.units = units
        self.cell = cell
        self.bidirectional = bidirectional
        self.embedding_dim = embedding_dim

    def encode(self, x: Any, spec: ModalitySpec, *, sequence: bool, name: str) -> tuple[Any, Any]:
        keras = _backend.keras()
        from mmsk.layers import TokenMask

        L = keras.layers
        mask = TokenMask(name=f"{name}_mask")(x)
        h = L.Embedding(_vocabulary(spec), self.embedding_dim, name=f"{name}_embed")(x)
        layer = (L.LSTM if self.cell == "lstm" else L.GRU)(
            self.units, return_sequences=sequence, name=f"{name}_{self.cell}"
        )
        if self.bidirectional:
            layer = L.Bidirectional(layer, name=f"{name}_bi")
        h = layer(h, mask=mask)
        return h, (mask if sequence else None)


class TransformerEncoder(Encoder):
    """Token and position embeddings, then Transformer blocks with a padding mask.

    Parameters
    ----------
    embedding_dim : int, default=32
    num_heads : int, default=2
    ff_dim : int, default=64
    num_blocks : int, default=1
    dropout : float, default=0.1

    Examples
    --------
    >>> TransformerEncoder(num_heads=4).num_heads
    4
    """

    kinds: ClassVar[tuple[str, ...]] = ("text",)
    _parameter_constraints: ClassVar[dict] = {
        "embedding_dim": _POSITIVE, "num_heads": _POSITIVE, "ff_dim": _POSITIVE,
        "num_blocks": _POSITIVE, "dropout": _RATE,
    }  # fmt: skip

    def __init__(
        self, embedding_dim: int = 32, num_heads: int = 2, ff_dim: int = 64,
        num_blocks: int = 1, dropout: float = 0.1,
    ) -> None:  # fmt: skip
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.num_blocks = num_blocks
        self.dropout = dropout

    def encode(self, x: Any, spec: ModalitySpec, *, sequence: bool, name: str) -> tuple[Any, Any]:
        from mmsk.layers import (
            MaskedMeanPool,
            TokenAndPositionEmbedding,
            TokenMask,
            TransformerBlock,
        )

        mask = TokenMask(name=f"{name}_mask")(x)
        h = TokenAndPositionEmbedding(_vocabulary(spec), spec.shape[0], self.embedding_dim,
                                      name=f"{name}_embed")(x)  # fmt: skip
        for i in range(self.num_blocks):
            h = TransformerBlock(self.num_heads, self.ff_dim, self.dropout,
                                 name=f"{name}_block{i}")(h, mask=mask)  # fmt: skip
        if sequence:
            return h, mask
        return MaskedMeanPool(name=f"{name}_pool")(h, mask=mask), None


class MLPEncoder(Encoder):
    """Dense layers for numeric and one-hot categorical features.

    Parameters
    ----------
    units : int, default=32
    layers : int, default=1
    dropout : float, default=0.0

    Examples
    --------
    >>> MLPEncoder(units=8, layers=2).get_params()["layers"]
    2
    """

    kinds: ClassVar[tuple[str, ...]] = ("numeric", "categorical")
    _parameter_constraints: ClassVar[dict] = {
        "units": _POSITIVE, "layers": [Interval(Integral, 0, None, closed="left")],
        "dropout": _RATE,
    }  # fmt: skip

    def __init__(self, units: int = 32, layers: int = 1, dropout: float = 0.0) -> None:
        self.units = units
        self.layers = layers
        self.dropout = dropout

    def encode(self, x: Any, spec: ModalitySpec, *, sequence: bool, name: str) -> tuple[Any, Any]:
        L = _backend.keras().layers
        if len(spec.shape) != 1:
            x = L.Flatten(name=f"{name}_flat")(x)
        for i in range(self.layers):
            x = L.Dense(self.units, activation="relu", name=f"{name}_dense{i}")(x)
            if self.dropout:
                x = L.Dropout(self.dropout, name=f"{name}_drop{i}")(x)
        if sequence:
            return L.Reshape((1, x.shape[-1]), name=f"{name}_token")(x), None
        return x, None
