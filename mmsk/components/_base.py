"""Base classes of encoder and fusion components (the plugin contract)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sklearn.base import BaseEstimator

from mmsk._batch import ModalitySpec


@dataclass
class Encoded:
    """One modality's encoding inside a model being built.

    Attributes
    ----------
    name : str
        Modality name.
    index : int
        Column of this modality in the presence matrix ``present``.
    kind : str
        Modality kind.
    tensor : KerasTensor
        (N, d) vector, or (N, T, d) token sequence.
    token_mask : KerasTensor or None
        (N, T) bool mask of valid tokens, for sequences that have padding.
    present : KerasTensor
        Presence matrix (N, K) of all modalities (1.0 present, 0.0 missing).
    """

    name: str
    index: int
    kind: str
    tensor: Any
    token_mask: Any
    present: Any


class Encoder(BaseEstimator):
    """Base class of encoders: one modality's array -> a vector or a token sequence.

    Subclasses set ``kinds`` (the modality kinds they accept), store their
    settings in ``__init__`` (scikit-learn rules: keyword arguments only,
    stored unchanged under the same names) and implement :meth:`encode`,
    which applies Keras layers to a symbolic input.  Layers must be Keras
    built-ins or registered with
    ``keras.saving.register_keras_serializable`` so a fitted model saves.
    """

    kinds: ClassVar[tuple[str, ...]] = ()

    def encode(self, x: Any, spec: ModalitySpec, *, sequence: bool, name: str) -> tuple[Any, Any]:
        """Build the encoder on the symbolic input ``x`` of one modality.

        Parameters
        ----------
        x : KerasTensor
            Input of shape ``(N, *spec.shape)``.
        spec : ModalitySpec
            What the input holds (kind, shape, vocabulary size).
        sequence : bool
            Return a token sequence (N, T, d) if True, else a vector (N, d).
        name : str
            Prefix for layer names (unique per modality).

        Returns
        -------
        tensor : KerasTensor
            (N, d) or (N, T, d).
        token_mask : KerasTensor or None
            (N, T) bool mask for sequences with padding, else None.
        """
        raise NotImplementedError


class Fusion(BaseEstimator):
    """Base class of fusions: modality encodings -> one fused representation.

    ``sequence = True`` asks encoders for token sequences, else vectors.
    :meth:`fuse` returns the fused embedding (N, d).  A fusion that makes
    its own predictions from the embedding (late fusion) also overrides
    :meth:`logits`; otherwise mmsk's dense head does.
    """

    sequence: ClassVar[bool] = False

    def fuse(self, encoded: list[Encoded]) -> Any:
        """Return the fused embedding (N, d) of the encoded modalities."""
        raise NotImplementedError

    def logits(self, fused: Any, encoded: list[Encoded], *, n_outputs: int) -> Any:
        """Return logits (N, n_outputs) computed from ``fused``, or None for the default head."""
        return None
