"""``python -m mmsk demo``: fit single-modality baselines and fusions on bundled data, compare.

Loads a data set from :mod:`mmsk.datasets`, splits it (stratified, seeded),
fits one :class:`~mmsk.MultimodalClassifier` per modality column and one per
fusion strategy on all columns, and reports accuracy, macro-F1, fit time and
predict time per row.  It writes ``results.json`` and ``comparison.png`` into
``--output``, with ``example.py``, the Python that does the same through mmsk's
public API (atomically: all or none, temporary files renamed into place).  The
table is printed last, so it is what a terminal shows when the run ends.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmsk._demo._compare import compare, recipes
from mmsk._demo._progress import Interrupt, Progress
from mmsk._demo._report import equivalent_python, format_table, write_files, write_json, write_plot
from mmsk.exceptions import MmskError

FUSIONS = ("concat", "sum", "attention", "gated", "late")
DATASETS = ("av_digits", "icons")  # the keys of recipes(), listed without importing mmsk's parts
RESULTS_FILE = "results.json"
PLOT_FILE = "comparison.png"
SCRIPT_FILE = "example.py"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
# Plain text for --help (the module docstring is reST for the API docs).
DESCRIPTION = (
    "Train one model per modality column and one per fusion on a bundled data set, then "
    "compare accuracy, macro-F1, fit time and predict time per row. Writes results.json "
    "and comparison.png into --output (both or neither) and the same run as a Python "
    "script that uses mmsk's public API."
)


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


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1; got {text!r}")
    return value


def add_parser(commands: Any) -> None:
    """Register the ``demo`` sub-command."""
    p = commands.add_parser(
        "demo",
        help="train and compare single-modality and fused models on bundled data",
        description=DESCRIPTION,
    )
    p.add_argument(
        "--dataset",
        default="av_digits",
        choices=DATASETS,
        help="bundled data set (default: av_digits)",
    )
    p.add_argument(
        "--fusion",
        type=_fusions,
        default=list(FUSIONS),
        metavar="LIST",
        help=f"comma-separated fusions to compare, or 'all' (default: all: {','.join(FUSIONS)})",
    )
    p.add_argument("--epochs", type=_positive, default=15, help="epochs per model (default: 15)")
    p.add_argument(
        "--output",
        type=Path,
        default=Path("mmsk-demo"),
        help="folder for results.json and comparison.png (./mmsk-demo)",
    )
    p.add_argument("--seed", type=int, default=0, help="split and training seed (default: 0)")
    p.add_argument(
        "--test-size", type=_fraction, default=0.25, help="held-out fraction (default: 0.25)"
    )
    p.add_argument(
        "--verbose", action="store_true", help="describe the data and print every epoch's loss"
    )
    p.set_defaults(run=run)


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


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 on success, 130 when interrupted (Ctrl-C), 1 on an error."""
    progress = Progress(sys.stderr, 0, args.verbose)
    Interrupt.requested = False
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler:  # leave a deliberate SIG_IGN alone
        signal.signal(signal.SIGINT, Interrupt.handler)
    try:
        return _run(args, progress)
    except MmskError as exc:  # a clear message; --verbose shows the traceback too
        progress.close()
        if not Interrupt.requested:
            if args.verbose:
                raise
            print(f"mmsk demo: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return 1
        # A Ctrl-C that landed inside TensorFlow's C code can surface as another error
        # (a SystemError, then wrapped as a training error): it is still an interrupt.
        return _interrupted(args)
    except KeyboardInterrupt:
        progress.close()
        return _interrupted(args)
    finally:
        if previous is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous)


def _interrupted(args: argparse.Namespace) -> int:
    print(f"mmsk demo: interrupted; no results were written to {args.output}",
          file=sys.stderr, flush=True)  # fmt: skip
    return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, progress: Progress) -> int:
    recipe = recipes()[args.dataset]
    import mmsk.datasets

    print(f"mmsk demo: loading {args.dataset} ...", flush=True)
    data = getattr(mmsk.datasets, recipe.loader)()
    y = recipe.target(data)
    columns = list(data.data.columns)
    n_classes = len(set(y.tolist() if hasattr(y, "tolist") else y))
    kinds = ", ".join(f"{c} ({type(recipe.steps[c]).__name__})" for c in columns)
    print(f"{args.dataset}: {len(y)} rows, {n_classes} classes, modalities {kinds}", flush=True)
    if args.verbose:  # the DESCR's title and first paragraph
        paragraphs = [p for p in data.DESCR.split("\n\n") if not p.startswith("..")]
        print("\n\n".join(paragraphs[:2]) + "\n", flush=True)
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ notices
        _load_backend_quietly()
    progress.n_models = len(columns) + len(args.fusion)
    print(
        f"training {progress.n_models} models for {args.epochs} "
        f"epoch{'' if args.epochs == 1 else 's'} each "
        f"(progress on stderr) ...",
        flush=True,
    )
    results = compare(args, recipe, progress, data, y)
    Interrupt.check()
    out = Path(args.output)
    code = "# The demo's run with mmsk's public API\n" + equivalent_python(
        args, recipe, columns, results["best"]
    )
    files: dict[Path, Callable[[Path], None]] = {
        out / RESULTS_FILE: lambda path: write_json(results, path),
        out / SCRIPT_FILE: lambda path: _write_text(path, code + "\n"),
    }
    try:
        import matplotlib  # noqa: F401

        files[out / PLOT_FILE] = lambda path: write_plot(results, path)
    except ImportError:
        print(
            "mmsk demo: matplotlib is not installed, so no comparison.png "
            "(pip install matplotlib)",
            file=sys.stderr,
        )
    try:
        written = write_files(files)
    except OSError as exc:
        print(f"mmsk demo: cannot write results to {out}: {exc}", file=sys.stderr)
        return 1
    print("\nwrote " + ", ".join(str(p) for p in written))
    print(f"{out / SCRIPT_FILE} does the same with mmsk's public API")
    # The table last, so it is what a terminal shows when the run ends.
    print()
    print(format_table(results))
    return 0
