"""Base classes of encoder and fusion components (the plugin contract)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import sklearn
from sklearn.base import BaseEstimator

from mmsk._batch import ModalitySpec
from mmsk._validation import ParamsMixin
from mmsk.exceptions import ParameterError

if TYPE_CHECKING:
    from typing_extensions import Self


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


def _checked(init: Callable[..., None]) -> Callable[..., None]:
    """``init``, then a check of the parameters once the outermost ``__init__`` is done."""

    @functools.wraps(init)
    def __init__(self: Component, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if (
            type(self).__init__ is __init__
            and not sklearn.get_config()["skip_parameter_validation"]
        ):
            self._validate_params()

    return __init__


class Component(ParamsMixin, BaseEstimator):
    """Base of encoders and fusions: settings checked when made and in ``set_params``.

    A subclass declares ``_parameter_constraints`` as scikit-learn estimators
    do (``{"units": [Interval(Integral, 1, None, closed="left")]}``); a value
    that breaks them raises :class:`~mmsk.exceptions.ParameterError` naming the
    parameter and the values it accepts, from the constructor and from
    ``set_params`` (which then leaves the component unchanged), long before a
    model is built.  Parameters without constraints are not checked.
    """

    _parameter_constraints: ClassVar[dict] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _checked(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def set_params(self, **params: Any) -> Self:
        before = self.get_params(deep=False)
        super().set_params(**params)
        try:
            if not sklearn.get_config()["skip_parameter_validation"]:
                self._validate_params()
        except ParameterError:
            BaseEstimator.set_params(self, **before)  # leave the component as it was
            raise
        return self


class Encoder(Component):
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


class Fusion(Component):
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
