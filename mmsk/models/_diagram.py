"""The HTML diagram of a multimodal estimator: preprocessor -> encoders -> fusion."""

from __future__ import annotations

from typing import Any

from mmsk.components import Fusion
from mmsk.exceptions import MmskError
from mmsk.models._params import make_component, resolve_encoders


def visual_block(est: Any) -> Any:
    """sklearn's HTML diagram: preprocessor -> encoders -> fusion, with component settings.

    Components are not estimators (no ``fit``), so sklearn would not draw
    them; once fitted, the encoders shown are those used, one per modality.
    """
    try:
        from sklearn.utils._repr_html.estimator import _VisualBlock
    except ImportError:  # scikit-learn < 1.7
        from sklearn.utils._estimator_html_repr import _VisualBlock

    def shown(c: Any) -> Any:  # a class is drawn by its name
        return c.__name__ if isinstance(c, type) else c

    fitted = hasattr(est, "specs_")
    given = est.encoders if isinstance(est.encoders, dict) else {}
    encoders, fusion = {k: shown(v) for k, v in given.items()}, shown(est.fusion)
    if fitted:
        try:
            used = resolve_encoders(est.encoders, est.specs_)
            encoders = {n if n in given else f"{s.kind}: {n}": used[n]
                        for n, s in est.specs_.items()}  # fmt: skip
            fusion = make_component("fusion", est.fusion, Fusion)
        except MmskError:
            pass  # show the settings as given
    prep = getattr(est, "preprocessor_", None) if fitted else est.preprocessor
    if not fitted and not encoders and isinstance(fusion, str) and prep is None:
        return _VisualBlock("single", est, names=type(est).__name__, name_details=str(est))
    parts: list[Any] = [] if prep is None else [prep]
    names = [] if prep is None else [f"preprocessor: {type(prep).__name__}"]
    if encoders:
        details = [str(e) for e in encoders.values()]
        parts.append(_VisualBlock("parallel", list(encoders.values()),
                                  names=list(encoders), name_details=details))  # fmt: skip
        names.append("encoders")
    parts.append(fusion)
    names.append(f"fusion: {fusion if isinstance(fusion, str) else type(fusion).__name__}")
    return _VisualBlock("serial", parts, names=names,
                        name_details=[str(p) for p in parts], dash_wrapped=False)  # fmt: skip
