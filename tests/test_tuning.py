"""KerasTunerSearchCV and to_hypermodel on tiny real models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mmsk import KerasTunerSearchCV, MultimodalClassifier, MultimodalRegressor, load
from mmsk.exceptions import MmskError, ParameterError, UnknownComponentError
from mmsk.tuning import (
    Boolean,
    Choice,
    Fixed,
    Float,
    Int,
    SearchCallback,
    SearchError,
    TrialRecord,
)

kt = pytest.importorskip("keras_tuner")
keras = pytest.importorskip("keras")


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


@pytest.mark.slow
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


def test_pipeline_and_conditional_settings(data):
    # The grid oracle over declarations: a condition on a Pipeline step's setting.
    from sklearn.linear_model import SGDClassifier

    X, y = data
    pipe = Pipeline([("scale", StandardScaler()), ("clf", SGDClassifier(random_state=0))])
    space = {
        "clf__penalty": ["l2", "elasticnet"],
        "clf__l1_ratio": Choice([0.2, 0.8], when={"clf__penalty": "elasticnet"}),
    }
    search = KerasTunerSearchCV(pipe, space, tuner="grid", max_trials=None, cv=2,
                                progress=False).fit(X, y)  # fmt: skip
    params = search.cv_results_["params"]
    # The grid: l2, and elasticnet with either ratio.
    assert len(params) == 3
    for p in params:
        assert ("clf__l1_ratio" in p) == (p["clf__penalty"] == "elasticnet")
    ratios = search.cv_results_["param_clf__l1_ratio"]
    l2 = np.array([p["clf__penalty"] == "l2" for p in params])
    assert ratios.mask[l2].all() and not ratios.mask[~l2].any()
    assert isinstance(search.best_estimator_, Pipeline)
    best = search.best_estimator_.get_params()["clf__penalty"]
    assert best == search.best_params_["clf__penalty"]


def test_nested_component_names_of_an_mmsk_pipeline_are_checked_before_training(data):
    pipe = Pipeline([("scale", StandardScaler()), ("clf", clf())])
    space = {"clf__fusion": ["attention"], "clf__fusion__num_headz": Int(1, 2)}
    with pytest.raises(ParameterError, match="num_headz"):
        KerasTunerSearchCV(pipe, space, tuner="random", progress=False).fit(*data)


def test_grid_oracle_over_declarations_tries_the_parametergrid(data):
    # Declarations go through Keras Tuner's GridSearchOracle: the same candidates.
    from sklearn.linear_model import LogisticRegression

    X, y = data
    space = {"C": Choice([0.1, 1.0]), "max_iter": Int(50, 100, step=50)}
    search = KerasTunerSearchCV(LogisticRegression(), space, tuner="grid", max_trials=None,
                                cv=2, progress=False).fit(X, y)  # fmt: skip
    tried = sorted(sorted(p.items()) for p in search.cv_results_["params"])
    grid_ = {"C": [0.1, 1.0], "max_iter": [50, 100]}
    assert tried == sorted(sorted(p.items()) for p in ParameterGrid(grid_))


@pytest.mark.slow
def test_failed_trials_are_recorded_and_the_search_goes_on(data):
    from sklearn.exceptions import FitFailedWarning

    X, y = data
    with pytest.warns(FitFailedWarning, match="no_such_fusion"):  # as GridSearchCV warns
        search = KerasTunerSearchCV(
            clf(epochs=1), {"fusion": ["concat", "no_such_fusion"]},
            tuner="grid", max_trials=None, cv=2, n_jobs=2, progress=False,
        ).fit(X, y)  # folds in two processes  # fmt: skip
    res = search.cv_results_
    bad, good = search.trials_[1], search.trials_[0]
    assert bad.params == {"fusion": "no_such_fusion"} and np.isnan(res["mean_test_score"][1])
    assert bad.status == "FAILED" and "no_such_fusion" in bad.error
    assert good.status == "COMPLETED" and good.error is None
    assert search.best_params_ == {"fusion": "concat"}
    assert search.results_frame()["status"].iloc[-1] == "FAILED"


def test_consecutive_failures_stop_the_search_with_the_last_error(data):
    X, y = data
    search = KerasTunerSearchCV(
        clf(epochs=1), {"fusion": ["bad_a", "bad_b", "bad_c"]}, tuner="random",
        max_trials=3, cv=2, max_consecutive_failed_trials=2, progress=False, random_state=0,
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


class FirstEpochs(keras.callbacks.Callback):
    """Records the first epoch of every Keras fit: 0 trains afresh, more continues."""

    starts: list[int] = []  # shared by the clones the search makes

    def on_train_begin(self, logs=None):
        self._first = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first:
            FirstEpochs.starts.append(epoch)
            self._first = False


@pytest.mark.slow
@pytest.mark.parametrize("directory", [True, False], ids=["directory", "in-memory"])
def test_hyperband_budgets_epochs_and_continues_short_trials(data, tmp_path, directory):
    X, y = data[0][:48], data[1][:48]
    FirstEpochs.starts = []
    # A callback of the test's own class would not be kept in the folder (mmsk.load does
    # not trust it): the folder's fold files are checked instead.
    estimator = clf(early_stopping=False, callbacks=None if directory else [FirstEpochs()])
    search = KerasTunerSearchCV(
        estimator, {"learning_rate": Float(1e-3, 3e-2, sampling="log")}, tuner="hyperband",
        max_epochs=2, factor=2, cv=2, directory=tmp_path if directory else None,
        project_name="hb", random_state=1, progress=False,
    ).fit(X, y)  # fmt: skip
    res = search.cv_results_
    epochs = [p["epochs"] for p in res["params"]]
    assert set(epochs) == {1, 2}
    assert list(res["epochs"]) == epochs
    assert search.best_estimator_.n_epochs_ == search.best_params_["epochs"]
    if not directory:
        # Every fold of a continued trial starts at its parent's epochs: the parent's
        # fold models were kept in memory.  The rest, and the refit, start at 0.
        starts = FirstEpochs.starts
        assert len(starts) == 2 * len(epochs) + 1
        continued = [s for s in starts if s > 0]
        assert continued and len(continued) % 2 == 0 and set(continued) == {1}
        assert not list(tmp_path.iterdir())
        return
    # A continued trial's fold model holds its parent's history and only added epochs.
    oracle = kt.oracles.HyperbandOracle(kt.Objective("score", "max"), max_epochs=2, factor=2)
    oracle._set_project_dir(str(tmp_path), "hb")
    oracle.reload()
    trials = [t for t in oracle.trials.values() if "tuner/trial_id" in t.hyperparameters.values]
    assert trials
    trial = trials[0]
    parent = trial.hyperparameters.values["tuner/trial_id"]
    child_models = sorted((tmp_path / "hb" / f"trial_{trial.trial_id}").glob("fold-*.zip"))
    assert len(child_models) == 2
    for path in child_models:
        child = load(path)
        fold = path.name.split("-")[1]  # fold-<data and rows>-<settings>.zip
        (mother_path,) = (tmp_path / "hb" / f"trial_{parent}").glob(f"fold-{fold}-*.zip")
        mother = load(mother_path)
        n = mother.n_epochs_
        assert child.n_epochs_ == trial.hyperparameters.values["tuner/epochs"] > n
        assert child.history_["loss"][:n] == mother.history_["loss"]


@pytest.mark.slow  # five fits; multi-metric searches on quick estimators: test_search_sklearn.py
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


@pytest.mark.parametrize(
    ("space", "kwargs", "match"),
    [
        ({"no_such_param": [1, 2]}, {}, "no_such_param"),
        ({"learning_rate": []}, {}, "at least one value"),
        ({"learning_rate": Float(1.0, 0.1)}, {}, "min_value <= max_value"),
        ({"head_units": Int(1, 2, when={"fusion": "attention"})}, {}, "fusion"),
        ({"learning_rate": [0.1]}, {"tuner": "nope"}, "tuner"),
        ({"epochs": [1, 2]}, {"tuner": "hyperband"}, "epochs"),
        ({"learning_rate": pytest.importorskip("scipy.stats").expon()}, {}, "expon"),
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


# ---- issue 15: KerasTunerSearchCV behaves like GridSearchCV ------------------------------
# Fast sklearn estimators: these check the search's semantics, not mmsk's models.


@pytest.fixture(scope="module")
def small():
    from sklearn.datasets import make_classification

    return make_classification(n_samples=90, n_features=5, random_state=0)


def grid(estimator, space, **kw):
    return KerasTunerSearchCV(estimator, space, tuner="grid", max_trials=None,
                              progress=False, **kw)  # fmt: skip


def same_results(ours, theirs):
    assert list(ours.cv_results_["params"]) == list(theirs.cv_results_["params"])
    for key in ("mean_test_score", "rank_test_score"):
        np.testing.assert_allclose(ours.cv_results_[key], theirs.cv_results_[key])
    assert ours.best_params_ == theirs.best_params_


def test_new_data_in_the_same_directory_never_reuses_fold_models(small, tmp_path):
    # Issue 15, item 1: fold files were keyed by row positions, so flipped labels of the
    # same size silently reused the first fit's models.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = small
    space = {"C": [0.1, 1.0]}
    grid(LogisticRegression(), space, cv=3, directory=tmp_path).fit(X, y)
    flipped = 1 - y
    ours = grid(LogisticRegression(), space, cv=3, directory=tmp_path).fit(X, flipped)
    same_results(ours, GridSearchCV(LogisticRegression(), space, cv=3).fit(X, flipped))
    assert ours.best_score_ > 0.5
    with pytest.raises(ParameterError, match="another search_space"):
        grid(LogisticRegression(), {"C": [5.0]}, cv=3, directory=tmp_path).fit(X, y)
    again = grid(LogisticRegression(), {"C": [5.0]}, cv=3, directory=tmp_path,
                 overwrite=True).fit(X, y)  # fmt: skip
    assert again.cv_results_["params"] == [{"C": 5.0}]


@pytest.mark.parametrize("tuner", ["grid", "random"])
def test_duplicate_values_end_within_a_time_limit(small, tuner):
    # Issue 15, item 2: duplicates looped forever re-running C=0.1.
    import signal

    from sklearn.linear_model import LogisticRegression

    def too_long(*_):
        raise TimeoutError("the search with duplicate values did not end in 60 s")

    X, y = small
    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(60)
    try:
        search = KerasTunerSearchCV(LogisticRegression(), {"C": [0.1, 0.1, 0.2, 0.2]},
                                    tuner=tuner, max_trials=None if tuner == "grid" else 8,
                                    cv=2, progress=False).fit(X, y)  # fmt: skip
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    expected = [0.1, 0.1, 0.2, 0.2] if tuner == "grid" else [0.1, 0.2]
    assert sorted(p["C"] for p in search.cv_results_["params"]) == expected


@pytest.mark.parametrize(
    "space",
    [
        {"C": range(1, 4)},
        {"C": np.array([0.1, 1.0])},
        [{"C": [0.1, 1.0]}, {"fit_intercept": [False], "C": [1.0]}],
        {},
        {"C": [1.0, 1.0, 0.5]},
    ],
    ids=["range", "array", "list-of-dicts", "empty", "duplicates"],
)
def test_grid_enumerates_parametergrid_exactly(small, space):
    # Issue 15, items 3 and 8: ranges, arrays, lists of dicts, {} and ParameterGrid's order.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    X, y = small
    ours = grid(LogisticRegression(), space, cv=3).fit(X, y)
    same_results(ours, GridSearchCV(LogisticRegression(), space, cv=3).fit(X, y))


def test_a_grid_may_swap_a_pipeline_step_and_tune_it(small):
    # Issue 15, item 3: the key check ran against the initial estimator.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import LinearSVC

    X, y = small
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    space = [{"clf": [LinearSVC()], "clf__C": [0.1, 1.0]}, {"clf__C": [0.5]}]
    ours = grid(pipe, space, cv=3).fit(X, y)
    same_results(ours, GridSearchCV(pipe, space, cv=3).fit(X, y))


@pytest.mark.parametrize("directory", [False, True])
def test_scorers_and_best_estimator_see_the_users_estimator(small, tmp_path, directory):
    # Issue 15, item 4: scorers saw the internal _TrialFit wrapper.
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.model_selection import GridSearchCV
    from sklearn.naive_bayes import GaussianNB

    class ReturnsNone(ClassifierMixin, BaseEstimator):
        def __init__(self, bias=0.0):
            self.bias = bias

        def fit(self, X, y):
            self.classes_, self.mean_ = np.unique(y), X.mean(axis=0)
            # returns None on purpose

        def predict(self, X):
            return self.classes_[(X[:, 0] > self.mean_[0] + self.bias).astype(int)]

    X, y = small

    def kw(name):
        return {"cv": 3, **({"directory": tmp_path, "project_name": name} if directory else {})}

    ours = grid(GaussianNB(), {"var_smoothing": [1e-9, 1e-3]}, scoring="roc_auc", **kw("a"))
    theirs = GridSearchCV(GaussianNB(), {"var_smoothing": [1e-9, 1e-3]}, scoring="roc_auc",
                          cv=3)  # fmt: skip
    same_results(ours.fit(X, y), theirs.fit(X, y))
    assert not np.isnan(ours.cv_results_["mean_test_score"]).any()

    def attribute_scorer(estimator, X, y):
        return float(estimator.mean_[0])

    none_fit = grid(ReturnsNone(), {"bias": [0.0, 0.1]}, scoring=attribute_scorer, **kw("b"))
    none_fit.fit(X, y)
    assert not np.isnan(none_fit.cv_results_["mean_test_score"]).any()
    assert isinstance(none_fit.best_estimator_, ReturnsNone)
    weights = np.where(y == 1, 3.0, 1.0)
    ours = grid(GaussianNB(), {"var_smoothing": [1e-9, 1e-1]}, **kw("c")).fit(
        X, y, sample_weight=weights
    )
    theirs = GridSearchCV(GaussianNB(), {"var_smoothing": [1e-9, 1e-1]}, cv=3)
    same_results(ours, theirs.fit(X, y, sample_weight=weights))


def test_dashboard_title_names_the_users_estimator(small, tmp_path):
    # Issue 15, item 4: the title read "of _TrialFit".
    from sklearn.linear_model import LogisticRegression

    from mmsk.widgets import TunerDashboard

    X, y = small
    titles = []

    class Spy(TunerDashboard):
        def on_search_begin(self, search):
            super().on_search_begin(search)
            titles.append(self._title)

    search = grid(LogisticRegression(), {"C": [1.0]}, cv=2, directory=tmp_path,
                  callbacks=[Spy()])  # fmt: skip
    search.fit(X, y)
    assert titles == ["KerasTunerSearchCV of LogisticRegression"]


def test_errors_outside_fit_raise_and_fit_failures_warn_as_sklearn(small, capsys):
    # Issue 15, item 5.
    from sklearn.exceptions import FitFailedWarning
    from sklearn.model_selection import GroupKFold
    from sklearn.svm import SVC

    X, y = small
    with pytest.raises(ValueError, match="groups"):
        grid(SVC(), {"C": [1.0, 2.0]}, cv=GroupKFold(3)).fit(X, y)
    with pytest.raises(ValueError, match="All the 6 fits failed"):
        grid(SVC(), {"C": [-1.0, -2.0]}, cv=3).fit(X, y)
    with pytest.warns(FitFailedWarning, match="3 fits failed out of a total of 6"):
        search = grid(SVC(), {"C": [-1.0, 1.0]}, cv=3, error_score=0, verbose=1).fit(X, y)
    assert capsys.readouterr().out.count("Fitting 3 folds for each of 2 candidates") == 1
    assert [t.status for t in search.trials_] == ["FAILED", "COMPLETED"]
    assert "C" in search.trials_[0].error
    assert list(search.results_frame()["status"]) == ["COMPLETED", "FAILED"]


def test_an_oracle_trial_whose_every_fit_failed_keeps_its_row(small):
    # Issue 15, item 5: with an oracle, a wholly failed trial still shows in cv_results_.
    from sklearn.exceptions import FitFailedWarning
    from sklearn.svm import SVC

    X, y = small
    with pytest.warns(FitFailedWarning):
        search = KerasTunerSearchCV(SVC(), {"C": [-1.0, 1.0]}, tuner="random", max_trials=2,
                                    cv=3, random_state=0, progress=False).fit(X, y)  # fmt: skip
    res = search.cv_results_
    by_c = {p["C"]: i for i, p in enumerate(res["params"])}
    assert list(res["trial_id"]) == [t.trial_id for t in search.trials_]
    bad, good = by_c[-1.0], by_c[1.0]
    assert res["status"][bad] == "FAILED" and np.isnan(res["mean_test_score"][bad])
    assert "C" in res["error"][bad] and res["rank_test_score"][bad] == 2
    assert res["status"][good] == "COMPLETED" and search.best_params_ == {"C": 1.0}
    assert search.best_index_ == good


def test_metadata_routing_reaches_estimator_scorer_and_splitter(small):
    # Issue 15, item 6: every fit failed with "unexpected argument(s) {'mmsk_rows'}".
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import GridSearchCV, GroupKFold

    X, y = small
    groups, weights = np.arange(len(y)) % 5, np.linspace(0.5, 2.0, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        est = LogisticRegression().set_fit_request(sample_weight=True)
        scorer = get_scorer("accuracy").set_score_request(sample_weight=True)
        kw = {"cv": GroupKFold(3), "scoring": scorer}
        ours = grid(est, {"C": [0.1, 1.0]}, **kw).fit(X, y, sample_weight=weights,
                                                       groups=groups)  # fmt: skip
        theirs = GridSearchCV(est, {"C": [0.1, 1.0]}, **kw).fit(X, y, sample_weight=weights,
                                                                 groups=groups)  # fmt: skip
    same_results(ours, theirs)


def test_no_directory_writes_no_fold_models_and_needs_no_pickles(small, tmp_path, monkeypatch):
    # Issue 15, item 7: fold models were always written, so unpicklable estimators failed.
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Local(ClassifierMixin, BaseEstimator):  # a local class: cannot be pickled
        def __init__(self, threshold=0.0, rule=lambda X: X[:, 0]):
            self.threshold, self.rule = threshold, rule

        def fit(self, X, y):
            self.classes_ = np.unique(y)
            return self

        def predict(self, X):
            return self.classes_[(self.rule(X) > self.threshold).astype(int)]

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    X, y = small
    search = grid(Local(), {"threshold": [0.0, 0.5]}, cv=3).fit(X, y)
    assert (search.cv_results_["status"] if "status" in search.cv_results_ else
            [t.status for t in search.trials_]) == ["COMPLETED", "COMPLETED"]  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_sklearn_19_gaps_multimetric_refit_callable_and_callback_context(small):
    # Issue 15, item 8.
    import inspect

    from sklearn.linear_model import LogisticRegression

    X, y = small
    search = grid(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3,
                  scoring=["accuracy", "f1"], refit=False).fit(X, y)  # fmt: skip
    assert "mean_test_f1" in search.cv_results_ and not hasattr(search, "best_estimator_")
    seen = []

    def pick(results):
        seen.append(sorted(results))
        return 0

    kt_search = KerasTunerSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, tuner="random",
                                   max_trials=2, cv=3, refit=pick, progress=False)  # fmt: skip
    kt_search.fit(X, y)
    assert {"trial_id", "status", "error"} <= set(seen[-1])
    assert "callback_ctx" in inspect.signature(KerasTunerSearchCV._run_search).parameters


# ---- issue 15, the gaps left: no wrapper, one verbose line, metrics, progress ------------


@pytest.mark.parametrize("tuner", ["grid", "random"])
def test_the_users_estimator_is_never_swapped_during_fit(small, tmp_path, tuner):
    # With a directory, fit swapped self.estimator for a caching wrapper (_TrialFit) that
    # scorers and callbacks then saw.
    from sklearn.linear_model import LogisticRegression

    X, y = small
    user = LogisticRegression()
    seen, scored = [], []

    class Watch(SearchCallback):
        def on_trial_begin(self, search, trial):
            seen.append(search.estimator)

        def on_trial_end(self, search, trial):
            seen.append(search.estimator)

    def scorer(estimator, X_, y_):
        scored.append(type(estimator))
        return float(np.mean(estimator.predict(X_) == y_))

    kw = {"max_trials": None} if tuner == "grid" else {"max_trials": 2, "random_state": 0}
    search = KerasTunerSearchCV(user, {"C": [0.1, 1.0]}, tuner=tuner, cv=2, scoring=scorer,
                                directory=tmp_path, callbacks=[Watch()], progress=False,
                                **kw).fit(X, y)  # fmt: skip
    assert seen and all(estimator is user for estimator in seen)
    assert set(scored) == {LogisticRegression}
    assert type(search.best_estimator_) is LogisticRegression
    assert list(tmp_path.glob("**/fold-*.zip"))  # the fold models were still kept
    again = KerasTunerSearchCV(user, {"C": [0.1, 1.0]}, tuner=tuner, cv=2, scoring=scorer,
                               directory=tmp_path, progress=False, **kw).fit(X, y)  # fmt: skip
    np.testing.assert_allclose(again.cv_results_["mean_test_score"],
                               search.cv_results_["mean_test_score"])  # fmt: skip
    assert set(scored) == {LogisticRegression}  # read back, scored as the user's class


def test_an_oracle_prints_sklearns_verbose_line_once_per_search(small, capsys):
    # The line was printed per trial, as "... for each of 1 candidates".
    from sklearn.linear_model import LogisticRegression

    X, y = small
    KerasTunerSearchCV(LogisticRegression(), {"C": Float(0.1, 1.0)}, tuner="random",
                       max_trials=3, cv=2, verbose=1, random_state=0,
                       progress=False).fit(X, y)  # fmt: skip
    out = capsys.readouterr().out
    assert out.count("Fitting 2 folds for each of 3 candidates, totalling 6 fits") == 1
    assert "1 candidates" not in out


@pytest.mark.parametrize("refit", [False, "callable"])
def test_several_metrics_need_no_objective(small, refit):
    # With refit=False or a callable, an extra objective= was demanded.
    from sklearn.linear_model import LogisticRegression

    X, y = small
    refit_ = (lambda results: 0) if refit == "callable" else refit
    search = KerasTunerSearchCV(LogisticRegression(), {"C": Float(0.01, 1.0, sampling="log")},
                                tuner="random", max_trials=2, cv=2, random_state=0,
                                scoring=["f1", "accuracy"], refit=refit_,
                                progress=False).fit(X, y)  # fmt: skip
    # The oracle maximised the first metric of scoring.
    scores = [t.score for t in search.trials_]
    np.testing.assert_allclose(scores, search.cv_results_["mean_test_f1"])
    assert "rank_test_f1" in search.results_frame().columns
    with pytest.raises(ParameterError, match="objective must be one of"):
        KerasTunerSearchCV(LogisticRegression(), {"C": Float(0.01, 1.0)}, tuner="random",
                           max_trials=1, cv=2, scoring=["f1", "accuracy"], refit=False,
                           objective="roc_auc", progress=False).fit(X, y)  # fmt: skip


def test_a_plain_grid_refuses_keras_tuners_distributed_mode(small, monkeypatch):
    # A ParameterGrid runs in one process: each chief and worker would run all of it.
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    with pytest.raises(ParameterError, match="Choice"):
        grid(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(*small)


def test_text_progress_is_keras_progbar_and_off_under_a_widget_dashboard(small, capsys):
    from sklearn.linear_model import LogisticRegression

    from mmsk.widgets import TunerDashboard

    X, y = small

    def run(**kw):
        KerasTunerSearchCV(LogisticRegression(), {"C": Float(0.1, 1.0)}, tuner="random",
                           max_trials=2, cv=2, random_state=0, **kw).fit(X, y)  # fmt: skip
        return capsys.readouterr()

    shown = run()  # progress="auto", no callback: the bar, on stdout (not pink stderr)
    assert "2/2" in shown.out and "best:" in shown.out and "2/2" not in shown.err
    dashboard = TunerDashboard(mode="widget", plot=False)
    quiet = run(callbacks=[dashboard])
    assert "2/2" not in quiet.out + quiet.err
    assert len(dashboard.trials) == 2
    assert "2/2" in run(callbacks=[dashboard], progress=True).out
    assert "2/2" not in run(progress=False).out


def test_a_fixed_object_reaches_set_params_as_itself(small):
    # A Fixed (single) value Keras Tuner cannot hold went to set_params as its label.
    from sklearn.linear_model import LogisticRegression

    weights = {0: 1.0, 1: 2.0}
    space = {"C": [0.5, 1.0], "class_weight": Fixed(weights)}
    search = KerasTunerSearchCV(LogisticRegression(), space, tuner="random", max_trials=2,
                                cv=2, random_state=0, progress=False).fit(*small)  # fmt: skip
    assert [p["class_weight"] for p in search.cv_results_["params"]] == [weights, weights]
    assert search.best_estimator_.class_weight == weights


def test_scipy_uniform_loguniform_and_randint_are_sampled_as_float_and_int(small):
    from scipy.stats import loguniform, randint, uniform
    from sklearn.linear_model import LogisticRegression

    space = {"C": loguniform(1e-2, 1e2), "tol": uniform(1e-4, 1e-3), "max_iter": randint(50, 60)}
    search = KerasTunerSearchCV(LogisticRegression(), space, tuner="random", max_trials=3,
                                cv=2, random_state=0, progress=False).fit(*small)  # fmt: skip
    for p in search.cv_results_["params"]:
        assert 1e-2 <= p["C"] <= 1e2 and 1e-4 <= p["tol"] <= 1.1e-3
        assert isinstance(p["max_iter"], int) and 50 <= p["max_iter"] <= 59


# ---- progress inside a trial: fold and epoch hooks ---------------------------------------
class InsideTrial:
    """Records every hook, fold and epoch ones included (no SearchCallback base)."""

    def __init__(self):
        self.events = []

    def on_trial_begin(self, search, trial):
        self.events.append(("trial_begin", trial.trial_id))

    def on_trial_end(self, search, trial):
        self.events.append(("trial_end", trial.trial_id))

    def on_fold_begin(self, search, trial, fold, n_folds):
        self.events.append(("fold_begin", trial.trial_id, fold, n_folds))

    def on_fold_end(self, search, trial, fold, n_folds):
        self.events.append(("fold_end", trial.trial_id, fold, n_folds))

    def on_epoch_end(self, search, trial, epoch, epochs, logs):
        assert np.isfinite(logs["loss"])
        self.events.append(("epoch", trial.trial_id, epoch, epochs))


def expected_events(trial_ids, n_folds, epochs):
    events = []
    for tid in trial_ids:
        events.append(("trial_begin", tid))
        for fold in range(n_folds):
            events.append(("fold_begin", tid, fold, n_folds))
            events += [("epoch", tid, e, epochs) for e in range(epochs)]
            events.append(("fold_end", tid, fold, n_folds))
        events.append(("trial_end", tid))
    return events


# Four fits each; the fast tier follows a real search's trials, folds and epochs in
# tests/test_widgets.py::test_dashboard_on_a_real_search.
@pytest.mark.slow
@pytest.mark.parametrize(("tuner", "pipeline"), [("random", False), ("grid", True)],
                         ids=["oracle", "grid-pipeline"])  # fmt: skip
def test_fold_and_epoch_hooks_follow_each_trial_in_order(data, tuner, pipeline):
    X, y = data[0][:36], data[1][:36]
    estimator = clf(early_stopping=False)
    if pipeline:
        estimator = Pipeline([("scale", StandardScaler()), ("clf", estimator)])
    name = "clf__learning_rate" if pipeline else "learning_rate"
    watcher, plain = InsideTrial(), Recorder()  # Recorder defines no fold or epoch hooks
    search = KerasTunerSearchCV(
        estimator, {name: [1e-2, 3e-2]}, tuner=tuner, max_trials=2, cv=2,
        random_state=0, progress=False, callbacks=[watcher, plain], refit=False,
    ).fit(X, y)  # fmt: skip
    ids = [r.trial_id for r in search.trials_]
    assert len(ids) == 2
    assert watcher.events == expected_events(ids, n_folds=2, epochs=2)
    assert [e[0] for e in plain.events] == ["begin", *["trial_begin", "trial_end"] * 2, "end"]
    # The epochs actually trained are on each trial's record.
    assert [r.epochs for r in search.trials_] == [2, 2]


def test_fold_hooks_for_any_estimator(small):
    from sklearn.linear_model import LogisticRegression

    watcher = InsideTrial()
    grid(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3, callbacks=[watcher]).fit(*small)
    assert watcher.events == expected_events(["0", "1"], n_folds=3, epochs=0)


@pytest.mark.slow  # two worker processes, each importing TensorFlow
def test_no_fold_hooks_across_processes(small):
    from sklearn.linear_model import LogisticRegression

    watcher = InsideTrial()
    grid(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3, callbacks=[watcher], n_jobs=2).fit(*small)
    # Folds fitted in other processes: trials are reported, their folds are not.
    assert watcher.events == [("trial_begin", "0"), ("trial_end", "0"),
                              ("trial_begin", "1"), ("trial_end", "1")]  # fmt: skip
