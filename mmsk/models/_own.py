"""Your own Keras model in an mmsk estimator: ``model=`` and the routed settings.

``model=`` is a build function ``(inputs, specs, n_outputs, **kwargs) -> keras.Model``
or a ``keras.Model`` (cloned at each fit).  :func:`build_own` wraps what it gives
into a model whose inputs are the modalities plus the presence masks and whose
output is the task's prediction, by one rule (:func:`attach_head`): an output
``n_outputs`` wide is the prediction (a linear one gets the task's activation);
any other width is an embedding, and mmsk adds the head.

Settings route as in scikeras: ``model__<name>`` to the build function,
``optimizer__<name>`` to the optimizer, ``compile__<name>`` to
``Model.compile``, ``fit__<name>`` to ``Model.fit``.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sklearn.base import is_classifier

from mmsk import _backend
from mmsk._batch import PRESENT, ModalitySpec
from mmsk.exceptions import MmskError, ModelBuildError, ParameterError

ROUTES = ("model__", "optimizer__", "compile__", "fit__")
BUILD_ARGS = ("inputs", "specs", "n_outputs")
FUSED = "fused"  # the layer whose output ``transform`` returns (as in mmsk's own network)
# Arguments of Model.fit / Model.compile the estimator sets itself -> what to use instead.
FIT_OWNED = {
    "x": "fit(X, y)", "y": "fit(X, y)", "batch_size": "batch_size=", "epochs": "epochs=",
    "verbose": "verbose=", "callbacks": "callbacks= (or fit(..., callbacks=[...]))",
    "validation_split": "validation_split=", "validation_data": "validation_split=",
    "sample_weight": "fit(..., sample_weight=...)", "class_weight": "class_weight=",
    "initial_epoch": "warm_start=True",
}  # fmt: skip
COMPILE_OWNED = {"optimizer": "optimizer= and optimizer__*", "loss": "loss=",
                 "metrics": "metrics="}  # fmt: skip
OPTIMIZER_OWNED = {"learning_rate": "learning_rate="}
# Settings of mmsk's own network; with ``model=`` given they would have no effect.
NETWORK_PARAMS = ("encoders", "fusion", "head_units", "head_layers", "dropout",
                  "modality_dropout", "word_dropout", "wide")  # fmt: skip


def is_keras_model(obj: Any) -> bool:
    """True for a ``keras.Model`` instance (without importing Keras)."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


def _name(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


# ---- routing -----------------------------------------------------------------
def check_route_names(kwargs: dict[str, Any], owner: str) -> None:
    """Refuse constructor keywords that are neither parameters nor routed settings."""
    bad = [k for k in kwargs if not k.startswith(ROUTES) or k in ROUTES]
    if bad:
        raise ParameterError(
            f"{owner} got unexpected keyword arguments {bad}. Expected its parameters or "
            f"routed settings {', '.join(r + '<name>' for r in ROUTES)}"
        )


def routed(est: Any, prefix: str) -> dict[str, Any]:
    """The settings given as ``<prefix><name>``, by name."""
    return {k[len(prefix) :]: v for k, v in vars(est).items() if k.startswith(prefix)}


def build_keywords(fn: Any) -> tuple[dict[str, Any], bool, bool]:
    """A build function's settable keywords -> default (``inspect.Parameter.empty``
    when required), whether it takes ``**kwargs``, and whether it takes ``hp``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"model={fn!r}: its signature cannot be read ({exc}); expected a function "
            "(inputs, specs, n_outputs, **kwargs) -> keras.Model"
        ) from exc
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    if sum(p.kind in positional for p in params) < len(BUILD_ARGS) and not varargs:
        raise ParameterError(
            f"Expected model= to be a function (inputs, specs, n_outputs, **kwargs) -> "
            f"keras.Model, or a keras.Model. Received: {_name(fn)} with parameters "
            f"{[p.name for p in params]}"
        )
    rest = params[len(BUILD_ARGS) :] if not varargs else []
    keywords = {
        p.name: p.default
        for p in rest
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.name != "hp"
    }
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    return keywords, var_kw, any(p.name == "hp" for p in rest)


def model_defaults(model: Any) -> dict[str, Any]:
    """``model__<name>``: default of each keyword the build function takes with one."""
    if model is None or is_keras_model(model) or not callable(model):
        return {}
    keywords, _, _ = build_keywords(model)
    return {f"model__{k}": v for k, v in keywords.items() if v is not inspect.Parameter.empty}


def check_model_kwargs(model: Any, kwargs: dict[str, Any], complete: bool = True) -> None:
    """Raise ParameterError for ``model__*`` settings the model does not take (and, when
    ``complete``, for keywords without a default that are not set)."""
    if not kwargs:
        if complete and model is not None and not is_keras_model(model) and callable(model):
            keywords, _, _ = build_keywords(model)
            required = [k for k, v in keywords.items() if v is inspect.Parameter.empty]
            if required:
                raise ParameterError(
                    f"the build function {_name(model)} needs "
                    f"{', '.join('model__' + k for k in required)}; set them"
                )
        return
    given = ", ".join(f"model__{k}" for k in kwargs)
    if model is None:
        raise ParameterError(
            f"{given} set, but model is None; model__* settings go to your own build "
            "function (model=...)"
        )
    if is_keras_model(model) or not callable(model):
        raise ParameterError(
            f"{given} set, but model is a {type(model).__name__}, which takes no settings; "
            "pass a build function (inputs, specs, n_outputs, **kwargs) to make them settable"
        )
    keywords, var_kw, _ = build_keywords(model)
    unknown = [k for k in kwargs if k not in keywords]
    if unknown and not var_kw:
        accepted = [f"model__{k}" for k in keywords] or ["none"]
        raise ParameterError(
            f"the build function {_name(model)} takes no keyword argument "
            f"{', '.join(map(repr, unknown))} (set as {', '.join('model__' + k for k in unknown)}"
            f"). Accepted: {', '.join(accepted)}"
        )
    missing = [k for k, v in keywords.items() if v is inspect.Parameter.empty and k not in kwargs]
    if complete and missing:
        raise ParameterError(
            f"the build function {_name(model)} needs "
            f"{', '.join('model__' + k for k in missing)}; set them"
        )


class RoutedParamsMixin:
    """``get_params``/``set_params`` that carry the routed ``model__*``, ``optimizer__*``,
    ``compile__*`` and ``fit__*`` settings (stored as attributes, as scikeras does)."""

    model: Any
    _routed_prefixes = ROUTES  # mmsk.load accepts these parameters

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)  # type: ignore[misc]
        if deep:
            try:
                params.update(model_defaults(params.get("model")))
            except ParameterError:
                pass  # a model that is not a build function: fit says so
        params.update({k: v for k, v in vars(self).items() if k.startswith(ROUTES)})
        return params

    def set_params(self, **params: Any) -> Any:
        routes = {k: v for k, v in params.items() if k.startswith(ROUTES)}
        check_route_names(routes, type(self).__name__)
        super().set_params(**{k: v for k, v in params.items() if k not in routes})  # type: ignore[misc]
        new = {k[len("model__") :]: v for k, v in routes.items() if k.startswith("model__")}
        if new:  # checked before anything is set
            check_model_kwargs(self.model, {**routed(self, "model__"), **new}, complete=False)
        for key, value in routes.items():
            setattr(self, key, value)
        return self


def check_own(est: Any) -> None:
    """Settings that clash with ``model=`` (or need it): a ParameterError naming them."""
    check_model_kwargs(est.model, routed(est, "model__"))
    if est.model is None:
        return
    if not is_keras_model(est.model) and not callable(est.model):
        raise ParameterError(
            "Expected model= to be a function (inputs, specs, n_outputs, **kwargs) -> "
            f"keras.Model, a keras.Model, or None. Received: {type(est.model).__name__}"
        )
    defaults = inspect.signature(type(est).__init__).parameters
    changed = [p for p in NETWORK_PARAMS
               if p in defaults and getattr(est, p) != defaults[p].default]  # fmt: skip
    if changed:
        raise ParameterError(
            f"{', '.join(changed)} configure mmsk's own network and have no effect with "
            "model= given; leave them at their defaults (settings of your model go to it as "
            "model__<name>)"
        )


# ---- compile and fit -----------------------------------------------------------
def _accepted(fn: Any, skip: tuple[str, ...] = ("self", "kwargs")) -> list[str]:
    return [n for n in inspect.signature(fn).parameters if n not in skip]


def make_optimizer(est: Any) -> Any:
    """``optimizer`` (a name) with ``learning_rate`` and the ``optimizer__*`` settings."""
    keras = _backend.keras()
    extra = routed(est, "optimizer__")
    cls = type(keras.optimizers.get(est.optimizer))
    accepted = _accepted(cls.__init__)
    for key in extra:
        if key in OPTIMIZER_OWNED:
            raise ParameterError(
                f"optimizer__{key}: set {OPTIMIZER_OWNED[key]} on the estimator instead"
            )
        if key not in accepted:
            raise ParameterError(
                f"optimizer__{key}: the {est.optimizer!r} optimizer ({cls.__name__}) takes no "
                f"{key!r}. Accepted: "
                f"{', '.join('optimizer__' + a for a in accepted if a not in OPTIMIZER_OWNED)}"
            )
    try:
        return cls(learning_rate=est.learning_rate, **extra)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"optimizer__* settings {extra}: {exc}") from exc


def _checked(est: Any, prefix: str, fn: Any, owned: dict[str, str]) -> dict[str, Any]:
    values = routed(est, prefix)
    accepted = [a for a in _accepted(fn) if a not in owned]
    for key in values:
        if key in owned:
            raise ParameterError(f"{prefix}{key}: set {owned[key]} on the estimator instead")
        if key not in accepted:
            raise ParameterError(
                f"{prefix}{key}: keras.Model.{fn.__name__} takes no {key!r}. Accepted: "
                f"{', '.join(prefix + a for a in accepted)}"
            )
    return values


def compile_model(model: Any, est: Any, task_loss: str) -> None:
    """Compile with the estimator's optimizer, ``loss`` (default: the task's) and
    ``metrics`` (default: accuracy for a classifier, none for a regressor), plus the
    ``compile__*`` settings."""
    keras = _backend.keras()
    extra = _checked(est, "compile__", keras.Model.compile, COMPILE_OWNED)
    loss = getattr(est, "loss", None)
    metrics = getattr(est, "metrics", None)
    if metrics is None and is_classifier(est):
        metrics = ["accuracy"]  # Keras picks the accuracy that suits the loss
    try:
        if isinstance(loss, str):
            keras.losses.get(loss)
        for metric in metrics or []:
            if isinstance(metric, str) and metric not in ("accuracy", "acc", "crossentropy"):
                keras.metrics.get(metric)
    except ValueError as exc:
        raise ParameterError(f"loss={loss!r}, metrics={metrics!r}: {exc}") from exc
    model.compile(optimizer=make_optimizer(est), loss=loss if loss is not None else task_loss,
                  metrics=list(metrics) if metrics else None, **extra)  # fmt: skip


def fit_settings(est: Any) -> dict[str, Any]:
    """The ``fit__*`` settings, checked against ``keras.Model.fit``."""
    return _checked(est, "fit__", _backend.keras().Model.fit, FIT_OWNED)


# ---- build -------------------------------------------------------------------
# A build function that takes ``hp`` gets the trial's (set by the tuner's hypermodel).
HYPERPARAMETERS: ContextVar[Any] = ContextVar("mmsk_hyperparameters", default=None)


@contextmanager
def hyperparameters(hp: Any) -> Iterator[None]:
    """Within this block, a build function that takes ``hp`` receives ``hp``."""
    token = HYPERPARAMETERS.set(hp)
    try:
        yield
    finally:
        HYPERPARAMETERS.reset(token)


def _hp(takes_hp: bool, hp: Any) -> dict[str, Any]:
    if not takes_hp:
        return {}
    if hp is None:  # outside a tuner: every hp.Int(...) gives its default
        try:
            hp = _backend.keras_tuner().HyperParameters()
        except MmskError:
            hp = None
    return {"hp": hp}


def _clone_layer(layer: Any) -> Any:
    """A new layer like ``layer``; a ``Lambda`` (no weights, code) is shared as it is."""
    keras = _backend.keras()
    if isinstance(layer, keras.layers.Lambda):
        return layer
    return layer.__class__.from_config(layer.get_config())


def _user_model(model: Any, inputs: dict[str, Any], specs: dict[str, ModalitySpec],
                n_outputs: int, kwargs: dict[str, Any], hp: Any) -> Any:  # fmt: skip
    keras = _backend.keras()
    if is_keras_model(model):
        try:
            return keras.models.clone_model(model, clone_function=_clone_layer)
        except Exception as exc:
            raise ModelBuildError(
                f"the keras.Model {model.name!r} given as model= cannot be cloned "
                f"(keras.models.clone_model: {type(exc).__name__}: {exc}); a subclassed model "
                "needs get_config/from_config"
            ) from exc
    _, _, takes_hp = build_keywords(model)
    try:
        result = model(dict(inputs), dict(specs), n_outputs, **kwargs, **_hp(takes_hp, hp))
    except MmskError:
        raise
    except Exception as exc:
        raise ModelBuildError(
            f"the build function {_name(model)} raised {type(exc).__name__}: {exc}"
        ) from exc
    if is_keras_model(result):
        return result
    if keras.tree.flatten(result) and all(
        isinstance(t, keras.KerasTensor) for t in keras.tree.flatten(result)
    ):  # the output tensor(s) of a network built on ``inputs``
        return keras.Model(inputs, result, name="own")
    raise ModelBuildError(
        f"Expected the build function {_name(model)} to return a keras.Model (or its output "
        f"tensor). Received: {type(result).__name__}"
    )


def _match_inputs(user: Any, inputs: dict[str, Any], specs: dict[str, ModalitySpec]) -> Any:
    """What to call the user's model on: its inputs, matched to mmsk's by name."""
    keras = _backend.keras()
    structure = None
    for attr in ("input", "inputs"):  # a Sequential model has only ``inputs``
        try:
            structure = getattr(user, attr)
            break
        except (AttributeError, ValueError):
            continue
    if structure is None or structure == []:  # a subclassed model: it gets the whole dict
        return dict(inputs)
    if isinstance(structure, (list, tuple)) and len(structure) == 1:
        structure = structure[0]  # a Sequential model's single input
    tensors = keras.tree.flatten(structure)
    names = [t.name for t in tensors]
    unknown = [n for n in names if n not in inputs]
    missing = [n for n in specs if n not in names]
    if unknown or missing:
        columns = {n: list(s.columns) for n, s in specs.items()}
        raise ModelBuildError(
            f"the model's input names {names} do not match the modalities {list(specs)} "
            f"(made from the columns {columns}). Expected one keras.Input named like each "
            f"modality, and optionally {PRESENT!r}, the (N, {len(specs)}) presence masks"
            + (f"; not modalities: {unknown}" if unknown else "")
            + (f"; modalities without an input: {missing}" if missing else "")
        )
    for tensor in tensors:
        expected = (len(specs),) if tensor.name == PRESENT else specs[tensor.name].shape
        got = tuple(tensor.shape[1:])
        fits = len(got) == len(expected) and all(
            g in (None, e) for g, e in zip(got, expected, strict=True)
        )
        if not fits:
            raise ModelBuildError(
                f"the model's input {tensor.name!r} takes rows of shape {got}; the "
                f"modality's rows have shape {expected} after preprocessing"
            )
    return keras.tree.map_structure(lambda t: inputs[t.name], structure)


def _ends_linear(user: Any) -> bool:
    """True when every output of ``user`` comes from a layer with a linear activation."""
    try:
        outputs = user.outputs
    except (AttributeError, ValueError):
        return False
    if not outputs:
        return False
    for tensor in outputs:
        history = getattr(tensor, "_keras_history", None)
        activation = getattr(getattr(history, "operation", None), "activation", None)
        if getattr(activation, "__name__", None) != "linear":
            return False
    return True


def attach_head(inputs: dict[str, Any], out: Any, user: Any, n_outputs: int,
                activation: str) -> Any:  # fmt: skip
    """The final model, by one rule on the width of the user's output.

    Several outputs are concatenated first.  An output ``n_outputs`` wide is the
    prediction: kept as it is, except that a linear one (logits) gets the task's
    activation.  Any other width is an embedding: mmsk adds ``Dense(n_outputs)``
    with the task's activation.  The layer ``fused`` holds the output before the head.
    """
    keras = _backend.keras()
    L = keras.layers
    flat = [t if len(t.shape) > 1 else L.Reshape((1,))(t) for t in keras.tree.flatten(out)]
    flat = [t if len(t.shape) == 2 else L.Flatten()(t) for t in flat]
    x = flat[0] if len(flat) == 1 else L.Concatenate(name="own_outputs")(flat)
    embedding = L.Identity(name=FUSED)(x)
    if x.shape[-1] != n_outputs:
        output = L.Dense(n_outputs, activation=activation, name="prediction")(embedding)
    elif activation != "linear" and _ends_linear(user):
        output = L.Activation(activation, name="prediction")(embedding)
    else:
        output = embedding
    return keras.Model(inputs=inputs, outputs=output, name="mmsk_own_model")


def _words_only(inputs: dict[str, Any], specs: dict[str, ModalitySpec]) -> tuple[dict, dict, dict]:
    """What a user's model is built on and fed: a text's word ids, without the character
    n-gram ids mmsk's preprocessing appends for its own wide path (``spec.words()``)."""
    keras = _backend.keras()
    from mmsk.layers import ColumnSlice

    own, feed, words = dict(inputs), dict(inputs), {}
    for name, spec in specs.items():
        words[name] = spec.words()
        if spec.char_columns:
            own[name] = keras.Input(shape=words[name].shape, dtype=spec.dtype, name=name)
            feed[name] = ColumnSlice(0, words[name].shape[0], name=f"{name}_words")(inputs[name])
    return own, feed, words


def build_own(model: Any, inputs: dict[str, Any], specs: dict[str, ModalitySpec],
              n_outputs: int, activation: str, kwargs: dict[str, Any]) -> Any:  # fmt: skip
    """The uncompiled Keras model of ``model=`` (call under mmsk's seeding and strategy).

    Parameters
    ----------
    model : callable or keras.Model
        The user's build function, or a model to clone.
    inputs : dict of str to KerasTensor
        One per modality and ``mmsk_present``, as mmsk's preprocessing feeds them.
        A text's character n-gram ids are left out of what ``model`` sees.
    specs : dict of str to ModalitySpec
        The modalities, in input order.
    n_outputs : int
        Width of the prediction.
    activation : str
        The task's activation of the prediction.
    kwargs : dict
        The ``model__*`` settings, without the prefix.

    Returns
    -------
    keras.Model
        Inputs: one per modality and ``mmsk_present``; output: the prediction.
    """
    own, feed, specs = _words_only(inputs, specs)
    user = _user_model(model, own, specs, n_outputs, kwargs, HYPERPARAMETERS.get())
    args = _match_inputs(user, feed, specs)
    try:
        out = user(args)
    except MmskError:
        raise
    except Exception as exc:
        shapes = {n: (s.kind, s.shape, s.dtype) for n, s in specs.items()}
        raise ModelBuildError(
            f"the model {user.name!r} could not be called on the modalities {shapes}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    try:
        return attach_head(inputs, out, user, n_outputs, activation)
    except ValueError as exc:  # e.g. a layer of the user's named "fused" or "prediction"
        raise ModelBuildError(
            f"the model could not be assembled around {user.name!r}: {exc}. mmsk names its "
            f"own layers {FUSED!r} and 'prediction'"
        ) from exc


# ---- saving --------------------------------------------------------------------
REGISTER_HOW = (
    "Register the layer instead: write it as a subclass of keras.layers.Layer (with "
    "get_config if it takes arguments), decorate the class with "
    "@keras.saving.register_keras_serializable(package='yourpackage'), build the model with "
    "it, and load with mmsk.load(path, trusted=['yourmodule:YourLayer']) "
    "(mmsk.get_untrusted_types lists the names)"
)


def _layers(model: Any) -> list[Any]:
    out, stack = [], [model]
    while stack:
        layer = stack.pop()
        out.append(layer)
        stack.extend(getattr(layer, "layers", []) or [])
    return out


def check_savable(model: Any, where: str) -> None:
    """Refuse, before writing, a model that ``mmsk.load`` (safe mode) could not read back.

    A ``Lambda`` layer stores Python code, and a layer class outside Keras that is not
    registered with ``keras.saving.register_keras_serializable`` cannot be found again.
    """
    from mmsk.exceptions import UnsafeFileError

    keras = _backend.keras()
    for layer in _layers(model):
        cls = type(layer)
        if isinstance(layer, keras.layers.Lambda):
            raise UnsafeFileError(
                f"{where}: the model holds the Lambda layer {layer.name!r}, which stores "
                "Python code; mmsk.load runs no code from a file (Keras' safe mode) and would "
                f"refuse it. {REGISTER_HOW}"
            )
        module = cls.__module__
        if module == "keras" or module.startswith("keras."):
            continue
        name = keras.saving.get_registered_name(cls)
        if keras.saving.get_registered_object(name) is not cls:
            raise UnsafeFileError(
                f"{where}: the model holds the layer {layer.name!r} of class "
                f"{module}.{cls.__qualname__}, which is not registered with Keras, so no "
                f"load could find it again. {REGISTER_HOW}"
            )
