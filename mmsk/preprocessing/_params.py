"""Parameter errors as :class:`~mmsk.exceptions.ParameterError`, with a hint for typos."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from sklearn.utils._param_validation import InvalidParameterError

from mmsk import exceptions
from mmsk.exceptions import MmskError


class ParameterError(exceptions.ParameterError, InvalidParameterError):
    """:class:`mmsk.exceptions.ParameterError` that is also scikit-learn's
    ``InvalidParameterError``, for code that catches the latter."""


def check_param_names(obj: Any, names: Iterable[str], extra: Iterable[str] = ()) -> None:
    """Raise a :class:`ParameterError` for a ``set_params`` key ``obj`` does not have.

    Only the part before the first ``__`` is checked; nested objects check their own.

    Examples
    --------
    >>> from mmsk.preprocessing import ImagePreprocessor
    >>> try:
    ...     check_param_names(ImagePreprocessor(), ["sise"])
    ... except ValueError as err:
    ...     print(str(err)[:70])
    Invalid parameter 'sise' for ImagePreprocessor (did you mean 'size'?).
    """
    valid = sorted({*obj.get_params(deep=False), *extra})
    for key in names:
        head = key.split("__", 1)[0]
        if head not in valid:
            close = difflib.get_close_matches(head, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParameterError(
                f"Invalid parameter {head!r} for {type(obj).__name__}{hint}. "
                f"Expected one of {valid}. Received: set_params({key}=...)"
            )


class ParamsMixin:
    """``_validate_params`` and ``set_params`` that raise :class:`ParameterError`.

    scikit-learn raises its own ``InvalidParameterError``/``ValueError``; mmsk's
    error is a ``ValueError`` and a ``TypeError`` as well, so callers' handlers
    keep working.
    """

    def _validate_params(self) -> None:
        try:
            super()._validate_params()  # type: ignore[misc]
        except InvalidParameterError as exc:
            raise ParameterError(str(exc)) from exc

    def set_params(self, **params: Any) -> Any:
        check_param_names(self, params)
        try:
            return super().set_params(**params)  # type: ignore[misc]
        except MmskError:
            raise
        except ValueError as exc:  # a nested object's unknown name
            raise ParameterError(str(exc)) from exc
