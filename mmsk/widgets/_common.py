"""Helpers shared by the widgets: kernel detection, figures as PNG, number formatting."""

from __future__ import annotations

import html
import io
import math
import sys
from typing import Any, TextIO

from mmsk.exceptions import ParameterError

MODES = ("auto", "widget", "text")


def in_kernel() -> bool:
    """True inside a running Jupyter kernel (a notebook, JupyterLab, Voila), where
    widgets can show; False in a script, a terminal IPython or a test run."""
    if sys.modules.get("IPython") is None:  # never import IPython just to ask
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython half-installed
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def check_mode(mode: Any) -> str:
    """Validate ``mode`` (``"auto"``, ``"widget"`` or ``"text"``)."""
    if mode not in MODES:
        raise ParameterError(f"Expected mode to be one of {MODES}. Received: mode={mode!r}")
    return str(mode)


def resolve_mode(mode: str) -> str:
    """``"auto"`` -> ``"widget"`` in a Jupyter kernel, else ``"text"``."""
    if mode == "auto":
        return "widget" if in_kernel() else "text"
    return mode


def show(widget: Any) -> None:
    """Display ``widget`` in the running kernel's current cell output."""
    from IPython.display import display

    display(widget)


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure not registered with pyplot (no global state, no GUI), or
    None when matplotlib is not installed (the widgets then show no plot)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is in the notebook extra
        return None
    return Figure(figsize=(width, height), dpi=96, layout="constrained")


def figure_png(figure: Any) -> bytes:
    """The figure rendered as PNG bytes (for an ``ipywidgets.Image``)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def fmt(value: Any) -> str:
    """A short text for a setting or a score: 4 significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def esc(value: Any) -> str:
    """``fmt(value)`` escaped for HTML."""
    return html.escape(fmt(value))


def write_line(stream: TextIO | None, text: str, *, newline: bool = True) -> None:
    """Write ``text`` to ``stream`` (standard error when None, looked up at call time)."""
    out = stream if stream is not None else sys.stderr
    out.write(text + ("\n" if newline else ""))
    out.flush()


def is_tty(stream: TextIO | None) -> bool:
    out = stream if stream is not None else sys.stderr
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False
