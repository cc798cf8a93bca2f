"""MultimodalClassifier / MultimodalRegressor on real (tiny) Keras models."""

import pickle
import warnings

import joblib
import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline

import mmsk
from mmsk import ModalityBatch, ModalitySpec
from mmsk.components import CNNEncoder, RNNEncoder
from mmsk.exceptions import (
    ColumnMismatchError,
    InputError,
    ModelBuildError,
    NotFittedError,
    ParameterError,
    UnknownComponentError,
)
from mmsk.preprocessing import ImagePreprocessor, ModalityPreprocessor, TextVectorizer

FUSIONS = ["concat", "sum", "attention", "gated", "late"]


def small_prep():
    return ModalityPreprocessor(image=ImagePreprocessor(size=8))


def fast(**kw):
    params = dict(preprocessor=small_prep(), epochs=15, learning_rate=0.01, random_state=0)
    return {**params, **kw}


@pytest.fixture(scope="module")
def fitted(toy):
    X, y = toy
    return mmsk.MultimodalClassifier(**fast()).fit(X, y)


def test_top_level_names_are_the_estimators():
    assert mmsk.MultimodalClassifier is mmsk.models.MultimodalClassifier
    assert mmsk.MultimodalRegressor is mmsk.models.MultimodalRegressor


def test_fit_on_raw_dataframe_infers_modalities(fitted, toy):
    X, y = toy
    assert fitted.modalities_ == ["image", "caption", "numeric"]
    assert {k: s.kind for k, s in fitted.specs_.items()} == {
        "image": "image",
        "caption": "text",
        "numeric": "numeric",
    }
    assert list(fitted.classes_) == ["blue", "green", "red"]
    assert fitted.score(X, y) > 0.9
    proba = fitted.predict_proba(X)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(fitted.predict(X)) <= set(fitted.classes_)
    assert len(fitted.history_["loss"]) == 15


def test_classifiers_report_accuracy_per_epoch_unless_told_otherwise(fitted, toy):
    X, y = toy
    # The default metric: the training accuracy of the last epoch is that of the model
    # in training mode (dropout on), so it is close to, not equal to, score().
    acc = fitted.history_["accuracy"]
    assert len(acc) == 15 and acc[-1] > acc[0] and abs(acc[-1] - fitted.score(X, y)) < 0.2
    quiet = mmsk.MultimodalClassifier(epochs=1, metrics=[], random_state=0).fit(X[["size"]], y)
    assert sorted(quiet.history_) == ["loss"]
    reg = mmsk.MultimodalRegressor(epochs=1, random_state=0).fit(X[["size"]], X["size"])
    assert sorted(reg.history_) == ["loss"]


def test_default_fit_needs_no_argument_and_returns_self(toy):
    X, y = toy
    clf = mmsk.MultimodalClassifier(epochs=1, random_state=0)
    assert clf.fit(X, y) is clf
    assert clf.specs_["image"].shape == (8, 8, 3)  # the size of the images, not upsampled


# concat (the quickest to build) stays in the fast tier; the others train in the slow one.
@pytest.mark.parametrize(
    "fusion", [f if f == "concat" else pytest.param(f, marks=pytest.mark.slow) for f in FUSIONS]
)
def test_every_fusion_learns_and_round_trips_through_pickle(fusion, toy):
    X, y = toy
    clf = mmsk.MultimodalClassifier(**fast(fusion=fusion, modality_dropout=0.2)).fit(X, y)
    assert clf.score(X, y) > 0.8, fusion
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    emb = clf.transform(X)
    assert emb.shape[0] == len(X) and emb.ndim == 2
    np.testing.assert_array_equal(restored.transform(X), emb)


def test_transform_gives_embeddings_for_retrieval(fitted, toy):
    X, y = toy
    emb = fitted.transform(X)
    nn = NearestNeighbors(n_neighbors=2).fit(emb)
    _, idx = nn.kneighbors(emb)
    # the nearest other row mostly shares the label
    assert np.mean(y[idx[:, 1]] == y) > 0.8


@pytest.mark.slow
def test_text_transformer_encoder_and_nested_params(toy):
    X, y = toy
    clf = mmsk.MultimodalClassifier(
        **fast(encoders={"text": "transformer"}, fusion="attention")
    ).set_params(encoders__text__num_heads=1, fusion__num_heads=2, fusion__d_model=16)
    params = clf.get_params()
    assert params["encoders__text__num_heads"] == 1
    assert params["fusion__d_model"] == 16
    clf.fit(X, y)
    assert clf.model_.get_layer("caption_block0").num_heads == 1
    assert clf.model_.get_layer("fusion_block0").num_heads == 2
    assert clf.score(X, y) > 0.8


def test_set_params_on_a_kind_creates_the_default_encoder():
    clf = mmsk.MultimodalClassifier().set_params(encoders__image__filters=4)
    assert isinstance(clf.encoders["image"], CNNEncoder)
    assert clf.get_params()["encoders__image__filters"] == 4


@pytest.mark.slow  # trains two models
def test_encoder_objects_by_column_name(toy):
    X, y = toy
    enc = RNNEncoder(units=4, cell="gru", bidirectional=True)
    clf = mmsk.MultimodalClassifier(**fast(encoders={"caption": enc}, epochs=1)).fit(X, y)
    assert clf.model_.get_layer("caption_bi").forward_layer.units == 4
    assert enc.units == 4 and not hasattr(enc, "model_")  # the given object is cloned


@pytest.mark.slow
def test_pipeline_and_grid_search(toy):
    X, y = toy
    X = X[["caption", "size"]]  # two light modalities: nine fits stay quick
    pipe = Pipeline(
        [
            ("prep", ModalityPreprocessor(text=TextVectorizer())),
            ("clf", mmsk.MultimodalClassifier(epochs=4, learning_rate=0.02, random_state=0)),
        ]
    )
    grid = GridSearchCV(  # two candidates, each setting a parameter of both steps
        pipe,
        [
            {"clf__fusion": ["concat"], "prep__text__max_tokens": [5]},
            {"clf__fusion": ["sum"], "prep__text__max_tokens": [50]},
        ],
        cv=2,
    ).fit(X, y)
    assert grid.cv_results_["mean_test_score"].shape == (2,)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    best = grid.best_estimator_
    assert (
        best.named_steps["prep"].transformers_[0][1].max_tokens
        == grid.best_params_["prep__text__max_tokens"]
    )
    assert best.named_steps["clf"].fusion == grid.best_params_["clf__fusion"]
    assert grid.score(X, y) > 0.8


@pytest.mark.slow
def test_grid_search_in_two_processes(toy):
    X, y = toy
    grid = GridSearchCV(
        mmsk.MultimodalClassifier(**fast(epochs=3)), {"fusion": ["concat", "sum"]}, cv=2, n_jobs=2
    ).fit(X, y)
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    assert grid.best_estimator_.predict(X).shape == (60,)


def test_modality_batch_input(toy):
    X, y = toy
    batch = small_prep().fit_transform(X)
    clf = mmsk.MultimodalClassifier(epochs=10, learning_rate=0.01, random_state=0).fit(batch, y)
    assert clf.preprocessor_ is None
    assert clf.score(batch, y) > 0.8
    with pytest.raises(InputError, match="fitted on a ModalityBatch"):
        clf.predict(X)


@pytest.mark.slow
def test_same_random_state_same_predictions(toy):
    X, y = toy
    np.random.seed(123)  # noqa: NPY002
    expected_next = np.random.random()  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    a = mmsk.MultimodalClassifier(**fast(epochs=3, fusion="attention")).fit(X, y)
    assert np.random.random() == expected_next  # noqa: NPY002  (the user's state is untouched)
    b = mmsk.MultimodalClassifier(**fast(epochs=3, fusion="attention")).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.fixture(scope="module")
def numeric():
    """2,500 rows of three numbers, and a classifier fitted on the first 120 as a plain array."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2500, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = mmsk.MultimodalClassifier(epochs=20, learning_rate=0.01, random_state=0)
    return X, y, clf.fit(X[:120], y[:120])


def test_large_inputs_go_through_model_predict_with_the_same_results(numeric):
    X, _, clf = numeric
    big = clf.predict_proba(X)  # > 2,048 rows: Model.predict in batches
    small = np.vstack([clf.predict_proba(X[i : i + 500]) for i in range(0, 2500, 500)])
    np.testing.assert_allclose(big, small, rtol=1e-5, atol=1e-6)
    assert clf.transform(X).shape[0] == 2500


def test_clone_and_joblib_round_trip(fitted, toy, tmp_path):
    X, _ = toy
    fresh = clone(fitted)
    assert not hasattr(fresh, "model_")
    assert fresh.get_params()["epochs"] == fitted.epochs
    joblib.dump(fitted, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_binary_and_string_labels_and_sample_weight(toy):
    X, y = toy
    yb = np.where(y == "red", "red", "other")
    w = np.where(yb == "red", 2.0, 1.0)
    clf = mmsk.MultimodalClassifier(**fast()).fit(X, yb, sample_weight=w)
    assert list(clf.classes_) == ["other", "red"]
    assert clf.predict_proba(X).shape == (60, 2)
    assert clf.score(X, yb) > 0.9


def _imbalanced(n, seed):
    """Two noisy features; class 1 is a tenth of the rows."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    return (y[:, None] + rng.normal(size=(n, 2))).astype("float32"), y


@pytest.mark.slow  # two 20-epoch fits; fast tier: test_own_model.py's weights test
def test_class_weight_balanced_favours_the_minority_class():
    X, y = _imbalanced(400, 0)
    Xt, yt = _imbalanced(400, 1)
    kw = dict(epochs=20, learning_rate=0.01, validation_split=0.0, wide=False, random_state=0)
    plain = mmsk.MultimodalClassifier(**kw).fit(X, y)
    balanced = mmsk.MultimodalClassifier(**kw, class_weight="balanced").fit(X, y)
    recall = {}
    for name, clf in (("plain", plain), ("balanced", balanced)):
        recall[name] = np.mean(clf.predict(Xt)[yt == 1] == 1)
    # the minority class gets more probability and is found far more often
    assert balanced.predict_proba(Xt)[:, 1].mean() > plain.predict_proba(Xt)[:, 1].mean() + 0.1
    assert recall["balanced"] > recall["plain"] + 0.2, recall


@pytest.mark.slow  # trains two models
def test_multilabel_targets(toy):
    X, y = toy
    Y = np.stack([y == "red", y != "blue"], axis=1).astype(int)
    clf = mmsk.MultimodalClassifier(**fast()).fit(X, Y)
    assert clf.predict(X).shape == (60, 2)
    assert set(np.unique(clf.predict(X))) <= {0, 1}
    assert clf.predict_proba(X).shape == (60, 2)
    assert (clf.predict(X) == Y).mean() > 0.9


@pytest.mark.slow
def test_regressor_single_and_multi_output(toy):
    X, _ = toy
    target = X["size"].to_numpy() * 10 + 100
    reg = mmsk.MultimodalRegressor(**fast(epochs=30)).fit(X, target)
    assert reg.predict(X).shape == (60,)
    assert reg.score(X, target) > 0.8
    multi = np.stack([target, -target], axis=1)
    reg2 = mmsk.MultimodalRegressor(**fast(epochs=30)).fit(X, multi)
    assert reg2.predict(X).shape == (60, 2)
    assert reg2.score(X, multi) > 0.8


def test_missing_modality_rows_still_get_predictions(fitted, toy):
    X, _ = toy
    holes = X.copy()
    holes.loc[0, "image"] = None
    holes.loc[1, "caption"] = None
    holes.loc[2, "size"] = np.nan
    holes.loc[3, ["image", "caption"]] = None
    proba = fitted.predict_proba(holes)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def _two_views(n, seed):
    """View 'a' is strong (and not centred, so zeros look like a class); 'b' is weaker."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = y[:, None] * 3.0 + 1.0 + rng.normal(size=(n, 4))
    b = (y[:, None] * 2 - 1) * 0.6 + rng.normal(size=(n, 4))
    specs = {"a": ModalitySpec("numeric", (4,)), "b": ModalitySpec("numeric", (4,))}
    return ModalityBatch({"a": a.astype("float32"), "b": b.astype("float32")}, specs), y


@pytest.mark.slow
def test_modality_dropout_helps_when_a_modality_is_missing():
    X, y = _two_views(600, 1)
    Xt, yt = _two_views(400, 2)
    only_b = Xt.with_masks({"a": np.zeros(len(Xt), bool)})
    scores = {}
    for rate in (0.0, 0.5):
        clf = mmsk.MultimodalClassifier(
            modality_dropout=rate, epochs=15, learning_rate=0.005, random_state=0, wide=False
        ).fit(X, y)  # wide=False: the network alone, without the linear blend
        assert clf.score(Xt, yt) > 0.95
        scores[rate] = clf.score(only_b, yt)
    assert scores[0.5] > scores[0.0] + 0.15, scores


def test_a_fit_traces_its_train_step_once(monkeypatch):
    # Keras traces a step that creates variables (the optimizer's, the metrics') a
    # second time; the training core creates them before Model.fit.  48 training rows
    # in batches of 32 and 16, over two epochs, with a validation split.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 3, 60)
    traced = []
    step = keras.Model.train_step

    def counting(self, data):
        traced.append(1)  # Python runs here only while tf.function traces the step
        return step(self, data)

    monkeypatch.setattr(keras.Model, "train_step", counting)
    clf = mmsk.MultimodalClassifier(epochs=2, validation_split=0.2, random_state=0).fit(X, y)
    assert clf.n_epochs_ == 2 and len(traced) == 1
    warm = clf.set_params(warm_start=True, epochs=3).fit(X, y)  # trains on, built already
    assert warm.n_epochs_ == 3 and len(traced) == 1  # the traced step is reused


def test_a_model_that_cannot_be_built_symbolically_still_trains(monkeypatch):
    # create_training_state is an optimisation: where Keras cannot run the model on
    # symbolic inputs, Keras creates the variables while tracing, as before.
    def refuse(self, *args, **kwargs):
        raise NotImplementedError("no symbolic run")

    monkeypatch.setattr(keras.Model, "_symbolic_build", refuse, raising=False)
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    clf = mmsk.MultimodalClassifier(epochs=2, random_state=0).fit(X, y)
    assert clf.n_epochs_ == 2 and clf.predict(X).shape == (40,)


def test_validation_split_and_early_stopping():
    # Random labels: the validation loss rises once the network memorises the training rows.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 8)), rng.integers(0, 2, 120)
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([w.copy() for w in self.model.get_weights()])

    clf = mmsk.MultimodalClassifier(
        epochs=100,
        learning_rate=0.03,
        validation_split=0.25,
        patience=3,
        wide=False,
        random_state=0,
    ).fit(X, y, callbacks=[Snapshot()])  # wide=False: no blend, the best epoch's weights
    val = clf.history_["val_loss"]
    best = int(np.argmin(val))
    assert clf.n_epochs_ == len(val) == len(snapshots) < 100  # stopped well before the cap
    assert clf.n_epochs_ == best + 1 + 3  # patience epochs after the best one
    for restored, kept in zip(clf.model_.get_weights(), snapshots[best], strict=True):
        np.testing.assert_array_equal(restored, kept)  # the best epoch's weights are back
    assert not np.array_equal(snapshots[-1][-1], snapshots[best][-1])


def test_plain_numeric_array_input(numeric):
    X, y, clf = numeric
    assert clf.n_features_in_ == 3
    assert clf.score(X[:120], y[:120]) > 0.9


# ---- bad input ---------------------------------------------------------------


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        mmsk.MultimodalClassifier().predict(pd.DataFrame({"a": [1.0]}))


def test_columns_at_predict_differ(fitted, toy):
    X, _ = toy
    with pytest.raises(ColumnMismatchError, match="caption"):
        fitted.predict(X.drop(columns="caption"))
    # other columns are ignored, as ColumnTransformer does (tests/test_bad_input.py)
    assert fitted.predict(X.assign(extra=1.0)).tolist() == fitted.predict(X).tolist()


def test_one_class(toy):
    X, _ = toy
    with pytest.raises(InputError, match="only one class"):
        mmsk.MultimodalClassifier(epochs=1).fit(X, ["red"] * len(X))


def test_y_length_mismatch(toy):
    X, y = toy
    with pytest.raises(InputError, match="60 rows but y has 59"):
        mmsk.MultimodalClassifier(epochs=1).fit(X, y[:-1])


def test_sample_weight_wrong_length(toy):
    X, y = toy
    with pytest.raises(InputError, match="sample_weight"):
        mmsk.MultimodalClassifier(epochs=1).fit(X, y, sample_weight=np.ones(3))


def test_unknown_encoder_and_fusion_list_the_available_ones(toy):
    X, y = toy
    with pytest.raises(UnknownComponentError, match=r"Unknown encoder 'cnnn'.*'cnn'"):
        mmsk.MultimodalClassifier(encoders={"image": "cnnn"}, epochs=1).fit(X, y)
    with pytest.raises(UnknownComponentError, match=r"Unknown fusion 'mean'.*'attention'"):
        mmsk.MultimodalClassifier(fusion="mean", epochs=1).fit(X, y)
    with pytest.raises(UnknownComponentError, match="neither modalities"):
        mmsk.MultimodalClassifier(encoders={"photo": "cnn"}, epochs=1).fit(X, y)


def test_encoder_that_cannot_take_the_kind(toy):
    X, y = toy
    with pytest.raises(ModelBuildError, match=r"RNNEncoder accepts \['text'\].*'image' is image"):
        mmsk.MultimodalClassifier(encoders={"image": "rnn"}, epochs=1).fit(X, y)


def test_keras_error_inside_build_names_the_modality(toy):
    X, y = toy
    clf = mmsk.MultimodalClassifier(**fast(encoders={"text": "transformer"}, epochs=1))
    clf.set_params(encoders__text__embedding_dim=5, encoders__text__num_heads=2)
    with pytest.raises(ModelBuildError, match=r"modality 'caption'.*divisible by num_heads"):
        clf.fit(X, y)


def test_nan_and_inf_in_numeric_input():
    X = np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 0.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match="NaN"):
        mmsk.MultimodalClassifier(epochs=1).fit(X, [0, 1, 0, 1])
    df = pd.DataFrame({"a": [0.0, np.inf, 1.0, 2.0], "b": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(InputError, match=r"column 'a' holds inf at rows \[1\]"):
        mmsk.MultimodalClassifier(epochs=1).fit(df, [0, 1, 0, 1])


@pytest.mark.parametrize(
    "params, name",
    [({"epochs": 0}, "epochs"), ({"batch_size": -1}, "batch_size"), ({"dropout": 1.5}, "dropout")],
)
def test_bad_parameters(params, name, toy):
    X, y = toy
    with pytest.raises(ParameterError, match=f"'{name}' parameter"):
        mmsk.MultimodalClassifier(**params).fit(X, y)


def test_unknown_parameter_in_set_params():
    with pytest.raises(ValueError, match="Invalid parameter 'epoch'"):
        mmsk.MultimodalClassifier().set_params(epoch=3)


# ---- score, feature names, the training core -----------------------------------------------


def test_score_counts_labels_unseen_in_fit_as_wrong_with_a_warning(fitted, toy):
    X, y = toy
    y2 = y.astype(object)
    y2[:5] = "purple"
    pred = fitted.predict(X)
    with pytest.warns(UserWarning, match=r"labels \['purple'\] not seen in fit"):
        score = fitted.score(X, y2)
    assert score == pytest.approx(np.mean(pred == y2))
    assert score < fitted.score(X, y)


def _rare_class(n=40, seed=0):
    """Two classes and one row of a third: a fold's training rows may lack it."""
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b"] * (n // 2), dtype=object)
    y[-1] = "rare"
    X = rng.normal(size=(n, 3)) + (y == "a")[:, None] * 2.0
    return X, y


@pytest.mark.slow
def test_cross_validation_with_a_class_missing_from_a_training_fold():
    X, y = _rare_class()
    clf = mmsk.MultimodalClassifier(epochs=2, random_state=0)
    with pytest.warns(UserWarning, match="not seen in fit"):
        scores = cross_val_score(clf, X, y, cv=KFold(2), error_score="raise")
    assert np.isfinite(scores).all() and scores.shape == (2,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        grid = GridSearchCV(clf, {"head_units": [4, 8]}, cv=KFold(2), error_score="raise")
        grid.fit(X, y)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()


def test_feature_names_out_and_pandas_output(fitted, toy):
    X, _ = toy
    emb = fitted.transform(X)
    names = fitted.get_feature_names_out()
    assert names.tolist() == [f"multimodalclassifier{i}" for i in range(emb.shape[1])]
    pandas_out = pickle.loads(pickle.dumps(fitted)).set_output(transform="pandas")  # a copy
    frame = pandas_out.transform(X)
    assert isinstance(frame, pd.DataFrame)
    assert frame.columns.tolist() == names.tolist() and frame.index.equals(X.index)
    with pytest.raises(NotFittedError):
        mmsk.MultimodalClassifier().get_feature_names_out()


def test_fit_refuses_bad_parameters_at_fit_start(toy):
    X, y = toy  # that fit returns self: test_default_fit_needs_no_argument_and_returns_self
    with pytest.raises(ParameterError, match="'fusion' parameter"):
        mmsk.MultimodalClassifier(fusion=3.5).fit(X, y)
