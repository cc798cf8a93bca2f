"""Errors raised by mmsk.

Every error mmsk raises on purpose derives from :class:`MmskError`.  Like
scikit-learn, the concrete classes also derive from the built-in exception a
caller would expect (``ValueError`` for bad values, ``TypeError`` for bad
types), so ``except ValueError`` keeps working.

Examples
--------
>>> from mmsk.exceptions import InputError
>>> try:
...     raise InputError("column 'photo', row 3: file not found: 'a.png'")
... except ValueError as err:
...     print(type(err).__name__)
InputError
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackendError",
    "ColumnMismatchError",
    "DecodeError",
    "InputError",
    "InputTypeError",
    "MmskError",
    "ModelBuildError",
    "ParameterError",
    "PluginContractError",
    "PluginError",
    "UnknownComponentError",
]


class MmskError(Exception):
    """Base class of every error mmsk raises on purpose."""


class InputError(MmskError, ValueError):
    """Input data has a bad value: the message names the column, row and what was expected."""


class InputTypeError(MmskError, TypeError):
    """Input data has the wrong type: the message names the column, row and expected type."""


class ParameterError(MmskError, ValueError, TypeError):
    """A constructor argument is invalid (e.g. ``epochs=0``); a ValueError and a TypeError,
    like scikit-learn's ``InvalidParameterError``."""


class DecodeError(InputError):
    """A file or bytes cell could not be decoded as the modality's kind."""


class ColumnMismatchError(InputError):
    """Columns given to ``transform``/``predict`` differ from those seen in ``fit``."""


class UnknownComponentError(MmskError, ValueError):
    """An encoder or fusion name is not registered; the message lists the known names."""


class ModelBuildError(MmskError, ValueError):
    """The Keras model could not be built or trained with the given settings and data."""


class PluginError(MmskError, ImportError):
    """A plugin failed to import, or several distributions declare the same name."""


class PluginContractError(MmskError, TypeError):
    """A component does not keep the encoder/fusion contract; the message says what is missing."""


class BackendError(MmskError, ImportError):
    """TensorFlow/Keras is missing or unusable."""


def __getattr__(name: str) -> Any:
    # scikit-learn's NotFittedError, re-exported without importing sklearn at `import mmsk`.
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError

        return NotFittedError
    raise AttributeError(f"module 'mmsk.exceptions' has no attribute {name!r}")
