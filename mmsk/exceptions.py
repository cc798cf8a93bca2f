"""Errors raised by mmsk.

Every error mmsk raises on purpose derives from :class:`MmskError`.  Like
scikit-learn, the concrete classes also derive from the built-in exception a
caller would expect (``ValueError`` for bad values, ``TypeError`` for bad
types), so ``except ValueError`` keeps working.  Messages name the column,
row, path or parameter at fault and say what was expected, in the form
"Expected X. Received: Y" where that reads naturally.

The hierarchy::

    MmskError
    ├── InputError (ValueError)            bad data: a value, a file, a shape
    │   ├── DecodeError                    a file or bytes cell cannot be decoded
    │   └── ColumnMismatchError            columns differ from those seen in fit
    ├── InputTypeError (TypeError)         a cell or X of the wrong type
    ├── ParameterError (InvalidParameterError: ValueError, TypeError)
    │                                      a bad constructor / set_params argument
    ├── UnknownComponentError (ValueError) an encoder or fusion name not registered
    ├── ModelBuildError (ValueError)       the Keras model cannot be built or trained
    ├── PersistenceError (ValueError)      mmsk.save / mmsk.load / export failed
    │   ├── UnsafeFileError                a saved file asks for code, links or untrusted types
    │   └── ExportError                    a modality cannot be preprocessed in-graph
    ├── PluginError (ImportError)          a plugin fails to import, or names collide
    ├── PluginContractError (TypeError)    a component breaks the plugin contract
    └── BackendError (ImportError)         TensorFlow/Keras missing or unusable

``ParameterError`` is also scikit-learn's ``InvalidParameterError``, so code
that catches the latter (or ``ValueError``/``TypeError``) keeps working.  It is
created on first use, so ``import mmsk`` does not import scikit-learn.
``mmsk.exceptions.NotFittedError`` is scikit-learn's, re-exported.

Examples
--------
>>> from mmsk.exceptions import InputError, MmskError
>>> try:
...     raise InputError("column 'photo', row 3: file not found: 'a.png'")
... except ValueError as err:
...     print(type(err).__name__, isinstance(err, MmskError))
InputError True
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

__all__ = [
    "BackendError",
    "ColumnMismatchError",
    "DecodeError",
    "ExportError",
    "InputError",
    "InputTypeError",
    "MmskError",
    "ModelBuildError",
    "ParameterError",
    "PersistenceError",
    "PluginContractError",
    "PluginError",
    "UnknownComponentError",
    "UnsafeFileError",
]


class MmskError(Exception):
    """Base class of every error mmsk raises on purpose."""


class InputError(MmskError, ValueError):
    """Input data has a bad value: the message names the column, row and what was expected."""


class InputTypeError(MmskError, TypeError):
    """Input data has the wrong type: the message names the column, row and expected type."""


class DecodeError(InputError):
    """A file or bytes cell could not be decoded as the modality's kind."""


class ColumnMismatchError(InputError):
    """Columns given to ``transform``/``predict`` differ from those seen in ``fit``."""


class UnknownComponentError(MmskError, ValueError):
    """An encoder or fusion name is not registered; the message lists the known names."""


class ModelBuildError(MmskError, ValueError):
    """The Keras model could not be built or trained with the given settings and data."""


class PersistenceError(MmskError, ValueError):
    """:func:`mmsk.save` cannot store an object, or :func:`mmsk.load` cannot read a file
    (damaged, truncated, not an mmsk file, or written by a newer mmsk)."""


class UnsafeFileError(PersistenceError):
    """:func:`mmsk.load` refused a file because of what it asks for, not because it is
    damaged: a Python class outside the trusted set (review it with
    :func:`mmsk.get_untrusted_types`, then pass ``trusted=``), a function other than a
    NumPy ufunc, state that would replace a method or a dunder, a Keras construct that
    carries or imports code (Lambda, TFSMLayer, a function or class outside Keras'
    modelling packages and registered mmsk/plugin layers), or a member that is a link,
    a FIFO, a device, a duplicate or a path leading out of the save."""


class ExportError(PersistenceError):
    """:func:`mmsk.export` cannot write a serving artifact, e.g. a modality whose
    preprocessing cannot run inside the TensorFlow graph; the message names it."""


class PluginError(MmskError, ImportError):
    """A plugin failed to import, or several distributions declare the same name."""


class PluginContractError(MmskError, TypeError):
    """A component does not keep the encoder/fusion contract; the message says what is missing."""


class BackendError(MmskError, ImportError):
    """TensorFlow/Keras is missing or unusable."""


_PARAMETER_ERROR_DOC = """A constructor or ``set_params`` argument is invalid (e.g. ``epochs=0``).

    Also scikit-learn's ``InvalidParameterError`` (so a ``ValueError`` and a
    ``TypeError``); the message names the parameter and the values it takes.
    """

if TYPE_CHECKING:
    from sklearn.utils._param_validation import InvalidParameterError

    class ParameterError(MmskError, InvalidParameterError):
        __doc__ = _PARAMETER_ERROR_DOC


@functools.cache
def _parameter_error() -> type:
    """Define ParameterError on first use: its sklearn base would make `import mmsk` slow."""
    from sklearn.utils._param_validation import InvalidParameterError

    cls = type(
        "ParameterError",
        (MmskError, InvalidParameterError),
        {"__module__": __name__, "__doc__": _PARAMETER_ERROR_DOC},
    )
    globals()["ParameterError"] = cls  # later lookups (and pickle) find it directly
    return cls


def __getattr__(name: str) -> Any:
    if name == "ParameterError":
        return _parameter_error()
    # scikit-learn's NotFittedError, re-exported without importing sklearn at `import mmsk`.
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError

        return NotFittedError
    raise AttributeError(f"module 'mmsk.exceptions' has no attribute {name!r}")
