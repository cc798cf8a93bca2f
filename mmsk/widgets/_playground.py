"""PredictionPlayground: fill in one row by hand (uploads, text, numbers), see the prediction."""

from __future__ import annotations

import datetime
import os
import re
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

from mmsk.exceptions import InputError, InputTypeError, MmskError
from mmsk.preprocessing import ModalityPreprocessor
from mmsk.preprocessing._files import read_checked
from mmsk.widgets._common import THEME_CSS, esc

_ACCEPT = {"image": "image/*", "audio": "audio/*,.wav,.flac,.ogg"}
_LABEL = w.Layout(width="180px")
_HINT = '<span class="mmsk-muted">Fill in an input to see the prediction.</span>'


def _find_preprocessor(estimator: Any) -> ModalityPreprocessor | None:
    """The fitted ModalityPreprocessor that reads the estimator's DataFrame columns."""
    estimator = getattr(estimator, "best_estimator_", estimator)  # a fitted search
    steps = [step for _, step in getattr(estimator, "steps", [])] or [estimator]
    for step in steps:
        if isinstance(step, ModalityPreprocessor) and hasattr(step, "specs_"):
            return step
        prep = getattr(step, "preprocessor_", None)
        if isinstance(prep, ModalityPreprocessor):
            return prep
    return None


def _categories(prep: ModalityPreprocessor) -> dict[str, list[Any]]:
    """Known categories per categorical column (from a fitted OneHotEncoder)."""
    out: dict[str, list[Any]] = {}
    for name, transformer, cols in prep.transformers_:
        if prep.specs_[name].kind != "categorical":
            continue
        steps = [s for _, s in getattr(transformer, "steps", [])] or [transformer]
        cols = [cols] if isinstance(cols, str) else list(cols)
        for step in steps:
            cats = getattr(step, "categories_", None)
            if cats is not None and len(cats) == len(cols):
                for col, values in zip(cols, cats, strict=True):
                    out[str(col)] = [v for v in np.asarray(values).tolist() if v != "<missing>"]
                break
    return out


def _upload_entry(data: bytes, name: str, kind: str) -> dict[str, Any]:
    """A FileUpload value entry, as the browser would send it."""
    ext = os.path.splitext(name)[1].lstrip(".").lower()
    return {
        "name": name,
        "type": f"{kind}/{ext or 'octet-stream'}",
        "size": len(data),
        "content": memoryview(data),
        "last_modified": datetime.datetime.now(datetime.timezone.utc),
    }


class PredictionPlayground:
    """Try a fitted estimator on one row filled in by hand.

    One input per column the estimator was fitted on: a file upload for
    image and audio columns (with a preview), a text box for text columns,
    a number box for numeric columns and a drop-down for categorical ones.
    Every change predicts again, once at least one input is filled in: a
    classifier shows one probability bar per class, most probable first, a
    regressor the predicted value.  An input left empty is a missing modality
    (None/NaN), which mmsk models accept.  An input that cannot be read
    clears the last prediction and says which field is wrong.

    Uploaded files go to the estimator as the file's bytes, which mmsk's
    preprocessing decodes exactly as it decodes files given by path (PIL for
    images, WAV with the standard library and other formats with
    ``soundfile`` for audio), so the playground predicts what
    ``predict_proba`` predicts for the same file.

    Parameters
    ----------
    estimator : fitted estimator
        A :class:`~mmsk.MultimodalClassifier` or
        :class:`~mmsk.MultimodalRegressor` fitted on a DataFrame, a Pipeline
        whose first step is a :class:`~mmsk.preprocessing.ModalityPreprocessor`,
        or a fitted search over either.

    Attributes
    ----------
    columns : list of str
        The columns of the row, in the order seen in ``fit``.
    kinds : dict of str to str
        Modality kind of each column.
    inputs : dict of str to ipywidgets widget
        The input widget of each column (``FileUpload``, ``Textarea``,
        ``Text`` or ``Dropdown``).
    bars : dict of label to ipywidgets.FloatProgress
        Classifier only: the probability bar of each class (``value`` is the
        probability).
    proba : ndarray of shape (n_classes,) or None
        Probabilities shown (classifier).
    prediction : object
        The predicted label, or the predicted value(s) of a regressor.
    error : str or None
        Why the last prediction failed (a bad number, an undecodable file),
        naming the field.
    file_names : dict of str to ipywidgets.Label
        Image and audio columns: the name and size of the uploaded file.
    widget : ipywidgets.VBox
        The whole playground.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mmsk import MultimodalClassifier
    >>> from mmsk.widgets import PredictionPlayground
    >>> X = pd.DataFrame({"review": ["great", "awful", "love it", "broke"] * 8,
    ...                   "stars": np.tile([5.0, 1.0, 4.0, 2.0], 8)})
    >>> y = ["pos", "neg", "pos", "neg"] * 8
    >>> clf = MultimodalClassifier(epochs=2, random_state=0).fit(X, y)
    >>> play = PredictionPlayground(clf)
    >>> play.proba is None  # nothing predicted before an input is given
    True
    >>> play.inputs["review"].value = "love it"
    >>> play.set_input("stars", 4.0)
    >>> row = play.row()
    >>> row
        review  stars
    0  love it    4.0
    >>> bool(np.allclose([play.bars[c].value for c in clf.classes_], clf.predict_proba(row)[0]))
    True
    """

    def __init__(self, estimator: Any) -> None:
        check_is_fitted(estimator)
        prep = _find_preprocessor(estimator)
        if prep is None:
            raise InputError(
                "PredictionPlayground needs an estimator fitted on a DataFrame (or a Pipeline "
                "starting with a fitted ModalityPreprocessor); this one was fitted on a "
                "ModalityBatch, so it has no columns to fill in"
            )
        self.estimator = estimator
        self.classifier = bool(is_classifier(estimator))
        names = getattr(estimator, "feature_names_in_", None)
        self._as_array = names is None  # fitted on a plain 2-D array
        self.columns = [str(c) for c in (prep.feature_names_in_ if names is None else names)]
        kinds = {str(c): spec.kind for spec in prep.specs_.values() for c in spec.columns}
        self.kinds = {c: kinds.get(c, "text") for c in self.columns}
        self._categories = _categories(prep)
        self.proba: np.ndarray | None = None
        self.prediction: Any = None
        self.error: str | None = None
        self.inputs: dict[str, Any] = {}
        self.previews: dict[str, Any] = {}
        self.file_names: dict[str, Any] = {}
        rows = [self._input_row(c) for c in self.columns]
        self.message = w.HTML(value=_HINT)
        self.result = w.HTML(value="")
        self.bars: dict[Any, Any] = {}
        self._percent: dict[Any, Any] = {}
        self._bar_rows: dict[Any, Any] = {}
        if self.classifier:
            for label in np.asarray(estimator.classes_).tolist():
                self.bars[label] = w.FloatProgress(value=0.0, min=0.0, max=1.0,
                                                   layout=w.Layout(width="240px"))  # fmt: skip
                self._percent[label] = w.Label(value="")
                name = w.Label(value=str(label), layout=_LABEL)
                self._bar_rows[label] = w.HBox([name, self.bars[label], self._percent[label]])
        self.bar_box = w.VBox(list(self._bar_rows.values()))
        title = w.HTML(
            f"{THEME_CSS}<b>{esc(type(estimator).__name__)}</b>: fill in any inputs; an empty "
            "one is a missing modality"
        )
        self.widget = w.VBox([title, *rows, w.HTML("<hr>"), self.message, self.result,
                              self.bar_box])  # fmt: skip
        self.widget.add_class("mmsk-widget")
        self.widget.add_class("mmsk-prediction-playground")
        for widget in self.inputs.values():
            widget.observe(self._on_change, names="value")

    # ---- inputs ------------------------------------------------------------
    def _input_row(self, column: str) -> Any:
        kind = self.kinds[column]
        label = w.Label(value=f"{column} ({kind})", layout=_LABEL)
        extra: list[Any] = []
        widget: Any
        if kind in _ACCEPT:
            widget = w.FileUpload(accept=_ACCEPT[kind], multiple=False, description="Upload")
            clear = w.Button(description="Clear", layout=w.Layout(width="70px"))
            clear.on_click(lambda _, c=column: self.set_input(c, None))
            preview = (
                w.Image(layout=w.Layout(max_width="96px", max_height="96px"))
                if kind == "image"
                else w.Audio(autoplay=False, controls=True)
            )
            preview.layout.display = "none"
            self.previews[column] = preview
            self.file_names[column] = w.Label(value="")
            extra = [self.file_names[column], clear, preview]
        elif kind == "categorical" and column in self._categories:
            options = [("(missing)", None), *((str(v), v) for v in self._categories[column])]
            widget = w.Dropdown(options=options, value=None)
        elif kind in ("numeric", "categorical"):
            widget = w.Text(placeholder="empty = missing", continuous_update=False)
        else:
            widget = w.Textarea(placeholder="type a text; empty = missing",
                                continuous_update=False, rows=2)  # fmt: skip
        self.inputs[column] = widget
        return w.HBox([label, widget, *extra])

    def set_input(self, column: str, value: Any) -> None:
        """Set one column's input from Python, as a person would in the browser.

        Parameters
        ----------
        column : str
            A column in :attr:`columns`.
        value : object
            Image/audio columns: the file's bytes or a path to the file.
            Text: a string.  Numeric: a number.  Categorical: a category.
            None (or an empty string) leaves the column missing.
        """
        if column not in self.inputs:
            raise InputError(f"unknown column {column!r}; expected one of {self.columns}")
        kind, widget = self.kinds[column], self.inputs[column]
        if kind in _ACCEPT:
            if value is None:
                widget.value = ()
                return
            if isinstance(value, (str, os.PathLike)):
                try:  # a regular file under the size cap, read bounded
                    data = read_checked(value, kind)
                except InputError as exc:
                    raise InputError(f"column {column!r}: {exc}") from exc
                name = os.path.basename(os.fspath(value))
            elif isinstance(value, (bytes, bytearray, memoryview)):
                data, name = bytes(value), f"upload.{'png' if kind == 'image' else 'wav'}"
            else:
                raise InputTypeError(
                    f"column {column!r} ({kind}): expected the bytes of a file or a path. "
                    f"Received: {type(value).__name__}"
                )
            widget.value = (_upload_entry(data, name, kind),)
        elif isinstance(widget, w.Dropdown):
            known = [v for _, v in widget.options]
            if value not in known:
                raise InputError(
                    f"column {column!r}: {value!r} is not a category seen in fit; expected one "
                    f"of {known[1:]} or None (missing)"
                )
            widget.value = value
        else:
            widget.value = "" if value is None else str(value)

    def _cell(self, column: str) -> Any:
        kind, widget = self.kinds[column], self.inputs[column]
        if kind in _ACCEPT:
            entries = widget.value
            return bytes(entries[-1]["content"]) if entries else None
        value = widget.value
        if isinstance(widget, w.Dropdown):
            return value
        text = str(value).strip()
        if kind == "numeric":
            if not text:
                return np.nan
            try:
                return float(text)
            except ValueError:
                raise InputError(
                    f"column {column!r}: {text!r} is not a number; type a number or leave "
                    "it empty (missing)"
                ) from None
        return text or None

    def row(self) -> pd.DataFrame:
        """The one-row DataFrame made of the current inputs (the estimator's columns).

        Returns
        -------
        DataFrame of shape (1, n_columns)
        """
        cells = {column: [self._cell(column)] for column in self.columns}
        frame = pd.DataFrame(cells, columns=self.columns)
        for column in self.columns:
            if self.kinds[column] == "numeric":
                frame[column] = frame[column].astype(float)
        return frame

    # ---- prediction --------------------------------------------------------
    def _on_change(self, change: Any) -> None:
        self.update()

    def filled(self) -> list[str]:
        """The columns with an input (the others are missing modalities)."""
        out = []
        for column in self.columns:
            value = self.inputs[column].value
            if value not in ((), "", None) and not (isinstance(value, str) and not value.strip()):
                out.append(column)
        return out

    def update(self) -> Any:
        """Predict from the current inputs and refresh the display.

        Nothing is predicted while every input is empty.

        Returns
        -------
        ndarray or object or None
            The probabilities (classifier) or the predicted value(s), or None
            when no input is given or the inputs cannot be read (see :attr:`error`).
        """
        self._refresh_previews()
        if not self.filled():
            self.error = None
            self._clear(_HINT)
            return None
        try:
            row = self.row()
            X: Any = row.to_numpy(dtype=float) if self._as_array else row
            if self.classifier:
                proba = np.asarray(self.estimator.predict_proba(X), dtype=float)[0]
                out: Any = proba
            else:
                out = np.asarray(self.estimator.predict(X))[0]
        except (MmskError, ValueError, TypeError, OSError) as exc:
            self.error = self._field_message(str(exc))
            self._clear(f'<span class="mmsk-error">{esc(self.error)}</span>')
            return None
        self.error = None
        self.message.value = ""
        if self.classifier:
            self._show_proba(out)
        else:
            self.proba = None
            self.prediction = out
            values = np.atleast_1d(out).tolist()
            shown = ", ".join(f"{v:.4g}" for v in values)
            self.result.value = f"predicted value: <b>{esc(shown)}</b>"
        return out

    def _field_message(self, text: str) -> str:
        """The error with the field named as the person sees it (no "row 0")."""
        match = re.match(r"column '([^']*)'(?:, row 0)?: ", text)
        text = re.sub(r",? row 0\b", "", text)
        if match and match.group(1) in self.file_names:
            column = match.group(1)
            entries = self.inputs[column].value
            name = entries[-1].get("name") if entries else None
            if name:
                text = f"{column} (file {name!r}): " + text[match.end() :].lstrip()
        return text

    def _clear(self, message: str) -> None:
        """No prediction shown (an error or no input): bars empty, ``message`` shown."""
        self.message.value = message
        self.proba, self.prediction = None, None
        self.result.value = ""
        for label, bar in self.bars.items():
            bar.value, bar.bar_style = 0.0, "info"
            self._percent[label].value = ""

    def _show_proba(self, proba: np.ndarray) -> None:
        self.proba = proba
        labels = list(self.bars)
        multilabel = getattr(self.estimator, "target_type_", None) == "multilabel"
        if multilabel:
            self.prediction = [lab for lab, p in zip(labels, proba, strict=True) if p >= 0.5]
        else:
            self.prediction = labels[int(np.argmax(proba))]
        for label, p in zip(labels, proba, strict=True):
            self.bars[label].value = float(p)
            chosen = label in self.prediction if multilabel else label == self.prediction
            self.bars[label].bar_style = "success" if chosen else "info"
            self._percent[label].value = f"{p:.1%}"
        order = sorted(range(len(labels)), key=lambda i: -float(proba[i]))  # stable on ties
        self.bar_box.children = [self._bar_rows[labels[i]] for i in order]
        self.result.value = f"predicted: <b>{esc(self.prediction)}</b>"

    def _refresh_previews(self) -> None:
        for column, preview in self.previews.items():
            entries = self.inputs[column].value
            if not entries:
                preview.layout.display = "none"
                self.file_names[column].value = ""
                continue
            entry = entries[-1]
            size = int(entry.get("size") or len(entry["content"]))
            self.file_names[
                column
            ].value = f"{entry.get('name') or 'upload'} ({size / 1024:.1f} kB)"
            subtype = str(entry.get("type") or "").partition("/")[2] or (
                "png" if self.kinds[column] == "image" else "wav"
            )
            preview.format = subtype
            preview.value = bytes(entry["content"])
            preview.layout.display = ""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"PredictionPlayground({type(self.estimator).__name__}, columns={self.columns})"
