"""Quality of mmsk's defaults against strong classical baselines on real tasks (issue 13).

For every task, on the same train/test split: the classical baselines of
``bench/_baselines.py`` (text, image, audio, tabular, concat, boosted; each a small
3-fold ``GridSearchCV`` on the training split), the hand-written Keras twin of
mmsk's default network (``bench/_twin.py``) and
``MultimodalClassifier(random_state=seed)`` / ``MultimodalRegressor`` with
every default, fitted on the raw training DataFrame.  Prints a table
(accuracy and macro-F1, or R² and MAE; mmsk minus the best classical
baseline; mmsk minus the best single-modality baseline; fit seconds), writes
JSON and a PNG chart.

Tasks (``bench/_quality_tasks.py``; ``from _quality_tasks import load_task,
task_names``, with ``bench/`` on ``sys.path``)::

    task = load_task("icons", seed=0, quick=False)
    task.X_train, task.X_test   # DataFrames of raw columns (uint8 images, str, numbers, category)
    task.y_train, task.y_test   # NumPy targets
    task.kind                   # "classification" or "regression"
    task.modalities             # {column: "image" | "text" | "audio" | "numeric" | "categorical"}
    task.description, task.source, task.licence, task.info

Tasks: av_digits, icons (shipped with mmsk), glyphs, debian_section,
debian_size (built by ``bench/data/build_*.py``).

Usage::

    python bench/quality.py                          # every task, baselines, 1 seed
    python bench/quality.py --quick                  # 500/400 rows per task: a smoke run
    python bench/quality.py --tasks icons,glyphs --label after
    python bench/quality.py --label after --baselines-from bench/results/quality-before.json
    python bench/quality.py --label after --baselines-from ... --twin   # rerun the twin only
    python bench/quality.py --seeds 3                # seeds 0, 1, 2 (split and model)
    python bench/quality.py --seeds 3 --no-twin      # the same without the Keras twin
    python bench/quality.py --params '{"epochs": 20}'   # extra mmsk settings to try

``--baselines-from`` reuses the baseline numbers (and the twin's, unless
``--twin``) of an earlier JSON for the same tasks, seeds and ``--quick``, so
that only mmsk is fitted; a task or seed missing from it gets its baselines
fitted, and so does a baseline the file lacks (one added since).
``--skip-baselines`` fits mmsk only (and reuses what ``--baselines-from`` has).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np

# bench/ is sys.path[0]
from _baselines import COMBINED, SINGLE, baseline_names, metrics, run_baselines
from _common import load_warning, versions
from _quality_tasks import Task, load_task, task_names
from _twin import fit_predict_twin

RESULTS = Path(__file__).with_name("results")
CLASSICAL = (*SINGLE, *COMBINED)
COLUMNS = (*CLASSICAL, "twin", "mmsk")


def primary(kind: str) -> tuple[str, str]:
    """(main metric, second metric) of a task kind; the main one is higher-is-better."""
    return ("accuracy", "macro_f1") if kind == "classification" else ("r2", "mae")


def run_mmsk(task: Task, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """Fit mmsk with its defaults (plus ``params``) on the raw training frame; score on test."""
    from mmsk import MultimodalClassifier, MultimodalRegressor

    cls = MultimodalClassifier if task.kind == "classification" else MultimodalRegressor
    est = cls(random_state=seed, **params)
    start = time.perf_counter()
    est.fit(task.X_train, task.y_train)
    seconds = time.perf_counter() - start
    pred = est.predict(task.X_test)
    out: dict[str, Any] = {**metrics(task.kind, task.y_test, pred), "fit_s": seconds}
    encoders = getattr(est, "encoders_", None)
    if encoders is not None:
        out["encoders"] = {k: type(v).__name__ for k, v in dict(encoders).items()}
    history = getattr(getattr(est, "model_", None), "history", None)
    epochs = getattr(history, "epoch", None)
    if epochs:
        out["epochs_run"] = len(epochs)
    chosen = getattr(est, "linear_blend_", None)
    if chosen:  # what the linear blend chose: its model and the two weights
        out["blend"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in chosen.items()}
    return out


def run_twin(task: Task, seed: int) -> dict[str, Any]:
    pred, seconds = fit_predict_twin(task, seed)
    return {**metrics(task.kind, task.y_test, pred), "fit_s": seconds}


def _reused(previous: dict[str, Any] | None, task: str, seed: int) -> dict[str, Any]:
    if previous is None:
        return {}
    for run in previous.get("tasks", {}).get(task, {}).get("runs", []):
        if run["seed"] == seed:
            return {k: v for k, v in run["results"].items() if k != "mmsk"}
    return {}


def summarize(kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean (and sd over seeds) of each method's metrics, plus the gaps of mmsk."""
    main, second = primary(kind)
    methods = sorted({m for r in runs for m in r["results"]}, key=_order)
    out: dict[str, Any] = {}
    for m in methods:
        vals = [r["results"][m] for r in runs if m in r["results"]]
        out[m] = {
            k: statistics.fmean(v[k] for v in vals)
            for k in (main, second, "fit_s")
            if k in vals[0]
        }
        if len(vals) > 1:
            out[m][main + "_sd"] = statistics.stdev(v[main] for v in vals)
    if "mmsk" in out:
        for label, pool in (("best_baseline", CLASSICAL), ("best_single", SINGLE)):
            names = [m for m in pool if m in out]
            if names:
                best = max(names, key=lambda m: out[m][main])
                out[label] = {
                    "name": best,
                    main: out[best][main],
                    "mmsk_minus": out["mmsk"][main] - out[best][main],
                }
    return out


def _order(method: str) -> int:
    return COLUMNS.index(method) if method in COLUMNS else len(COLUMNS)


def print_table(report: dict[str, Any]) -> None:
    """One row per task and metric; gaps and fit seconds on the main metric's row."""
    head = f"{'task':15s} {'metric':9s}" + "".join(f"{c:>8s}" for c in COLUMNS)
    head += f"{'-best':>8s} {'(of)':8s}{'-single':>8s} {'(of)':8s}{'mmsk s':>7s}{'twin s':>7s}"
    print(head)
    print("-" * len(head))
    for name, entry in report["tasks"].items():
        s = entry["summary"]
        for i, metric in enumerate(primary(entry["kind"])):
            cells = "".join(
                f"{s[c][metric]:8.3f}" if c in s and metric in s[c] else f"{'-':>8s}"
                for c in COLUMNS
            )
            line = f"{name if i == 0 else '':15s} {metric:9s}{cells}"
            if i == 0:
                for key in ("best_baseline", "best_single"):
                    gap = s.get(key)
                    line += (
                        f"{gap['mmsk_minus']:+8.3f} {gap['name']:8s}"
                        if gap
                        else f"{'-':>8s} {'':8s}"
                    )
                for m in ("mmsk", "twin"):
                    line += f"{s[m]['fit_s']:7.1f}" if m in s else f"{'-':>7s}"
            print(line)
    print(
        "-best: mmsk minus the best classical baseline (text, image, audio, tabular, concat, "
        "boosted); "
        "-single: mmsk minus the best single-modality baseline; on accuracy or R² "
        "(higher is better; MAE lower is better). s: fit seconds (mean over seeds)."
    )


def markdown_table(report: dict[str, Any]) -> str:
    """The same table in Markdown, main metric then second metric per task."""
    cols = " | ".join(COLUMNS)
    lines = [
        f"| task | metric | {cols} | mmsk - best | mmsk - single | mmsk fit s |",
        "|---|---|" + "---:|" * (len(COLUMNS) + 3),
    ]
    for name, entry in report["tasks"].items():
        s = entry["summary"]
        for i, metric in enumerate(primary(entry["kind"])):
            cells = [f"{s[c][metric]:.3f}" if c in s and metric in s[c] else "-" for c in COLUMNS]
            if "mmsk" in s and metric in s["mmsk"]:
                cells[-1] = f"**{cells[-1]}**"
            gaps = ["", "", ""]
            if i == 0:
                gaps = [
                    f"{s[k]['mmsk_minus']:+.3f} ({s[k]['name']})" if k in s else "-"
                    for k in ("best_baseline", "best_single")
                ] + [f"{s['mmsk']['fit_s']:.0f}" if "mmsk" in s else "-"]
            row = [name if i == 0 else "", metric, *cells, *gaps]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Grouped bars of the main metric, one group per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(report["tasks"])
    fig, ax = plt.subplots(figsize=(1.9 * len(tasks) + 2, 4.2))
    width = 0.8 / len(COLUMNS)
    for j, method in enumerate(COLUMNS):
        xs, ys = [], []
        for i, name in enumerate(tasks):
            entry = report["tasks"][name]
            main = primary(entry["kind"])[0]
            if method in entry["summary"]:
                xs.append(i + (j - len(COLUMNS) / 2 + 0.5) * width)
                ys.append(entry["summary"][method][main])
        hatch = "//" if method == "mmsk" else None
        ax.bar(xs, ys, width, label=method, hatch=hatch, edgecolor="black", linewidth=0.3)
    labels = [f"{n}\n({primary(report['tasks'][n]['kind'])[0]})" for n in tasks]
    ax.set_xticks(range(len(tasks)), labels)
    lowest = min((b.get_height() for b in ax.patches), default=0.0)
    ax.set_ylim(min(0.0, lowest - 0.05), 1)
    ax.set_ylabel("accuracy or R² on the test split")
    ax.set_title(f"mmsk defaults vs baselines ({report['label']})")
    ax.legend(ncol=len(COLUMNS), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(task_names()))
    parser.add_argument("--label", default="run")
    parser.add_argument("--quick", action="store_true", help="at most 500/400 rows per task")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (split and model)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--baselines-from", type=Path, default=None)
    parser.add_argument("--twin", action="store_true", help="fit the twin even when reusing")
    parser.add_argument("--no-twin", action="store_true", help="never fit the twin")
    parser.add_argument("--params", default="{}", help="JSON of extra mmsk settings")
    args = parser.parse_args(argv)

    import mmsk

    names = [t for t in args.tasks.split(",") if t]
    params = json.loads(args.params)
    previous = json.loads(args.baselines_from.read_text()) if args.baselines_from else None
    if previous is not None and bool(previous.get("quick")) != args.quick:
        parser.error(f"{args.baselines_from} has quick={previous.get('quick')}; this run differs")
    load_before = os.getloadavg()
    print(versions())
    print(f"mmsk from {Path(mmsk.__file__).parent}")
    print(load_warning())
    print(f"tasks {names}, seeds {args.seeds}, quick {args.quick}, mmsk params {params}")
    report: dict[str, Any] = {
        "label": args.label,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "versions": versions(),
        "mmsk_path": str(Path(mmsk.__file__).parent),
        "load_average_before": list(load_before),
        "quick": args.quick,
        "seeds": list(range(args.seeds)),
        "mmsk_params": params,
        "baselines_from": str(args.baselines_from) if args.baselines_from else None,
        "tasks": {},
    }
    wall = time.perf_counter()
    for name in names:
        runs = []
        for seed in range(args.seeds):
            task = load_task(name, seed=seed, quick=args.quick)
            print(
                f"\n{name} (seed {seed}): {len(task.X_train)} train / {len(task.X_test)} test "
                f"rows, {task.modalities}, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            results = _reused(previous, name, seed)
            fit_baselines = not args.skip_baselines and not results
            if results:
                print(f"  baselines reused from {args.baselines_from}: {sorted(results)}")
            missing = [b for b in baseline_names(task) if b not in results]
            if missing and not args.skip_baselines:
                results.update(
                    run_baselines(task, only=missing, log=lambda s: print(s, flush=True))
                )
            if (fit_baselines or args.twin) and not (args.skip_baselines or args.no_twin):
                results["twin"] = run_twin(task, seed)
                print(f"  {name} twin     {_fmt(results['twin'])}", flush=True)
            results["mmsk"] = run_mmsk(task, seed, params)
            print(f"  {name} mmsk     {_fmt(results['mmsk'])}", flush=True)
            runs.append({"seed": seed, "results": results, "load": os.getloadavg()[0]})
        report["tasks"][name] = {
            "kind": task.kind,
            "description": task.description,
            "source": task.source,
            "licence": task.licence,
            "modalities": task.modalities,
            "rows_train": len(task.X_train),
            "rows_test": len(task.X_test),
            "runs": runs,
            "summary": summarize(task.kind, runs),
        }
    report["wall_s"] = time.perf_counter() - wall
    report["load_average_after"] = list(os.getloadavg())
    print()
    print_table(report)
    print("\n" + markdown_table(report))
    print(
        f"\nwall time {report['wall_s'] / 60:.1f} min; load average before "
        f"{load_before[0]:.1f}, after {report['load_average_after'][0]:.1f} (2 cores shared)"
    )
    path = args.json or RESULTS / f"quality-{args.label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=_plain) + "\n")
    plot(report, path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png')}")
    return report


def _fmt(result: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in result.items() if isinstance(v, float)) + "".join(
        f", {k} {v}" for k, v in result.items() if not isinstance(v, float)
    )


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
