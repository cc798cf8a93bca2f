"""The demo's table, files (written atomically) and equivalent Python."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmsk._demo._compare import Recipe, _fit_params


def format_table(results: dict[str, Any]) -> str:
    """The comparison as a text table; the best model by the ranking metric is starred."""
    key = results["metric"]
    header = ["model", "modalities", "accuracy", "macro-F1", "fit s", "predict ms/row"]
    lines = []
    for r in results["models"]:
        mark = " *" if r["model"] == results["best"] else ""
        lines.append(
            [
                r["model"] + mark,
                "+".join(r["columns"]),
                f"{r['accuracy']:.3f}",
                f"{r['macro_f1']:.3f}",
                f"{r['fit_seconds']:.1f}",
                f"{r['predict_ms_per_row']:.3f}",
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(header, *lines, strict=True)]
    out = []
    for i, row in enumerate([header, *lines]):
        cells = [
            c.ljust(w) if j < 2 else c.rjust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    metric = "accuracy" if key == "accuracy" else "macro-F1"
    out.append(f"* best by {metric}")
    if results["fusion_gain"] is not None:
        gain = 100 * results["fusion_gain"]
        verb = "beats" if gain > 0 else "trails"
        single = results["best_single"]
        out.append(
            f"the best fusion {verb} the best single modality ({single}) "
            f"by {abs(gain):.1f} points of {metric}"
        )
    return "\n".join(out)


def write_files(files: dict[Path, Callable[[Path], None]]) -> list[Path]:
    """Write each file atomically, all or none: every ``write(tmp)`` first, then the renames.

    An error or a Ctrl-C before the renames leaves no file behind, not even
    a temporary one.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, write in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            staged.append((tmp, path))
            write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        for tmp, path in staged:
            os.chmod(tmp, 0o666 & ~umask)  # as open() would make it, not mkstemp's 0600
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return list(files)


def write_json(results: dict[str, Any], path: Path) -> None:
    """Write the numbers as JSON (use :func:`write_files` for an atomic write)."""
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def write_plot(results: dict[str, Any], path: Path) -> None:
    """Write a bar chart of accuracy and macro-F1 per model as PNG."""
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
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def equivalent_python(args: Any, recipe: Recipe, columns: list[str], best: str) -> str:
    """The public API calls the demo made, as a script a user can copy."""
    kinds = sorted({type(recipe.steps[c]).__name__ for c in columns} | {"ModalityPreprocessor"})
    nested = [v for p in recipe.params.values() if isinstance(p, dict) for v in p.values()]
    components = sorted({type(v).__name__ for v in nested})
    from_components = (
        f"from mmsk.components import {', '.join(components)}\n" if components else ""
    )
    params = ", ".join(f"{k}={v!r}" for k, v in _fit_params(recipe, args).items())
    steps = ",\n".join(f"        {c!r}: {recipe.steps[c]!r}" for c in columns)
    fusions = ", ".join(repr(f) for f in args.fusion)
    return f"""\
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from mmsk import MultimodalClassifier
{from_components}from mmsk.datasets import {recipe.loader}
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
for fusion in [{fusions}]:  # all modalities, fused
    clf = MultimodalClassifier(preprocessor=preprocessor({columns!r}), fusion=fusion, **settings)
    report("fusion=" + fusion, clf, {columns!r})
# best in the demo: {best}
"""
