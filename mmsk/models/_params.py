"""Nested settings of encoders and the fusion: ``encoders__text__units``, ``fusion__num_heads``."""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator, clone

from mmsk._batch import KINDS, ModalitySpec
from mmsk.components import Encoder, Fusion
from mmsk.exceptions import ModelBuildError, PluginContractError, UnknownComponentError
from mmsk.plugins import load

DEFAULT_ENCODERS = {
    "image": "cnn",
    "text": "auto",
    "audio": "audio_cnn",
    "numeric": "mlp",
    "categorical": "mlp",
}


LONG_TEXT = 256  # tokens per row from which the automatic text encoder is a sequence model
AUTO_TEXT = {"short": "bag", "long": "transformer"}


def auto_encoder(spec: ModalitySpec) -> str:
    """The registered name of the encoder ``"auto"`` picks for a text modality.

    Texts are measured by their sequence length (the 95th percentile of
    the training texts' token counts, chosen by
    :class:`~mmsk.preprocessing.TextVectorizer`): short texts such as names,
    titles and descriptions get a bag of word n-grams (``"bag"``), long
    texts (over ``LONG_TEXT`` tokens) a Transformer over the tokens.
    """
    words = spec.words().shape  # character n-grams (the wide path's) do not count
    long = bool(words) and words[0] > LONG_TEXT
    return AUTO_TEXT["long" if long else "short"]


def make_component(group: str, value: Any, base: type) -> Any:
    """Instantiate a component from a registered name, or clone a given object."""
    if isinstance(value, str):
        factory = load(group, value)
        obj = factory()
    elif isinstance(value, type):
        obj = value()
    else:
        obj = clone(value)
    if not isinstance(obj, base):
        raise PluginContractError(
            f"Expected a {group} to be an instance of mmsk.components.{base.__name__} (or a "
            f"registered name). Received: {value!r}, which makes a {type(obj).__name__}"
        )
    return obj


def resolve_encoders(encoders: dict[str, Any] | None, specs: dict[str, ModalitySpec]) -> dict:
    """Pick one encoder per modality: by modality name, else by kind, else the default."""
    given = dict(encoders or {})
    unknown = [k for k in given if k not in specs and k not in KINDS]
    if unknown:
        raise UnknownComponentError(
            f"encoders names {unknown}, which are neither modalities {list(specs)} "
            f"nor kinds {list(KINDS)}"
        )
    out = {}
    for name, spec in specs.items():
        value = given.get(name, given.get(spec.kind, DEFAULT_ENCODERS[spec.kind]))
        if isinstance(value, str) and value == "auto" and spec.kind == "text":
            value = auto_encoder(spec)
        encoder = make_component("encoder", value, Encoder)
        if encoder.kinds and spec.kind not in encoder.kinds:
            raise ModelBuildError(
                f"encoder {type(encoder).__name__} accepts {list(encoder.kinds)} but modality "
                f"{name!r} is {spec.kind}; choose an encoder for {spec.kind} in `encoders`"
            )
        out[name] = encoder
    return out


class NestedComponentsMixin(BaseEstimator):
    """get_params/set_params that reach into ``encoders`` (a dict) and a named ``fusion``.

    ``set_params(encoders__text__units=16)`` works even when ``encoders``
    does not name ``text`` yet (the default encoder of that kind is created),
    and ``set_params(fusion__num_heads=2)`` works when ``fusion`` is a name.
    """

    encoders: dict[str, Any] | None
    fusion: Any

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        if deep:
            encoders = self.encoders if isinstance(self.encoders, dict) else {}
            for key, comp in encoders.items():
                params[f"encoders__{key}"] = comp
                if hasattr(comp, "get_params"):
                    for sub, value in comp.get_params(deep=True).items():
                        params[f"encoders__{key}__{sub}"] = value
        return params

    def set_params(self, **params: Any) -> Any:
        simple = {k: v for k, v in params.items() if "__" not in k}
        nested = {k: v for k, v in params.items() if "__" in k}
        super().set_params(**simple)
        encoders = dict(self.encoders) if isinstance(self.encoders, dict) else {}
        others, touched = {}, False
        for key, value in nested.items():
            head, _, rest = key.partition("__")
            if head == "encoders":
                touched = True
                name, _, sub = rest.partition("__")
                if not sub:
                    encoders[name] = value
                    continue
                comp = encoders.get(name, DEFAULT_ENCODERS.get(name))
                if comp == "auto":  # settings of the automatic choice go to the short-text one
                    comp = AUTO_TEXT["short"]
                if comp is None:
                    raise UnknownComponentError(
                        f"set_params({key}=...): encoders has no {name!r}; set "
                        f"encoders__{name} first or use a kind in {list(KINDS)}"
                    )
                if isinstance(comp, (str, type)):
                    comp = make_component("encoder", comp, Encoder)
                encoders[name] = comp.set_params(**{sub: value})
            elif head == "fusion" and isinstance(self.fusion, (str, type)):
                self.fusion = make_component("fusion", self.fusion, Fusion)
                others[key] = value
            else:
                others[key] = value
        if touched:
            self.encoders = encoders
        if others:
            super().set_params(**others)
        return self
