"""The demo's data-set recipes and the comparison of single-modality and fused models."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmsk._demo._progress import Interrupt, Progress, progress_callback


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
    from mmsk.components import CNNEncoder
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
            # char_ngrams="auto" as the estimators' default text step: short names
            steps={"icon": ImagePreprocessor(size=32), "name": TextVectorizer(char_ngrams="auto")},
            metric="macro_f1",  # classes of 48 to 300 icons
            # a third conv block: 32x32 icons give the default two blocks too little to see
            params={"encoders": {"image": CNNEncoder(blocks=3)}, "learning_rate": 3e-3},
        ),
    }


def _models(columns: list[str], fusions: list[str]) -> list[tuple[str, list[str], str | None]]:
    """(label, columns, fusion or None) of every model to fit."""
    single = [(f"{c} only", [c], None) for c in columns]
    return single + [(f"fusion={f}", columns, f) for f in fusions]


def _estimator(
    recipe: Recipe, columns: list[str], fusion: str | None, args: Any, callbacks: list[Any]
) -> Any:
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
    print(
        f"split: {len(X_train)} rows to train, {len(X_test)} to test "
        f"(stratified, random_state={args.seed})",
        flush=True,
    )
    columns = list(X.columns)
    rows: list[dict[str, Any]] = []
    for label, cols, fusion in _models(columns, args.fusion):
        Interrupt.check()
        progress.begin(label)
        clf = _estimator(recipe, cols, fusion, args, [progress_callback(progress)])
        start = time.perf_counter()
        clf.fit(X_train[cols], y_train)
        fit_seconds = time.perf_counter() - start
        scores = _evaluate(clf, X_test[cols], y_test)
        row = {
            "model": label,
            "kind": "single" if fusion is None else "fusion",
            "fusion": fusion,
            "columns": cols,
            **scores,
            "fit_seconds": fit_seconds,
            "epochs": int(clf.n_epochs_),
        }
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
        "n_classes": len(set(y_test)),
        "settings": {
            "epochs": args.epochs,
            "seed": args.seed,
            "test_size": args.test_size,
            **{k: _jsonable(v) for k, v in recipe.params.items()},
        },
        "models": rows,
        "best": best["model"],
        "best_single": None if best_single is None else best_single["model"],
        "fusion_gain": None
        if best_single is None or best_fused is None
        else best_fused[key] - best_single[key],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
