"""KerasTunerSearchCV and to_hypermodel on tiny real models."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mmsk import KerasTunerSearchCV, MultimodalClassifier, MultimodalRegressor, load
from mmsk.exceptions import MmskError, ParameterError, UnknownComponentError
from mmsk.tuning import Boolean, Float, Int, SearchCallback, SearchError, TrialRecord
from mmsk.tuning._progress import TextProgress

kt = pytest.importorskip("keras_tuner")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(72, 3))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
    return X, y


def clf(**kw):
    return MultimodalClassifier(**{"epochs": 2, "head_units": 8, "random_state": 0, **kw})


class Recorder(SearchCallback):
    def __init__(self):
        self.events = []

    def on_search_begin(self, search):
        self.events.append(("begin", None, None))

    def on_trial_begin(self, search, trial):
        self.events.append(("trial_begin", trial.trial_id, trial.status))

    def on_trial_end(self, search, trial):
        self.events.append(("trial_end", trial.trial_id, trial.status))

    def on_search_end(self, search):
        self.events.append(("end", None, None))


def test_random_search_gives_sklearn_results_and_a_refit_best(data, tmp_path):
    X, y = data
    rec = Recorder()
    search = KerasTunerSearchCV(
        clf(),
        {"learning_rate": Float(1e-3, 3e-2, sampling="log"), "head_units": [4, 8],
         "early_stopping": Boolean()},
        tuner="random", max_trials=3, cv=2, random_state=0, directory=tmp_path,
        callbacks=[rec], progress=False,
    ).fit(X, y)  # fmt: skip
    res = search.cv_results_
    assert len(res["params"]) == 3
    assert list(res["status"]) == ["COMPLETED"] * 3
    assert all(1e-3 <= p["learning_rate"] <= 3e-2 for p in res["params"])
    assert all(p["head_units"] in (4, 8) for p in res["params"])
    scores = np.asarray(res["mean_test_score"])
    assert search.best_score_ == scores.max()
    assert search.best_params_ == res["params"][int(np.argmax(scores))]
    best = search.best_estimator_
    assert isinstance(best, MultimodalClassifier)
    assert best.get_params()["head_units"] == search.best_params_["head_units"]
    assert search.predict(X).shape == (len(X),)
    # One saved model per trial and fold; the refit is not a fold and is not saved.
    assert len(list(tmp_path.glob("*/trial_*/fold-*.zip"))) == 3 * 2
    assert 0 <= search.score(X, y) <= 1
    assert search.n_features_in_ == 3
    frame = search.results_frame()
    assert list(frame["rank_test_score"]) == sorted(frame["rank_test_score"])
    assert frame.loc[0, "mean_test_score"] == search.best_score_
    assert len(pd.DataFrame(search.cv_results_)) == 3
    kinds = [e[0] for e in rec.events]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    assert kinds.count("trial_begin") == kinds.count("trial_end") == 3
    assert len(search.trials_) == 3 and all(isinstance(t, TrialRecord) for t in search.trials_)


@pytest.mark.slow
def test_pipeline_and_conditional_settings(data):
    X, y = data
    pipe = Pipeline([("scale", StandardScaler()), ("clf", clf())])
    space = {
        "clf__fusion": ["concat", "attention"],
        "clf__fusion__num_heads": Int(1, 2, when={"clf__fusion": "attention"}),
    }
    search = KerasTunerSearchCV(pipe, space, tuner="grid", max_trials=None, cv=2,
                                progress=False).fit(X, y)  # fmt: skip
    params = search.cv_results_["params"]
    # The grid: concat, and attention with 1 or 2 heads.
    assert len(params) == 3
    for p in params:
        assert ("clf__fusion__num_heads" in p) == (p["clf__fusion"] == "attention")
    heads = search.cv_results_["param_clf__fusion__num_heads"]
    concat = np.array([p["clf__fusion"] == "concat" for p in params])
    assert heads.mask[concat].all() and not heads.mask[~concat].any()
    assert isinstance(search.best_estimator_, Pipeline)


def test_grid_tuner_tries_the_same_candidates_as_gridsearchcv(data):
    X, y = data
    space = {"head_units": [4, 8], "learning_rate": [1e-3, 1e-2]}
    search = KerasTunerSearchCV(clf(epochs=1), space, tuner="grid", max_trials=None, cv=2,
                                progress=False).fit(X, y)  # fmt: skip
    tried = sorted(sorted(p.items()) for p in search.cv_results_["params"])
    assert tried == sorted(sorted(p.items()) for p in ParameterGrid(space))


def test_failed_trials_are_recorded_and_the_search_goes_on(data):
    X, y = data
    search = KerasTunerSearchCV(
        clf(epochs=1), {"fusion": ["concat", "no_such_fusion"]},
        tuner="grid", max_trials=None, cv=2, n_jobs=2, progress=False,
    ).fit(X, y)  # folds in two processes  # fmt: skip
    res = search.cv_results_
    by_fusion = {p["fusion"]: i for i, p in enumerate(res["params"])}
    bad, good = by_fusion["no_such_fusion"], by_fusion["concat"]
    assert res["status"][bad] == "FAILED" and np.isnan(res["mean_test_score"][bad])
    assert "no_such_fusion" in res["error"][bad]
    assert res["status"][good] == "COMPLETED" and res["error"][good] is None
    assert search.best_params_ == {"fusion": "concat"}
    assert search.results_frame()["status"].iloc[-1] == "FAILED"


def test_consecutive_failures_stop_the_search_with_the_last_error(data):
    X, y = data
    search = KerasTunerSearchCV(
        clf(epochs=1), {"fusion": ["bad_a", "bad_b", "bad_c"]},
        tuner="grid", max_trials=None, cv=2, max_consecutive_failed_trials=2, progress=False,
    )  # fmt: skip
    with pytest.raises(SearchError, match=r"2 trials failed in a row.*bad_") as err:
        search.fit(X, y)
    assert isinstance(err.value, MmskError) and isinstance(err.value, RuntimeError)


def test_error_score_raise_propagates_the_original_error(data):
    X, y = data
    search = KerasTunerSearchCV(clf(epochs=1), {"fusion": ["no_such_fusion"]}, tuner="grid",
                                cv=2, error_score="raise", progress=False)  # fmt: skip
    with pytest.raises(UnknownComponentError, match="no_such_fusion"):
        search.fit(X, y)


@pytest.mark.slow
def test_hyperband_budgets_epochs_and_continues_short_trials(data, tmp_path):
    X, y = data
    search = KerasTunerSearchCV(
        clf(), {"learning_rate": Float(1e-3, 3e-2, sampling="log")}, tuner="hyperband",
        max_epochs=2, factor=2, cv=2, directory=tmp_path, project_name="hb", random_state=1,
        progress=False,
    ).fit(X, y)  # fmt: skip
    res = search.cv_results_
    epochs = [p["epochs"] for p in res["params"]]
    assert set(epochs) == {1, 2}
    assert list(res["epochs"]) == epochs
    assert search.best_estimator_.n_epochs_ == search.best_params_["epochs"]
    # A continued trial's fold model holds its parent's history and only added epochs.
    oracle = kt.oracles.HyperbandOracle(kt.Objective("score", "max"), max_epochs=2, factor=2)
    oracle._set_project_dir(str(tmp_path), "hb")
    oracle.reload()
    continued = [t for t in oracle.trials.values() if "tuner/trial_id" in t.hyperparameters.values]
    assert continued
    trial = continued[0]
    parent = trial.hyperparameters.values["tuner/trial_id"]
    child_models = sorted((tmp_path / "hb" / f"trial_{trial.trial_id}").glob("fold-*.zip"))
    assert len(child_models) == 2
    for path in child_models:
        child = load(path)
        fold = path.name.split("-")[1]  # fold-<rows>-<settings>.zip
        (mother_path,) = (tmp_path / "hb" / f"trial_{parent}").glob(f"fold-{fold}-*.zip")
        mother = load(mother_path)
        n = mother.n_epochs_
        assert child.n_epochs_ == trial.hyperparameters.values["tuner/epochs"] > n
        assert child.history_["loss"][:n] == mother.history_["loss"]


def test_regressor_search_with_named_scoring(data):
    X, _ = data
    y = X @ np.array([1.0, -2.0, 0.5])
    search = KerasTunerSearchCV(
        MultimodalRegressor(epochs=2, head_units=8, random_state=0),
        {"learning_rate": [1e-2, 3e-2]}, tuner="random", max_trials=2, cv=2,
        scoring=["r2", "neg_mean_absolute_error"], refit="r2", progress=False,
    ).fit(X, y)  # fmt: skip
    assert "mean_test_neg_mean_absolute_error" in search.cv_results_
    assert search.best_score_ == max(search.cv_results_["mean_test_r2"])
    assert "rank_test_r2" in search.results_frame().columns


@pytest.mark.slow
def test_to_hypermodel_drives_keras_tuner_with_raw_data(data, tmp_path):
    X, y = data
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    hm = clf().to_hypermodel({"head_units": [4, 8], "fusion": ["concat", "sum"]}, frame, y)
    assert isinstance(hm, kt.HyperModel)
    tuner = kt.RandomSearch(hm, objective="val_loss", max_trials=2, seed=0,
                            directory=str(tmp_path), project_name="hm")  # fmt: skip
    tuner.search(frame[:50], y[:50], validation_data=(frame[50:], y[50:]), epochs=2, verbose=0)
    assert len(tuner.oracle.trials) == 2
    assert all(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
    best_hp = tuner.get_best_hyperparameters()[0]
    model = tuner.get_best_models()[0]
    est = hm.estimator(best_hp)
    assert est.get_params()["head_units"] == best_hp.values["head_units"]
    est.fit(frame, y)
    assert est.predict(frame).shape == (len(y),)
    assert model.count_params() == est.model_.count_params()


def test_text_progress_prints_one_line_per_trial():
    out = io.StringIO()
    bar = TextProgress(out)
    bar.on_search_begin(None)
    bar.on_trial_end(None, TrialRecord("0", status="COMPLETED", score=0.7))
    bar.on_trial_end(None, TrialRecord("1", status="FAILED", error="boom"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "best 0.7000" in lines[1] and "failed" in lines[1]


@pytest.mark.parametrize(
    ("space", "kwargs", "match"),
    [
        ({"no_such_param": [1, 2]}, {}, "no_such_param"),
        ({"learning_rate": []}, {}, "at least one value"),
        ({"learning_rate": Float(1.0, 0.1)}, {}, "min_value <= max_value"),
        ({"head_units": Int(1, 2, when={"fusion": "attention"})}, {}, "fusion"),
        ({"learning_rate": [0.1]}, {"tuner": "nope"}, "tuner"),
        ({"epochs": [1, 2]}, {"tuner": "hyperband"}, "epochs"),
    ],
)
def test_bad_search_settings_raise_parameter_errors(data, space, kwargs, match):
    X, y = data
    with pytest.raises(ParameterError, match=match):
        KerasTunerSearchCV(clf(), space, progress=False, **kwargs).fit(X, y)


def test_hyperband_needs_an_epochs_budget(data):
    from sklearn.linear_model import LogisticRegression

    X, y = data
    with pytest.raises(ParameterError, match="epochs"):
        KerasTunerSearchCV(LogisticRegression(), {"C": [1.0]}, tuner="hyperband",
                           progress=False).fit(X, y)  # fmt: skip
