"""Helpers shared by the widgets: kernel detection, theme CSS, figures as PNG, static copies."""

from __future__ import annotations

import base64
import html
import io
import math
import sys
from typing import Any, TextIO

from mmsk.exceptions import ParameterError

MODES = ("auto", "widget", "text")

#: Plots are drawn at this many dots per inch at display size, and saved at twice it.
DPI = 100

# Colours come from JupyterLab's theme (CSS variables, with a light fallback for
# nbviewer and HTML exports).  Plots have a transparent background; in a dark
# theme they are inverted (hue kept), so dark ink becomes light ink.
THEME_CSS = """<style>
.mmsk-widget {color: var(--jp-content-font-color1, #222);
  border: 1px solid var(--jp-border-color2, #ddd); padding: 4px 6px}
.mmsk-widget .mmsk-muted {color: var(--jp-content-font-color2, #555)}
.mmsk-trials {border-collapse: collapse; font-size: 90%; margin: 4px 0}
.mmsk-trials th, .mmsk-trials td {padding: 2px 8px; text-align: left;
  border-bottom: 1px solid var(--jp-border-color2, #ddd)}
.mmsk-trials tr.mmsk-best td {background: var(--jp-layout-color2, #eee);
  color: var(--jp-content-font-color0, #000); font-weight: bold}
.mmsk-trials tr.mmsk-best td:first-child {box-shadow: inset 3px 0 var(--jp-brand-color1, #1976d2)}
.mmsk-COMPLETED {color: var(--jp-success-color0, #1b5e20)}
.mmsk-FAILED {color: var(--jp-error-color0, #b71c1c)}
.mmsk-RUNNING {color: var(--jp-brand-color0, #0d47a1)}
.mmsk-error {color: var(--jp-error-color0, #b71c1c)}
body[data-jp-theme-light="false"] img.mmsk-plot,
body[data-jp-theme-light="false"] .mmsk-plot img {filter: invert(1) hue-rotate(180deg)}
</style>"""


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


def show(widget: Any) -> Any:
    """Display ``widget`` in the running kernel's current cell output; return the
    display handle (to replace it later by its static copy)."""
    from IPython.display import display

    return display(widget, display_id=True)


class Static:
    """A static copy of a widget: HTML (tables, inline PNG) and a line of text.

    Notebooks keep it as ``text/html``, so a saved notebook, nbviewer and
    ``jupyter nbconvert --to html`` show it without a kernel.
    """

    def __init__(self, html_text: str, text: str) -> None:
        self.html, self.text = html_text, text

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        return {"text/html": self.html, "text/plain": self.text}

    def __repr__(self) -> str:
        return self.text


def freeze(handle: Any, static: Static) -> None:
    """Replace a live widget's display (``handle`` from :func:`show`) by ``static``."""
    if handle is not None:
        handle.update(static)


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure of ``width`` x ``height`` inches (shown at ``DPI`` pixels an
    inch), not registered with pyplot, with a transparent background; or None when
    matplotlib is not installed (the widgets then show no plot)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is in the notebook extra
        return None
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    fig.patch.set_alpha(0.0)
    return fig


def style_axes(ax: Any) -> None:
    """Transparent axes with dark-grey ink (inverted to light ink in a dark theme)."""
    ax.set_facecolor("none")
    ink = "#333333"
    ax.tick_params(colors=ink, labelsize="small")
    for spine in ax.spines.values():
        spine.set_color("#888888")
    ax.xaxis.label.set_color(ink)
    ax.yaxis.label.set_color(ink)
    ax.title.set_color(ink)
    ax.grid(alpha=0.3)


def figure_png(figure: Any) -> bytes:
    """The figure rendered as PNG bytes at twice its display resolution (crisp on
    high-density screens), transparent background."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=2 * DPI, transparent=True)
    return buffer.getvalue()


def figure_width(figure: Any) -> int:
    """The width in CSS pixels the figure is drawn for."""
    return round(figure.get_figwidth() * DPI)


def plot_img(figure: Any, image: Any, alt: str) -> str:
    """The widget's last drawn plot (``image``, an ipywidgets Image drawn from
    ``figure``) as an inline ``<img>``; "" before the first draw."""
    if figure is None or not image.value:
        return ""
    return png_img(bytes(image.value), figure_width(figure), alt)


def png_img(png: bytes, width: int, alt: str) -> str:
    """An ``<img>`` holding ``png`` inline, shown ``width`` pixels wide."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<img class="mmsk-plot" width="{width}" alt="{html.escape(alt)}" '
        f'src="data:image/png;base64,{data}">'
    )


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


def duration(seconds: float) -> str:
    """``"0:07"``, ``"12:03"``, ``"1:02:03"``: a duration as Keras and tqdm show it."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


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
