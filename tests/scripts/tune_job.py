"""A small search run as its own process by the resume and distributed tests.

usage: tune_job.py MODE DIRECTORY OUT [--kill-at-fit N] [--max-trials N]
MODE is "search" (KerasTunerSearchCV over a LogisticRegression: the search's resume and
distribution are under test, not Keras fits) or "hypermodel" (to_hypermodel +
kt.RandomSearch, Keras models).
Writes what the process saw as JSON to OUT.  Keras Tuner's distributed mode is
switched on by the KERASTUNER_* environment variables the test sets.
"""

from __future__ import annotations

import argparse
import json
import os
import signal

import numpy as np
from sklearn.linear_model import LogisticRegression

from mmsk import KerasTunerSearchCV, MultimodalClassifier
from mmsk.tuning import Float, SearchCallback

FITS = 0
KILL_AT = 0


def counted(fit):
    """``fit`` that counts fits in this process and kills it at fit number KILL_AT.

    Wraps the class's own fit rather than subclassing it, so fold models keep
    their class, which the search keeps with mmsk.save (a class defined here
    would not be kept, and a resumed search would train it again).
    """

    def counted_fit(self, X, y=None, **kw):
        global FITS
        FITS += 1
        if FITS == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)  # as hard as a power cut
        return fit(self, X, y, **kw)

    return counted_fit


MultimodalClassifier.fit = counted(MultimodalClassifier.fit)
LogisticRegression.fit = counted(LogisticRegression.fit)


class Log(SearchCallback):
    def __init__(self):
        self.begun, self.ended = [], {}

    def on_trial_begin(self, search, trial):
        self.begun.append(trial.trial_id)

    def on_trial_end(self, search, trial):
        self.ended[trial.trial_id] = trial.score


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return X, (X[:, 0] - X[:, 1] > 0).astype(int)


def main() -> None:
    global KILL_AT
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["search", "hypermodel"])
    parser.add_argument("directory")
    parser.add_argument("out")
    parser.add_argument("--kill-at-fit", type=int, default=0)
    parser.add_argument("--max-trials", type=int, default=4)
    args = parser.parse_args()
    KILL_AT = args.kill_at_fit
    X, y = data()
    if args.mode == "search":
        log = Log()
        space = {"C": Float(1e-2, 10.0, sampling="log"), "fit_intercept": [True, False]}
        search = KerasTunerSearchCV(
            LogisticRegression(), space, tuner="random", max_trials=args.max_trials, cv=2,
            directory=args.directory, project_name="job", random_state=0,
            callbacks=[log], progress=False,
        ).fit(X, y)  # fmt: skip
        result = {
            "trial_ids": [str(t) for t in search.cv_results_["trial_id"]],
            "scores": [float(s) for s in search.cv_results_["mean_test_score"]],
            "begun": log.begun,
            "ended": log.ended,
            "fits": FITS,
        }
    else:
        import keras_tuner as kt

        space = {"learning_rate": Float(1e-3, 3e-2, sampling="log"), "head_units": [4, 8]}
        estimator = MultimodalClassifier(epochs=1, head_units=4, random_state=0)
        hm = estimator.to_hypermodel(space, X, y)
        tuner = kt.RandomSearch(hm, objective="val_loss", max_trials=args.max_trials, seed=0,
                                directory=args.directory, project_name="hm")  # fmt: skip
        tuner.search(X[:40], y[:40], validation_data=(X[40:], y[40:]), epochs=1, verbose=0)
        trials = getattr(tuner.oracle, "trials", {})
        result = {"trials": {t.trial_id: t.status for t in trials.values()}, "fits": FITS}
    with open(args.out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
