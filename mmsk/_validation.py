"""Parameter checks shared by every mmsk scikit-learn object, raising ParameterError.

scikit-learn checks ``_parameter_constraints`` in ``_validate_params`` (which
``@_fit_context`` calls at the start of ``fit``) and raises its own
``InvalidParameterError``; :class:`ParamValidation` turns that into
:class:`mmsk.exceptions.ParameterError` (which is also an
``InvalidParameterError``), keeping scikit-learn's message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from sklearn.utils._param_validation import InvalidParameterError

from mmsk._docs import DocLinkMixin
from mmsk.exceptions import MmskError, ParameterError


def check_param_names(obj: Any, names: Iterable[str], extra: Iterable[str] = ()) -> None:
    """Raise a :class:`~mmsk.exceptions.ParameterError` for a ``set_params`` key ``obj`` lacks.

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


class ParamValidation(DocLinkMixin):
    """``_validate_params`` raising :class:`~mmsk.exceptions.ParameterError`.

    Put it before ``BaseEstimator`` in the bases.  Every mmsk scikit-learn object
    has it, so it also carries the diagram's "?" link (:class:`DocLinkMixin`).
    """

    def _validate_params(self) -> None:
        try:
            super()._validate_params()  # type: ignore[misc]
        except ParameterError:
            raise
        except InvalidParameterError as exc:
            raise ParameterError(str(exc)) from exc


class ParamsMixin(ParamValidation):
    """:class:`ParamValidation`, and ``set_params`` that names an unknown key with a hint."""

    def set_params(self, **params: Any) -> Any:
        check_param_names(self, params)
        try:
            return super().set_params(**params)  # type: ignore[misc]
        except MmskError:
            raise
        except ValueError as exc:  # a nested object's unknown name
            raise ParameterError(str(exc)) from exc
