"""``python -m mmsk demo``: fit single-modality baselines and fusions on bundled data, compare.

Loads a data set from :mod:`mmsk.datasets`, splits it (stratified, seeded),
fits one :class:`~mmsk.MultimodalClassifier` per modality column and one per
fusion strategy on all columns, and reports accuracy, macro-F1, fit time and
predict time per row.  It writes ``results.json`` and ``comparison.png`` into
``--output`` (each atomically: a temporary file renamed into place) and ends
with the Python that does the same through mmsk's public API.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

FUSIONS = ("concat", "sum", "attention", "gated", "late")
RESULTS_FILE = "results.json"
PLOT_FILE = "comparison.png"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


@dataclass
class Recipe:
    """How the demo models one bundled data set (every setting is public API)."""

    loader: str  # function name in mmsk.datasets
    target: Callable[[Any], Any]  # the labels, from the loader's Bunch
    target_code: str  # the same as Python source, for the printed script
    steps: dict[str, Any]  # column -> transformer
    metric: str  # "accuracy" or "macro_f1": ranks the models
    params: dict[str, Any] = field(default_factory=dict)  # estimator settings


def recipes() -> dict[str, Recipe]:
    """The data sets ``--dataset`` accepts."""
    from mmsk.preprocessing import AudioFeaturizer, ImagePreprocessor, TextVectorizer

    return {
        "av_digits": Recipe(
            loader="load_av_digits",
            target=lambda data: data.target,
            target_code="data.target",
            steps={
                "image": ImagePreprocessor(size=8, color_mode="grayscale"),
                "audio": AudioFeaturizer(sample_rate=8000, n_mels=32),
            },
            metric="accuracy",
            params={"learning_rate": 3e-3},
        ),
        "icons": Recipe(
            loader="load_icons",
            target=lambda data: data.target_names[data.target],
            target_code="data.target_names[data.target]",
            steps={"icon": ImagePreprocessor(size=32), "name": TextVectorizer()},
            metric="macro_f1",  # classes of 48 to 300 icons
            params={"learning_rate": 3e-3},
        ),
    }


def _fusions(text: str) -> list[str]:
    names = [f.strip() for f in text.split(",") if f.strip()]
    if names == ["all"]:
        return list(FUSIONS)
    bad = [f for f in names if f not in FUSIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(FUSIONS)} (or 'all'); got {text!r}"
        )
    return list(dict.fromkeys(names))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def add_parser(commands: Any) -> None:
    """Register the ``demo`` sub-command."""
    p = commands.add_parser(
        "demo",
        help="train and compare single-modality and fused models on bundled data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", default="av_digits", choices=sorted(recipes()),
                   help="bundled data set (default: av_digits)")  # fmt: skip
    p.add_argument("--fusion", type=_fusions, default=list(FUSIONS), metavar="LIST",
                   help="comma-separated fusions to compare, or 'all' (default: all: "
                        f"{','.join(FUSIONS)})")  # fmt: skip
    p.add_argument("--epochs", type=_positive, default=15, help="epochs per model (default: 15)")
    p.add_argument("--output", type=Path, default=Path("mmsk-demo"),
                   help="folder for results.json and comparison.png (default: ./mmsk-demo)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="split and training seed (default: 0)")
    p.add_argument("--test-size", type=float, default=0.25, help="held-out fraction (0.25)")
    p.add_argument("--verbose", action="store_true",
                   help="describe the data and print every epoch's loss")  # fmt: skip
    p.set_defaults(run=run)


# ---- progress ------------------------------------------------------------------------------


class Progress:
    """A one-line text bar per model on ``stream``; redrawn in place on a terminal."""

    def __init__(self, stream: TextIO, n_models: int, verbose: bool) -> None:
        self.stream = stream
        self.n_models = n_models
        self.verbose = verbose
        self.tty = stream.isatty()
        self.index = 0
        self.label = ""
        self.start = 0.0
        self._open = False

    def begin(self, label: str) -> None:
        self.index += 1
        self.label = label
        self.start = time.perf_counter()
        if not self.tty:
            self._line(f"{self._prefix()} training ...")

    def _prefix(self) -> str:
        return f"[{self.index}/{self.n_models}] {self.label:<17}"

    def draw(self, epoch: int, epochs: int, fraction: float, loss: float | None) -> None:
        if not self.tty:
            return
        width = 24
        filled = int(width * min(1.0, (epoch + fraction) / epochs))
        bar = "#" * filled + "-" * (width - filled)
        text = f"{self._prefix()} epoch {min(epoch + 1, epochs):>3}/{epochs} [{bar}]"
        if loss is not None:
            text += f" loss {loss:.3f}"
        text += f" {time.perf_counter() - self.start:5.1f}s"
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self._open = True

    def epoch_done(self, epoch: int, epochs: int, loss: float | None) -> None:
        if self.verbose:
            shown = "-" if loss is None else f"{loss:.4f}"
            self._line(f"{self._prefix()} epoch {epoch + 1:>3}/{epochs} loss {shown}")

    def end(self, summary: str) -> None:
        self._line(f"{self._prefix()} done in {time.perf_counter() - self.start:.1f}s: {summary}")

    def _line(self, text: str) -> None:
        self.stream.write(("\r\x1b[K" if self._open else "") + text + "\n")
        self.stream.flush()
        self._open = False

    def close(self) -> None:
        """End a bar left open (after an interrupt)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def progress_callback(progress: Progress) -> Any:
    """A Keras callback that drives ``progress`` (passed through ``callbacks=``)."""
    from mmsk import _backend

    keras = _backend.keras()

    class TextProgress(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch
            progress.draw(epoch, self.params["epochs"], 0.0, None)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            steps = self.params.get("steps") or 1
            loss = (logs or {}).get("loss")
            progress.draw(self.epoch, self.params["epochs"], (batch + 1) / steps,
                          None if loss is None else float(loss))  # fmt: skip

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            loss = (logs or {}).get("loss")
            progress.epoch_done(epoch, self.params["epochs"], None if loss is None else float(loss))

    return TextProgress()


# ---- the comparison ------------------------------------------------------------------------


def _models(columns: list[str], fusions: list[str]) -> list[tuple[str, list[str], str | None]]:
    """(label, columns, fusion or None) of every model to fit."""
    single = [(f"{c} only", [c], None) for c in columns]
    return single + [(f"fusion={f}", columns, f) for f in fusions]


def _estimator(recipe: Recipe, columns: list[str], fusion: str | None, args: Any,
               callbacks: list[Any]) -> Any:  # fmt: skip
    from sklearn.base import clone

    import mmsk

    prep = mmsk.ModalityPreprocessor([(c, clone(recipe.steps[c]), c) for c in columns])
    extra = {} if fusion is None else {"fusion": fusion}
    return mmsk.MultimodalClassifier(
        preprocessor=prep, **extra, **_fit_params(recipe, args), callbacks=callbacks
    )


def _fit_params(recipe: Recipe, args: Any) -> dict[str, Any]:
    return {"epochs": args.epochs, **recipe.params, "random_state": args.seed}


def _evaluate(clf: Any, X_test: Any, y_test: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    clf.predict(X_test.iloc[:8])  # warm-up: the first call traces the compiled model
    start = time.perf_counter()
    pred = clf.predict(X_test)
    seconds = time.perf_counter() - start
    return {
        "accuracy": float(accuracy_score(y_test, pred)),
        "macro_f1": float(f1_score(y_test, pred, average="macro")),
        "predict_ms_per_row": 1000.0 * seconds / len(X_test),
    }


def compare(args: Any, recipe: Recipe, progress: Progress, data: Any, y: Any) -> dict[str, Any]:
    """Fit every model; return the numbers (what results.json holds)."""
    from sklearn.model_selection import train_test_split

    X = data.data
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=args.test_size, stratify=y, random_state=args.seed
    )
    columns = list(X.columns)
    rows = []
    for label, cols, fusion in _models(columns, args.fusion):
        progress.begin(label)
        clf = _estimator(recipe, cols, fusion, args, [progress_callback(progress)])
        start = time.perf_counter()
        clf.fit(X_train[cols], y_train)
        fit_seconds = time.perf_counter() - start
        scores = _evaluate(clf, X_test[cols], y_test)
        row = {"model": label, "kind": "single" if fusion is None else "fusion",
               "fusion": fusion, "columns": cols, **scores, "fit_seconds": fit_seconds,
               "epochs": int(clf.n_epochs_)}  # fmt: skip
        rows.append(row)
        progress.end(f"accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f}")
    key = recipe.metric
    best = max(rows, key=lambda r: r[key])
    singles = [r for r in rows if r["kind"] == "single"]
    best_single = max(singles, key=lambda r: r[key]) if singles else None
    fused = [r for r in rows if r["kind"] == "fusion"]
    best_fused = max(fused, key=lambda r: r[key]) if fused else None
    return {
        "dataset": args.dataset,
        "metric": key,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "n_classes": int(len(set(y_test))),
        "settings": {"epochs": args.epochs, "seed": args.seed, "test_size": args.test_size,
                     **recipe.params},  # fmt: skip
        "models": rows,
        "best": best["model"],
        "best_single": None if best_single is None else best_single["model"],
        "fusion_gain": None
        if best_single is None or best_fused is None
        else best_fused[key] - best_single[key],
    }


# ---- reporting -----------------------------------------------------------------------------


def format_table(results: dict[str, Any]) -> str:
    """The comparison as a text table; the best model by the ranking metric is starred."""
    key = results["metric"]
    header = ["model", "modalities", "accuracy", "macro-F1", "fit s", "predict ms/row"]
    lines = []
    for r in results["models"]:
        mark = " *" if r["model"] == results["best"] else ""
        lines.append([r["model"] + mark, "+".join(r["columns"]), f"{r['accuracy']:.3f}",
                      f"{r['macro_f1']:.3f}", f"{r['fit_seconds']:.1f}",
                      f"{r['predict_ms_per_row']:.3f}"])  # fmt: skip
    widths = [max(len(x) for x in col) for col in zip(header, *lines, strict=True)]
    out = []
    for i, row in enumerate([header, *lines]):
        cells = [c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in
                 enumerate(zip(row, widths, strict=True))]  # fmt: skip
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    metric = "accuracy" if key == "accuracy" else "macro-F1"
    out.append(f"* best by {metric}")
    if results["fusion_gain"] is not None:
        gain = results["fusion_gain"]
        verb = "beats" if gain > 0 else "does not beat"
        out.append(f"the best fusion {verb} the best single modality "
                   f"({results['best_single']}) by {100 * gain:+.1f} points of {metric}")  # fmt: skip
    return "\n".join(out)


def _atomic_write(path: Path, write: Any) -> None:
    """``write(tmp_path)`` then rename onto ``path``; nothing is left half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(results: dict[str, Any], path: Path) -> None:
    """Write the numbers as JSON, atomically."""
    text = json.dumps(results, indent=2) + "\n"
    _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_plot(results: dict[str, Any], path: Path) -> None:
    """Write a bar chart of accuracy and macro-F1 per model as PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows = results["models"]
    colour = {"single": "#9e9e9e", "fusion": "#1f77b4"}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.4), dpi=100)
    width = 0.38
    for k, key in enumerate(("accuracy", "macro_f1")):
        bars = ax.bar(
            [i + (k - 0.5) * width for i in range(len(rows))],
            [r[key] for r in rows],
            width,
            color=[colour[r["kind"]] for r in rows],
            alpha=1.0 if k == 0 else 0.5,
            hatch=None if k == 0 else "//",
            edgecolor="black",
            linewidth=0.4,
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    labels = [r["model"] + ("\n(best)" if r["model"] == results["best"] else "") for r in rows]
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    for tick, r in zip(ax.get_xticklabels(), rows, strict=True):
        if r["model"] == results["best"]:
            tick.set_fontweight("bold")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel(f"score on {results['n_test']} held-out rows")
    ax.set_title(f"mmsk demo: {results['dataset']}, one modality vs fused", fontsize=10)
    ax.legend(
        handles=[
            Patch(color=colour["single"], label="one modality"),
            Patch(color=colour["fusion"], label="fused"),
            Patch(facecolor="white", edgecolor="black", label="accuracy"),
            Patch(facecolor="white", edgecolor="black", hatch="//", label="macro-F1"),
        ],
        fontsize=7,
        ncols=4,
        loc="upper left",
    )
    fig.tight_layout()
    try:
        _atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def equivalent_python(args: Any, recipe: Recipe, columns: list[str], best: str) -> str:
    """The public API calls the demo made, as a script a user can copy."""
    kinds = sorted({type(recipe.steps[c]).__name__ for c in columns} | {"ModalityPreprocessor"})
    params = ", ".join(f"{k}={v!r}" for k, v in _fit_params(recipe, args).items())
    steps = ",\n".join(f"        {c!r}: {recipe.steps[c]!r}" for c in columns)
    fusions = ", ".join(repr(f) for f in args.fusion)
    return f'''\
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from mmsk import MultimodalClassifier
from mmsk.datasets import {recipe.loader}
from mmsk.preprocessing import {", ".join(kinds)}

data = {recipe.loader}()
y = {recipe.target_code}
X_train, X_test, y_train, y_test = train_test_split(
    data.data, y, test_size={args.test_size!r}, stratify=y, random_state={args.seed!r}
)


def preprocessor(columns):
    steps = {{
{steps},
    }}
    return ModalityPreprocessor([(c, steps[c], c) for c in columns])


def report(name, clf, columns):
    clf.fit(X_train[columns], y_train)
    pred = clf.predict(X_test[columns])
    print(name, accuracy_score(y_test, pred), f1_score(y_test, pred, average="macro"))


settings = dict({params})
for column in {columns!r}:  # one modality at a time
    clf = MultimodalClassifier(preprocessor=preprocessor([column]), **settings)
    report(column + " only", clf, [column])
for fusion in [{fusions}]:  # all modalities, fused (best here: {best})
    clf = MultimodalClassifier(preprocessor=preprocessor({columns!r}), fusion=fusion, **settings)
    report("fusion=" + fusion, clf, {columns!r})
'''


# ---- entry point ---------------------------------------------------------------------------


def _load_backend_quietly() -> None:
    """Import TensorFlow with the C++ library's start-up notices (fd 2) silenced.

    TensorFlow's native code prints absl/oneDNN notices on import whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says; a Python error still surfaces as usual.
    """
    from mmsk import _backend

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2: nothing to silence
        _backend.keras()
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                _backend.keras()
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 on success, 130 when interrupted (Ctrl-C), 1 on an error."""
    progress = Progress(sys.stderr, 0, args.verbose)
    try:
        return _run(args, progress)
    except KeyboardInterrupt:
        progress.close()
        print(f"mmsk demo: interrupted; no results were written to {args.output}",
              file=sys.stderr, flush=True)  # fmt: skip
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, progress: Progress) -> int:
    if not 0 < args.test_size < 1:
        print(f"mmsk demo: --test-size must be between 0 and 1; got {args.test_size}",
              file=sys.stderr)  # fmt: skip
        return 2
    recipe = recipes()[args.dataset]
    import mmsk.datasets

    print(f"mmsk demo: loading {args.dataset} ...", flush=True)
    data = getattr(mmsk.datasets, recipe.loader)()
    y = recipe.target(data)
    columns = list(data.data.columns)
    n_classes = len(set(y.tolist() if hasattr(y, "tolist") else y))
    print(f"{args.dataset}: {len(y)} rows, {n_classes} classes, modalities "
          + ", ".join(f"{c} ({type(recipe.steps[c]).__name__})" for c in columns), flush=True)  # fmt: skip
    if args.verbose:
        print(data.DESCR.split("\n\n")[0], flush=True)
    if not args.verbose:
        _load_backend_quietly()
    progress.n_models = len(columns) + len(args.fusion)
    print(f"training {progress.n_models} models for {args.epochs} epochs each "
          f"(progress on stderr) ...", flush=True)  # fmt: skip
    results = compare(args, recipe, progress, data, y)
    print()
    print(format_table(results))
    out = Path(args.output)
    try:
        write_json(results, out / RESULTS_FILE)
        written = [out / RESULTS_FILE]
        try:
            write_plot(results, out / PLOT_FILE)
            written.append(out / PLOT_FILE)
        except ImportError:
            print("mmsk demo: matplotlib is not installed, so no comparison.png "
                  "(pip install matplotlib)", file=sys.stderr)  # fmt: skip
    except OSError as exc:
        print(f"mmsk demo: cannot write results to {out}: {exc}", file=sys.stderr)
        return 1
    print("\nwrote " + ", ".join(str(p) for p in written))
    print("\n# The same in Python (mmsk's public API):")
    print(equivalent_python(args, recipe, columns, results["best"]))
    return 0
