"""Search spaces: ``set_params`` names mapped to Keras Tuner hyperparameters.

A search space is a dict whose keys are ``set_params`` names and whose values
declare what to try: ``Int``, ``Float``, ``Choice``, ``Boolean``, ``Fixed``
(mmsk's light declarations, or Keras Tuner's own hyperparameter objects), a
list (shorthand for ``Choice``) or a single value (``Fixed``).  ``when=``
makes a setting conditional on others, e.g. ``num_heads`` only for attention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsk.exceptions import ParameterError

TUNER_PREFIX = "tuner/"  # Keras Tuner's own values (Hyperband's epochs and rounds)


@dataclass
class _Declaration:
    when: dict[str, Any] | None = field(default=None, kw_only=True)

    def register(self, hp: Any, name: str) -> None:
        raise NotImplementedError


@dataclass
class Int(_Declaration):
    """An integer setting in ``[min_value, max_value]``.

    Parameters
    ----------
    min_value, max_value : int
        Inclusive bounds.
    step : int, optional
        Spacing of the values tried (linear sampling) or their ratio (log).
    sampling : {"linear", "log", "reverse_log"}, default="linear"
    default : int, optional
    when : dict, optional
        Only active when every named setting has one of the given values,
        e.g. ``when={"fusion": "attention"}``.

    Examples
    --------
    >>> from mmsk.tuning import Int
    >>> Int(16, 128, step=16).max_value
    128
    """

    min_value: int
    max_value: int
    step: int | None = None
    sampling: str = "linear"
    default: int | None = None

    def register(self, hp: Any, name: str) -> None:
        hp.Int(name, self.min_value, self.max_value, step=self.step,
               sampling=self.sampling, default=self.default)  # fmt: skip


@dataclass
class Float(_Declaration):
    """A real setting in ``[min_value, max_value]``; ``sampling="log"`` for rates.

    Parameters
    ----------
    min_value, max_value : float
        Inclusive bounds.
    step : float, optional
        Spacing of the values tried.
    sampling : {"linear", "log", "reverse_log"}, default="linear"
    default : float, optional
    when : dict, optional
        Conditions, as for :class:`Int`.

    Examples
    --------
    >>> from mmsk.tuning import Float
    >>> Float(1e-4, 1e-2, sampling="log").sampling
    'log'
    """

    min_value: float
    max_value: float
    step: float | None = None
    sampling: str = "linear"
    default: float | None = None

    def register(self, hp: Any, name: str) -> None:
        hp.Float(name, self.min_value, self.max_value, step=self.step,
                 sampling=self.sampling, default=self.default)  # fmt: skip


@dataclass
class Choice(_Declaration):
    """One of ``values`` (any objects: names, numbers, None, components).

    Parameters
    ----------
    values : list
        What to try.  Values that Keras Tuner cannot hold (None, objects,
        mixed types) are tried all the same: the oracle sees their labels.
    ordered : bool, optional
        Whether the values are ordered (numbers are, by default).
    default : object, optional
    when : dict, optional
        Conditions, as for :class:`Int`.

    Examples
    --------
    >>> from mmsk.tuning import Choice
    >>> Choice(["concat", "attention"]).values
    ['concat', 'attention']
    """

    values: list[Any]
    ordered: bool | None = None
    default: Any = None

    def labels(self) -> list[Any]:
        """The values as Keras Tuner sees them: themselves if they are plain."""
        kinds = {type(v) for v in self.values}
        if len(kinds) == 1 and kinds <= {str, int, float, bool}:
            return list(self.values)
        return [_label(i, v) for i, v in enumerate(self.values)]

    def value_of(self, label: Any) -> Any:
        labels = self.labels()
        return self.values[labels.index(label)] if label in labels else label

    def register(self, hp: Any, name: str) -> None:
        labels = list(dict.fromkeys(self.labels()))  # a repeated value is tried once
        default = None if self.default is None else self.labels()[self.values.index(self.default)]
        hp.Choice(name, labels, ordered=self.ordered, default=default)


@dataclass
class Boolean(_Declaration):
    """True or False.

    Examples
    --------
    >>> from mmsk.tuning import Boolean
    >>> Boolean().default
    False
    """

    default: bool = False

    def register(self, hp: Any, name: str) -> None:
        hp.Boolean(name, default=self.default)


@dataclass
class Fixed(_Declaration):
    """A setting held at one value (it still shows in ``cv_results_``).

    Examples
    --------
    >>> from mmsk.tuning import Fixed
    >>> Fixed(5).value
    5
    """

    value: Any

    def register(self, hp: Any, name: str) -> None:
        Choice([self.value]).register(hp, name)


def _label(index: int, value: Any) -> str:
    text = getattr(value, "__name__", None) or repr(value)
    return f"{index}: {text[:60]}"


def _from_keras_tuner(value: Any) -> _Declaration | None:
    """Keras Tuner's hyperparameter objects, as declarations."""
    kind = type(value).__name__
    module = type(value).__module__
    if not module.startswith("keras_tuner") or kind not in {
        "Int", "Float", "Choice", "Boolean", "Fixed"
    }:  # fmt: skip
        return None
    config = value.get_config()
    when = {}
    for cond in config.pop("conditions", []) or []:
        cond_config = cond.get("config", cond) if isinstance(cond, dict) else cond.get_config()
        when[cond_config["name"]] = list(cond_config["values"])
    config.pop("name", None)
    declared: _Declaration = {
        "Int": Int, "Float": Float, "Choice": Choice, "Boolean": Boolean, "Fixed": Fixed
    }[kind](**config)  # fmt: skip
    declared.when = when or None
    return declared


class SearchSpace:
    """A parsed search space: declarations by ``set_params`` name.

    Parameters
    ----------
    space : dict
        ``{set_params name: declaration, list (Choice) or value (Fixed)}``.

    Examples
    --------
    >>> from mmsk.tuning import Int
    >>> from mmsk.tuning._space import SearchSpace
    >>> space = SearchSpace({"fusion": ["concat", "attention"],
    ...                      "fusion__num_heads": Int(1, 4, when={"fusion": "attention"})})
    >>> space.names
    ['fusion', 'fusion__num_heads']
    """

    def __init__(self, space: dict[str, Any]) -> None:
        if not isinstance(space, dict) or not space:
            raise ParameterError(
                "Expected search_space to be a non-empty dict of set_params names to "
                f"declarations (a list means Choice). Received: search_space={space!r}"
            )
        self.declarations: dict[str, _Declaration] = {}
        for name, value in space.items():
            if not isinstance(name, str) or not name or name.startswith(TUNER_PREFIX):
                raise ParameterError(
                    f"search_space key {name!r}: expected a set_params name such as "
                    "'learning_rate' or 'clf__fusion'"
                )
            self.declarations[name] = _declaration(name, value)
        self.names = _ordered(self.declarations)

    def check(self, valid: set[str]) -> None:
        """Raise ParameterError for names that ``set_params`` would not accept."""
        for name in self.names:
            if name not in valid and not nested_ok(name, valid):
                close = sorted(k for k in valid if "__" not in k)[:20]
                raise ParameterError(
                    f"search_space key {name!r} is not a parameter of the estimator. "
                    f"Expected one of its set_params names, e.g. {close}"
                )

    def hyperparameters(self) -> Any:
        """A ``keras_tuner.HyperParameters`` holding the declarations."""
        from mmsk import _backend

        hp = _backend.keras_tuner().HyperParameters()
        self.register(hp)
        return hp

    def register(self, hp: Any) -> None:
        """Declare every setting on ``hp`` (a ``keras_tuner.HyperParameters``)."""
        for name in self.names:
            declared = self.declarations[name]
            scopes = []
            for parent, values in (declared.when or {}).items():
                values = values if isinstance(values, (list, tuple)) else [values]
                parent_decl = self.declarations[parent]
                if isinstance(parent_decl, Choice):
                    labels = parent_decl.labels()
                    values = [labels[parent_decl.values.index(v)] for v in values]
                scopes.append(hp.conditional_scope(parent, list(values)))
            _enter_and_register(hp, scopes, declared, name)

    def params(self, hp: Any) -> dict[str, Any]:
        """The ``set_params`` settings of a trial's active hyperparameters."""
        out = {}
        for name in self.names:
            if name in hp.values and hp.is_active(name):
                declared = self.declarations[name]
                value = hp.values[name]
                if isinstance(declared, Choice):
                    value = declared.value_of(value)
                elif isinstance(declared, Fixed):
                    value = declared.value  # the object itself, not its label
                out[name] = value
        return out


def _enter_and_register(hp: Any, scopes: list, declared: _Declaration, name: str) -> None:
    if not scopes:
        try:
            declared.register(hp, name)
        except (ValueError, TypeError) as exc:
            raise ParameterError(f"search_space[{name!r}]: {exc}") from exc
        return
    with scopes[0]:
        _enter_and_register(hp, scopes[1:], declared, name)


def has_declarations(space: Any) -> bool:
    """Whether ``space`` (a dict or a list of dicts) holds an mmsk or Keras Tuner
    declaration, which only the oracles understand (not a ParameterGrid)."""
    grids = space if isinstance(space, list) else [space]
    return any(
        isinstance(v, _Declaration) or _from_keras_tuner(v) is not None
        for grid in grids
        if isinstance(grid, dict)
        for v in grid.values()
    )


def _declaration(name: str, value: Any) -> _Declaration:
    if isinstance(value, _Declaration):
        declared = value
    elif (converted := _from_keras_tuner(value)) is not None:
        declared = converted
    elif isinstance(value, (list, tuple, range, np.ndarray)):
        declared = Choice(value.tolist() if isinstance(value, np.ndarray) else list(value))
    elif hasattr(value, "rvs"):
        declared = _from_scipy(name, value)
    elif isinstance(value, (set, dict)):
        raise ParameterError(
            f"search_space[{name!r}]: expected a list (Choice), Int, Float, Choice, "
            f"Boolean or a single value. Received: {type(value).__name__}"
        )
    else:
        declared = Fixed(value)
    if isinstance(declared, Choice) and not declared.values:
        raise ParameterError(f"search_space[{name!r}]: Expected at least one value. Received: []")
    if isinstance(declared, (Int, Float)) and declared.min_value > declared.max_value:
        raise ParameterError(
            f"search_space[{name!r}]: Expected min_value <= max_value. Received: "
            f"min_value={declared.min_value}, max_value={declared.max_value}"
        )
    return declared


def _from_scipy(name: str, distribution: Any) -> _Declaration:
    """A scipy.stats ``uniform``, ``loguniform`` or ``randint`` as Float or Int.

    The oracle samples the same range itself; other distributions (``expon``,
    ``norm``...) have no Keras Tuner counterpart and are refused.
    """
    kind = getattr(getattr(distribution, "dist", None), "name", type(distribution).__name__)
    low, high = (float(bound) for bound in distribution.support())
    if kind == "uniform":
        return Float(low, high)
    if kind in ("loguniform", "reciprocal"):
        return Float(low, high, sampling="log")
    if kind == "randint":
        return Int(int(low), int(high))
    raise ParameterError(
        f"search_space[{name!r}]: a scipy.stats {kind} distribution cannot be sampled by a "
        "Keras Tuner oracle (uniform, loguniform and randint can). Use "
        "Float(low, high, sampling='log'|'linear') or Int(low, high)."
    )


def _ordered(declarations: dict[str, _Declaration]) -> list[str]:
    """Names with every condition's parent declared before it."""
    done: list[str] = []
    pending = list(declarations)
    while pending:
        ready = [n for n in pending if all(p in done for p in (declarations[n].when or {}))]
        if not ready:
            name = pending[0]
            missing = [p for p in declarations[name].when or {} if p not in declarations]
            raise ParameterError(
                f"search_space[{name!r}]: its condition names "
                f"{missing or list(declarations[name].when or {})}, which "
                + ("is not in the search space" if missing else "forms a cycle")
            )
        done += ready
        pending = [n for n in pending if n not in ready]
    return done


def example(declared: _Declaration) -> Any:
    """One value ``declared`` may take (to check its name with ``set_params``)."""
    if isinstance(declared, Choice):
        return declared.values[0]
    if isinstance(declared, Fixed):
        return declared.value
    if isinstance(declared, (Int, Float)):
        return declared.min_value
    return False


def nested_ok(name: str, valid: set[str]) -> bool:
    """``encoders__text__units`` and ``fusion__num_heads`` exist only once set."""
    return any(
        name.startswith(f"{key}__")
        for key in valid
        if key.split("__")[-1] in {"encoders", "fusion"}
    )
