"""Hyperband through KerasTunerSearchCV against GridSearchCV over the same grid.

Both search the same grid of settings for a MultimodalClassifier on the
bundled audio-visual digits (image + audio).  GridSearchCV trains every
candidate for ``--max-epochs`` epochs on every fold; Hyperband spends epochs
as its budget, stops weak settings after 1 or 3 epochs and continues the
promising ones.  Printed: best CV score, the refit model's score on held-out
rows, epochs trained (folds and refit) and wall time, with Hyperband's
ratios to GridSearchCV.

Goal: GridSearchCV's best score with at most a third of its epochs.

usage: python bench/tuning.py [--quick] [--rows N] [--max-epochs E] [--cv K]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import load_warning, versions

GRID = {"learning_rate": [1e-3, 3e-3, 1e-2, 3e-2], "head_units": [16, 64, 128]}


def hyperband_epochs(directory: str, n_folds: int) -> int:
    """Epochs Hyperband trained over all folds: a continued trial counts only its new ones."""
    from keras_tuner.engine.trial import Trial

    total = 0
    for path in glob.glob(os.path.join(directory, "*", "trial_*", "trial.json")):
        trial = Trial.load(path)
        if trial.status != "COMPLETED":
            continue
        values = trial.hyperparameters.values
        start = values.get("tuner/initial_epoch", 0) if "tuner/trial_id" in values else 0
        total += (values["tuner/epochs"] - start) * n_folds
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="training rows (default 900)")
    parser.add_argument("--max-epochs", type=int, default=9, help="epochs of a full run")
    parser.add_argument("--cv", type=int, default=3, help="folds (default 3)")
    parser.add_argument("--quick", action="store_true", help="400 rows, 2 folds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = args.rows or (400 if args.quick else 900)
    cv = 2 if args.quick and args.cv == 3 else args.cv

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(load_warning())
    from sklearn.model_selection import GridSearchCV, ParameterGrid, train_test_split

    from mmsk import KerasTunerSearchCV, ModalityPreprocessor, MultimodalClassifier
    from mmsk.datasets import load_av_digits
    from mmsk.preprocessing import AudioFeaturizer, ImagePreprocessor

    print(versions())
    X, y = load_av_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=rows, test_size=min(600, len(X) - rows), stratify=y,
        random_state=args.seed,
    )  # fmt: skip
    # The demo's preprocessing: the digits at their own 8x8 grey, speech at 8 kHz.
    prep = ModalityPreprocessor([
        ("image", ImagePreprocessor(size=8, color_mode="grayscale"), "image"),
        ("audio", AudioFeaturizer(sample_rate=8000, n_mels=32), "audio"),
    ])  # fmt: skip
    estimator = MultimodalClassifier(
        preprocessor=prep, epochs=args.max_epochs, batch_size=16, random_state=args.seed
    )
    n_grid = len(ParameterGrid(GRID))
    print(f"{rows} training rows, {len(X_test)} held out, {cv} folds, grid of {n_grid}, "
          f"max {args.max_epochs} epochs")  # fmt: skip

    start = time.perf_counter()
    grid = GridSearchCV(estimator, GRID, cv=cv).fit(X_train, y_train)
    grid_wall = time.perf_counter() - start
    grid_epochs = n_grid * cv * args.max_epochs + args.max_epochs

    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        hb = KerasTunerSearchCV(
            estimator, GRID, tuner="hyperband", max_epochs=args.max_epochs, factor=3, cv=cv,
            directory=directory, project_name="hb", random_state=args.seed, progress=False,
        ).fit(X_train, y_train)  # fmt: skip
        hb_wall = time.perf_counter() - start
        hb_epochs = hyperband_epochs(directory, cv) + hb.best_params_["epochs"]

    rows_out = [
        ("GridSearchCV", grid.best_score_, grid.score(X_test, y_test), grid_epochs, grid_wall,
         len(grid.cv_results_["params"])),
        ("Hyperband", hb.best_score_, hb.score(X_test, y_test), hb_epochs, hb_wall,
         len(hb.cv_results_["params"])),
    ]  # fmt: skip
    print(f"\n{'search':<14}{'trials':>7}{'best CV':>9}{'held-out':>10}{'epochs':>8}{'wall s':>9}")
    for name, cv_score, test, epochs, wall, trials in rows_out:
        print(f"{name:<14}{trials:>7}{cv_score:>9.3f}{test:>10.3f}{epochs:>8}{wall:>9.1f}")
    gap = hb.best_score_ - grid.best_score_
    print(f"\nHyperband / GridSearchCV: epochs {hb_epochs / grid_epochs:.2f} (goal <= 0.33), "
          f"wall {hb_wall / grid_wall:.2f}, best CV score {gap:+.3f}, "
          f"held-out score {rows_out[1][2] - rows_out[0][2]:+.3f}")  # fmt: skip
    print(f"GridSearchCV best: {grid.best_params_}\nHyperband best:    {hb.best_params_}")


if __name__ == "__main__":
    main()
