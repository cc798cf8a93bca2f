"""The HTML diagram of a multimodal estimator: per modality preprocessing -> encoder, then fusion.

scikit-learn draws an estimator's ``_sk_visual_block_``.  Before fit the
diagram shows the components given (encoders, fusion, preprocessor); after
fit it shows every modality the model reads, labelled by its name and
columns, with the transformer that prepared it and the encoder that reads
it, then the fusion.  mmsk's boxes link to their documentation ("?"), as
scikit-learn's do.
"""

from __future__ import annotations

from typing import Any

from mmsk._docs import doc_link
from mmsk.components import Fusion
from mmsk.exceptions import MmskError
from mmsk.models._params import make_component, resolve_encoders

_DEFAULT_FUSION = "concat"


def _visual_block_class() -> Any:
    try:
        from sklearn.utils._repr_html.estimator import _VisualBlock
    except ImportError:  # scikit-learn < 1.7
        from sklearn.utils._estimator_html_repr import _VisualBlock
    return _VisualBlock


class _Box:
    """An mmsk object as the diagram draws it: its settings and a "?" link to its
    documentation; no output-feature list (a model reads arrays, not features)."""

    def __init__(self, obj: Any, label: str | None = None) -> None:
        self._obj = obj
        self._label = label or type(obj).__name__

    def __getattr__(self, name: str) -> Any:
        if name in ("get_feature_names_out", "steps") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._obj, name)

    def _get_doc_link(self) -> str:
        return doc_link(self._obj)

    def _sk_visual_block_(self) -> Any:
        return _visual_block_class()("single", self, names=self._label,
                                     name_details=str(self._obj))  # fmt: skip

    def __repr__(self) -> str:
        return repr(self._obj)


def _shown(obj: Any) -> Any:
    """mmsk's own objects in a box with a doc link; anything else as sklearn draws it."""
    if isinstance(obj, type):
        try:
            obj = obj()
        except TypeError:
            return obj.__name__
    if type(obj).__module__.split(".")[0] == "mmsk" and hasattr(obj, "get_params"):
        return _Box(obj)
    return obj


def _fusion(value: Any) -> Any:
    try:
        return make_component("fusion", value, Fusion)
    except MmskError:
        return value  # an unknown name: drawn as given


def _branch_label(name: str, kind: str, columns: tuple[str, ...]) -> str:
    """``caption: text`` (modality ``caption`` read from column ``caption``), or
    ``numbers: a, b, c`` (a modality made of several columns)."""
    if not columns or list(columns) == [name]:
        return f"{name}: {kind}"
    return f"{name}: {kind} from {', '.join(map(str, columns))}"


def _fitted_branches(est: Any) -> tuple[list[Any], list[str], list[str]] | None:
    """One serial block per modality: its fitted transformer (if any), its encoder."""
    VisualBlock = _visual_block_class()
    try:
        used = resolve_encoders(est.encoders if isinstance(est.encoders, dict) else None,
                                est.specs_)  # fmt: skip
    except MmskError:
        return None
    prep = getattr(est, "preprocessor_", None)
    transformers = {n: t for n, t, _ in getattr(prep, "transformers_", [])}
    blocks, names, details = [], [], []
    for name, spec in est.specs_.items():
        encoder = used[name]
        parts = [encoder] if isinstance(encoder, str) else [_Box(encoder)]
        transformer = transformers.get(name)
        if transformer is not None and not isinstance(transformer, str):
            parts.insert(0, _shown(transformer))
        shown = [str(p) for p in parts]
        blocks.append(VisualBlock("serial", parts, names=[None] * len(parts),
                                  name_details=shown, dash_wrapped=False))  # fmt: skip
        names.append(_branch_label(name, spec.kind, tuple(spec.columns)))
        shape = str(spec.shape)
        if spec.char_columns:
            shape = f"{spec.words().shape} words + {spec.char_columns} character n-grams"
        details.append(f"kind: {spec.kind}, shape: {shape}, columns: {list(spec.columns)}")
    return blocks, names, details


def visual_block(est: Any) -> Any:
    """sklearn's HTML diagram: per modality preprocessing and encoder, then the fusion.

    Components are not estimators (no ``fit``), so sklearn would not draw
    them on its own.  Before fit: the components given (preprocessor,
    encoders, fusion); with none given, sklearn's single box.  After fit:
    every modality the model reads, by name and columns, each with the
    transformer that prepared it and the encoder used, then the fusion.
    """
    VisualBlock = _visual_block_class()
    if getattr(est, "model", None) is not None:  # the user's own network (model=): one box
        return VisualBlock("single", est, names=type(est).__name__, name_details=str(est))
    fitted = hasattr(est, "specs_")
    given = est.encoders if isinstance(est.encoders, dict) else {}
    fusion = _fusion(est.fusion)
    parts: list[Any] = []
    names: list[str] = []
    branches = _fitted_branches(est) if fitted else None
    if branches is not None:
        blocks, labels, details = branches
        parts.append(VisualBlock("parallel", blocks, names=labels, name_details=details))
        names.append("encoders")
    else:
        prep = est.preprocessor
        if prep is not None and not isinstance(prep, str):
            parts.append(_shown(prep))
            names.append(f"preprocessor: {type(prep).__name__}")
        if given:
            shown = [_shown(e) for e in given.values()]
            parts.append(VisualBlock("parallel", shown, names=list(given),
                                     name_details=[str(e) for e in given.values()]))  # fmt: skip
            names.append("encoders")
        if not parts and isinstance(est.fusion, str) and est.fusion == _DEFAULT_FUSION:
            return VisualBlock("single", est, names=type(est).__name__, name_details=str(est))
    parts.append(_shown(fusion))
    names.append(f"fusion: {fusion if isinstance(fusion, str) else type(fusion).__name__}")
    blend = getattr(est, "linear_blend_", None) if fitted else None
    if blend:
        linear = _linear_model(blend)
        label = f"linear blend: {blend['network']:g} x network + {blend['linear']:g} x {linear!r}"
        parts.append(VisualBlock("single", linear, names=label, name_details=str(blend)))
        names.append("linear blend")
    return VisualBlock("serial", parts, names=names,
                       name_details=[str(p) for p in parts], dash_wrapped=False)  # fmt: skip


def _linear_model(blend: dict) -> Any:
    """The scikit-learn model the linear blend chose (unfitted, for its box and doc link)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.svm import LinearSVC

    if blend["linear_model"] == "ridge":
        return Ridge(alpha=blend["alpha"])
    kind = LinearSVC if blend["linear_model"] == "svm" else LogisticRegression
    return kind(C=blend["C"])
