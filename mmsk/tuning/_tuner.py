"""The Keras Tuner side of a search: oracles, and a tuner whose trials are CV runs.

Keras Tuner's ``BaseTuner`` brings the oracle loop, saving and reloading the
search in ``directory/project_name``, and the distributed chief/worker mode
(``KERASTUNER_*`` environment variables).  Its trials here run sklearn's
``evaluate_candidates`` on one candidate.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import time
from collections.abc import Callable
from typing import Any

import keras_tuner as kt
from keras_tuner.engine import base_tuner
from keras_tuner.engine.trial import Trial

from mmsk.tuning._callbacks import TrialRecord

OBJECTIVE = "score"  # the oracle maximises the mean CV score of the search's metric


def make_oracle(search: Any, hyperparameters: Any, seed: int | None) -> Any:
    """The oracle named by ``search.tuner``, maximising :data:`OBJECTIVE`."""
    common = dict(
        objective=kt.Objective(OBJECTIVE, direction="max"),
        hyperparameters=hyperparameters,
        allow_new_entries=False,
        tune_new_entries=False,
        seed=seed,
        max_consecutive_failed_trials=search.max_consecutive_failed_trials,
    )
    if search.tuner == "hyperband":
        return kt.oracles.HyperbandOracle(
            max_epochs=search._max_epochs, factor=search.factor,
            hyperband_iterations=search.hyperband_iterations, **common,
        )  # fmt: skip
    oracle_class = {
        "random": kt.oracles.RandomSearchOracle,
        "bayesian": kt.oracles.BayesianOptimizationOracle,
        "grid": kt.oracles.GridSearchOracle,
    }[search.tuner]
    return oracle_class(max_trials=search.max_trials, **common)


class SearchTuner(base_tuner.BaseTuner):
    """Runs each trial as ``evaluate(trial)``, a cross-validation of one candidate."""

    def __init__(
        self, oracle: Any, directory: str, project_name: str, overwrite: bool, quiet: bool
    ) -> None:
        out = io.StringIO() if quiet else None
        with contextlib.redirect_stdout(out) if out else contextlib.nullcontext():
            super().__init__(oracle, directory=directory, project_name=project_name,
                             overwrite=overwrite)  # fmt: skip
        self.describe: Callable[[Any], TrialRecord] = lambda t: TrialRecord(t.trial_id)
        self.on_begin: Callable[[TrialRecord], None] = lambda record: None
        self.on_end: Callable[[TrialRecord], None] = lambda record: None
        self.records: dict[str, TrialRecord] = {}
        self._started: dict[str, float] = {}

    @property
    def is_worker(self) -> bool:
        return self._is_worker()

    def run_trial(self, trial: Any, evaluate: Callable[[Any, TrialRecord], None]) -> dict:
        record = self.records[trial.trial_id]
        evaluate(trial, record)
        if record.status == "FAILED":
            raise kt.errors.FailedTrialError(record.error or "the trial failed")
        return {OBJECTIVE: record.score}

    def on_trial_begin(self, trial: Any) -> None:
        self._started[trial.trial_id] = time.perf_counter()
        record = self.records[trial.trial_id] = self.describe(trial)
        self.on_begin(record)

    def on_trial_end(self, trial: Any) -> None:
        record = self.records[trial.trial_id]
        if record.status == "RUNNING":  # raised outside the cross-validation
            lines = (trial.message or "the trial failed").strip().splitlines()
            record.status, record.error = "FAILED", lines[-1]
        started = self._started.pop(trial.trial_id, time.perf_counter())
        record.duration = time.perf_counter() - started
        try:
            super().on_trial_end(trial)  # the oracle records it; may stop the search
        finally:
            self.on_end(record)

    def finished_trials(self) -> list[Any]:
        """Trials that completed or failed, in the order they were created.

        A distributed worker has no oracle of its own: it reads the trials the
        chief has saved in the (shared) project folder.
        """
        if self.is_worker:
            trials = []
            for path in glob.glob(os.path.join(self.project_dir, "trial_*", "trial.json")):
                try:
                    trials.append(Trial.load(path))
                except (OSError, ValueError, KeyError):
                    continue  # being written by the chief right now
        else:
            trials = list(self.oracle.trials.values())
        done = {"COMPLETED", "FAILED"}
        trials = [t for t in trials if t.status in done]
        return sorted(trials, key=lambda t: (len(str(t.trial_id)), str(t.trial_id)))


def is_chief() -> bool:
    """Whether this process serves the oracle to distributed workers."""
    from keras_tuner.src.distribute import utils

    return bool(utils.is_chief_oracle())


FatalError = kt.errors.FatalError
