"""``model=``: the user's own Keras model inside an mmsk estimator (docs/own-model.md).

One test (or more) per supported row of the parity table with keras.wrappers and
scikeras, in the spirit of their suites: a model built from the data's shape, a
model instance, routed settings, multi-output, sklearn's checks, searches over
``model__*`` on an image+text table with missing modalities, and the bad inputs.
Every model is tiny and trains for 2 epochs.
"""

import pickle

import numpy as np
import pytest
from conftest import make_frame
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import estimator_checks_generator

import mmsk
from mmsk import MultimodalClassifier, MultimodalRegressor
from mmsk.exceptions import ModelBuildError, ParameterError, PersistenceError, UnsafeFileError

keras = pytest.importorskip("keras")
L = keras.layers
QUICK = {"epochs": 2, "random_state": 0, "batch_size": 16}


# ---- user models: the kind of code a Keras user already has ---------------------
def mlp(inputs, specs, n_outputs, units=8, depth=1):
    """A dynamic model: its width comes from the data (specs) and the task (n_outputs)."""
    x = inputs["numeric"]
    for i in range(depth):
        x = L.Dense(units, activation="relu", name=f"hidden{i}")(x)
    return keras.Model(inputs, L.Dense(n_outputs, name="out")(x))


def image_text(inputs, specs, n_outputs, filters=4, embed=4):
    """Image + text + numbers with the presence masks: a missing modality is zeroed."""
    present = inputs["mmsk_present"]
    names = list(specs)
    img = L.Conv2D(filters, 3, activation="relu", name="conv")(inputs["image"])
    img = L.GlobalAveragePooling2D(name="pool")(img)
    txt = L.Embedding(specs["caption"].vocabulary_size, embed, name="embed")(inputs["caption"])
    txt = L.GlobalAveragePooling1D(name="mean")(txt)
    img = L.Multiply()([img, present[:, names.index("image") : names.index("image") + 1]])
    txt = L.Multiply()([txt, present[:, names.index("caption") : names.index("caption") + 1]])
    x = L.Concatenate()([img, txt, inputs["numeric"], present])
    return keras.Model(
        inputs, L.Dense(16, activation="relu")(x)
    )  # an embedding: mmsk adds the head


def hp_build(inputs, specs, n_outputs, hp):
    """Keras Tuner's define-by-run style: the function declares its own settings."""
    x = L.Dense(hp.Int("units", 2, 8, step=2, default=4), name="hidden")(inputs["numeric"])
    return L.Dense(n_outputs)(x)  # an output tensor is enough


def failing(inputs, specs, n_outputs):
    raise RuntimeError("no GPU here")


@keras.saving.register_keras_serializable(package="test_own_model")
class Scale(L.Layer):
    """A registered user layer: it saves and loads (with trusted=)."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class Unregistered(L.Layer):
    def call(self, x):
        return x + 1.0


def numeric_model(*middle, outputs=1):
    x = i = keras.Input((3,), name="numeric")
    for layer in middle:
        x = layer(x)
    return keras.Model(i, L.Dense(outputs, name="out")(x))


def find(model, name):
    """A layer of ``model`` or of a model nested in it, by name."""
    stack = [model]
    while stack:
        layer = stack.pop()
        if layer.name == name:
            return layer
        stack.extend(getattr(layer, "layers", []))
    raise KeyError(name)


@pytest.fixture(scope="module")
def numbers():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 3)).astype("float32")
    return X, np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no")


# Fitted once, shared by the tests that only read them (predict, pickle, save, export).
MLP = {"model": mlp, "model__units": 4, "fit__shuffle": False, **QUICK}


@pytest.fixture(scope="module")
def mlp_clf(numbers):
    return MultimodalClassifier(**MLP).fit(*numbers)


@pytest.fixture(scope="module")
def scale_clf(numbers):
    return MultimodalClassifier(model=numeric_model(Scale(3.0)), **QUICK).fit(*numbers)


@pytest.fixture(scope="module")
def table():
    frame, y = make_frame(48, seed=1)
    frame = frame.astype(object)
    frame.loc[::5, "image"] = None  # some rows have no image ...
    frame.loc[2::7, "caption"] = None  # ... others no caption
    return frame, y


# ---- model and parameter routing ------------------------------------------------
def test_a_build_function_sees_the_datas_shapes_and_trains(table):
    frame, y = table
    clf = MultimodalClassifier(model=image_text, **QUICK).fit(frame, y)
    proba = clf.predict_proba(frame)
    assert proba.shape == (len(frame), 3) and np.allclose(proba.sum(axis=1), 1)
    assert set(clf.predict(frame)) <= set(clf.classes_)
    assert clf.transform(frame).shape == (len(frame), 16)  # the user's embedding
    assert clf.model_.get_layer("prediction").units == 3  # the head mmsk added
    names = [t.name for t in clf.model_.inputs]
    assert sorted(names) == sorted([*clf.modalities_, "mmsk_present"])


def test_a_model_instance_is_cloned_and_left_untouched(numbers):
    X, y = numbers
    given = numeric_model(L.Dense(4, activation="relu"))
    before = [w.copy() for w in given.get_weights()]
    clf = MultimodalClassifier(model=given, **QUICK).fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(before, given.get_weights(), strict=True))
    assert given not in clf.model_.layers
    again = clone(clf).fit(X, y)
    assert np.allclose(again.predict_proba(X), clf.predict_proba(X), atol=1e-6)  # same seed


def test_model_settings_route_show_and_clone(numbers):
    X, y = numbers
    clf = MultimodalClassifier(model=mlp, model__units=5, **QUICK)
    deep = clf.get_params()
    assert deep["model__units"] == 5 and deep["model__depth"] == 1  # defaults shown
    assert "model__depth" not in clf.get_params(deep=False)  # only what was set is an argument
    twin = clone(clf).set_params(model__depth=2)
    assert twin.model__units == 5 and clf.get_params()["model__depth"] == 1
    twin.fit(X, y)
    assert find(twin.model_, "hidden1").units == 5
    assert "model__units=5" in repr(clf)
    assert "mlp" in clf._repr_html_()


def test_an_unknown_model_setting_lists_the_accepted_ones():
    with pytest.raises(ParameterError, match=r"'widht'.*Accepted: model__units, model__depth"):
        MultimodalClassifier(model=mlp).set_params(model__widht=3)
    with pytest.raises(ParameterError, match="unexpected keyword arguments"):
        MultimodalClassifier(model=mlp, units=3)
    with pytest.raises(ParameterError, match="model is None"):
        MultimodalClassifier(model__units=3).fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_compile_and_fit_settings_route_to_keras(numbers):
    X, y = numbers
    clf = MultimodalClassifier(
        model=mlp, optimizer="adamw", optimizer__weight_decay=0.05, loss="hinge",
        metrics=["accuracy"], compile__run_eagerly=True, fit__validation_freq=2,
        validation_split=0.25, early_stopping=False, **QUICK,
    ).fit(X, y)  # fmt: skip
    model = clf.model_
    assert float(model.optimizer.weight_decay) == pytest.approx(0.05)
    assert model.loss == "hinge" and model.run_eagerly
    assert len(clf.history_["accuracy"]) == 2 and len(clf.history_["val_loss"]) == 1


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"optimizer__momentum": 0.9}, r"takes no 'momentum'.*optimizer__beta_1"),
        ({"optimizer__learning_rate": 0.1}, "learning_rate="),
        ({"fit__epochs": 3}, "epochs="),
        ({"fit__nope": 1}, r"fit__nope.*fit__shuffle"),
        ({"compile__loss": "mse"}, "loss="),
        ({"head_units": 8}, "head_units .*no effect"),
        ({"loss": "no_such_loss"}, "no_such_loss"),
    ],
)
def test_bad_routed_settings_are_parameter_errors(numbers, settings, match):
    X, y = numbers
    with pytest.raises(ParameterError, match=match):
        MultimodalClassifier(model=mlp, **{**QUICK, **settings}).fit(X, y)


# ---- the head rule ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("last", "added"),
    [
        (L.Dense(2), "Dense"),  # an embedding 2 wide for a binary task (1 output): a head
        (L.Dense(1), "Activation"),  # logits: the task's activation
        (L.Dense(1, activation="sigmoid"), None),  # already the prediction
    ],
)
def test_the_head_rule_reads_the_output_width(numbers, last, added):
    X, y = numbers
    i = keras.Input((3,), name="numeric")
    clf = MultimodalClassifier(model=keras.Model(i, last(i)), **QUICK).fit(X, y)
    final = clf.model_.layers[-1]
    assert (type(final).__name__ if final.name == "prediction" else None) == added
    proba = clf.predict_proba(X)
    assert ((proba >= 0) & (proba <= 1)).all() and np.allclose(proba.sum(axis=1), 1)


def test_multi_output_regression_with_two_output_layers():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 3)).astype("float32")
    Y = np.c_[X[:, 0], X[:, 1] - X[:, 2]] * 10 + 100
    i = keras.Input((3,), name="numeric")
    h = L.Dense(8, activation="relu")(i)
    model = keras.Model(i, [L.Dense(1, name="first")(h), L.Dense(1, name="second")(h)])
    reg = MultimodalRegressor(model=model, learning_rate=0.03, **{**QUICK, "epochs": 20})
    reg.fit(X, Y)
    pred = reg.predict(X)
    assert pred.shape == (48, 2)
    assert reg.score(X, Y) > 0.5  # both outputs learned, on the original scale
    assert abs(pred.mean() - 100) < 10


# ---- what mmsk adds around the model ------------------------------------------------
def test_sample_and_class_weights_reach_the_loss(numbers, mlp_clf):
    X, y = numbers
    weights = np.where(y == "yes", 5.0, 0.1)
    weighted = MultimodalClassifier(**MLP).fit(X, y, sample_weight=weights)
    balanced = MultimodalClassifier(**MLP, class_weight={"yes": 5.0, "no": 0.1}).fit(X, y)
    p, w, b = (m.predict_proba(X)[:, 1].mean() for m in (mlp_clf, weighted, balanced))
    assert w > p and b > p  # "yes" (column 1) weighs more: its probability rises


def test_callbacks_early_stopping_and_warm_start(numbers):
    X, y = numbers

    class Count(keras.callbacks.Callback):
        epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            Count.epochs += 1

    clf = MultimodalClassifier(model=mlp, callbacks=[Count()], warm_start=True, **QUICK).fit(X, y)
    model = clf.model_
    clf.set_params(epochs=4).fit(X, y)
    assert clf.model_ is model and clf.n_epochs_ == 4 and Count.epochs == 4
    stopped = MultimodalClassifier(
        model=mlp, epochs=20, patience=1, learning_rate=1e-9, random_state=0
    ).fit(X, y)  # the loss barely moves: early stopping ends the fit long before 20 epochs
    assert stopped.n_epochs_ < 20


def test_checkpoint_dir_and_monitor(numbers, tmp_path):
    X, y = numbers
    folder = tmp_path / "ckpt"
    clf = MultimodalClassifier(model=mlp, checkpoint_dir=folder, **QUICK).fit(X, y, monitor=True)
    assert clf.n_epochs_ == 2 and not folder.exists()  # mmsk removed what it wrote


def test_distribution_builds_the_users_model_under_the_strategy(numbers):
    tf = pytest.importorskip("tensorflow")
    X, y = numbers
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    clf = MultimodalClassifier(model=mlp, distribution=strategy, **QUICK).fit(X, y)
    assert clf.model_.distribute_strategy is strategy
    assert clf.predict(X).shape == (48,)


def test_pickle_keeps_predictions(numbers, mlp_clf, scale_clf):
    X, _ = numbers
    for clf in (mlp_clf, scale_clf):
        back = pickle.loads(pickle.dumps(clf))
        assert np.allclose(back.predict_proba(X), clf.predict_proba(X))
        assert back.get_params(deep=False).keys() == clf.get_params(deep=False).keys()


def test_mmsk_save_with_a_registered_layer_loads_when_trusted(numbers, scale_clf, tmp_path):
    X, _ = numbers
    clf = scale_clf
    path = mmsk.save(clf, tmp_path / "clf.zip")
    name = f"{Scale.__module__}:Scale"
    assert name in mmsk.get_untrusted_types(path)
    with pytest.raises(UnsafeFileError):
        mmsk.load(path)
    back = mmsk.load(path, trusted=[name])
    assert np.allclose(back.predict_proba(X), clf.predict_proba(X))


def test_mmsk_save_of_a_build_function_names_it_for_trusted(numbers, mlp_clf, tmp_path):
    X, _ = numbers
    clf = mlp_clf
    path = mmsk.save(clf, tmp_path / "clf")
    name = f"{mlp.__module__}:mlp"
    assert mmsk.get_untrusted_types(path) == [name]
    with pytest.raises(UnsafeFileError, match="mlp"):
        mmsk.load(path)
    back = mmsk.load(path, trusted=[name])
    assert back.model is mlp and back.model__units == 4 and back.fit__shuffle is False
    assert np.allclose(back.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("layer", [L.Lambda(lambda x: x * 2), Unregistered()])
def test_a_lambda_or_unregistered_layer_is_refused_at_save_with_how_to_register(
    numbers, tmp_path, layer
):
    X, y = numbers
    clf = MultimodalClassifier(model=numeric_model(layer), **QUICK).fit(X, y)
    assert clf.predict(X).shape == (48,)  # it trains and predicts in this process
    for save in (lambda: mmsk.save(clf, tmp_path / "clf"), lambda: pickle.dumps(clf)):
        with pytest.raises(UnsafeFileError, match="register_keras_serializable") as err:
            save()
        assert layer.name in str(err.value)
    assert not (tmp_path / "clf").exists()


def test_export_serves_the_users_model(numbers, mlp_clf, tmp_path):
    tf = pytest.importorskip("tensorflow")
    X, _ = numbers
    clf = mlp_clf
    served = tf.saved_model.load(str(clf.export(tmp_path / "served")))
    inputs = {f"x{i}": tf.constant(X[:, i]) for i in range(3)}
    proba = served.serve(inputs)["probabilities"].numpy()
    assert np.allclose(proba, clf.predict_proba(X), atol=1e-5)


# ---- searches over model__* on image + text with missing modalities ----------------
@pytest.mark.slow
def test_gridsearchcv_over_model_settings(table):
    frame, y = table
    search = GridSearchCV(
        MultimodalClassifier(model=image_text, **QUICK),
        {"model__filters": [2, 4], "model__embed": [3]}, cv=2,
    ).fit(frame, y)  # fmt: skip
    assert len(search.cv_results_["params"]) == 2
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert find(best.model_, "conv").filters == best.model__filters


@pytest.mark.slow
def test_kerastunersearchcv_over_model_settings(table):
    pytest.importorskip("keras_tuner")
    from mmsk.tuning import Int, KerasTunerSearchCV

    frame, y = table
    search = KerasTunerSearchCV(
        MultimodalClassifier(model=image_text, **QUICK),
        {"model__filters": Int(2, 4, step=2), "model__embed": [3, 5]},
        tuner="random", max_trials=2, cv=2, random_state=0,
    ).fit(frame, y)  # fmt: skip
    tried = search.cv_results_["params"]
    assert len(tried) == 2 and all(p["model__filters"] in (2, 4) for p in tried)
    assert search.best_estimator_.model__embed in (3, 5)


@pytest.mark.slow
def test_a_build_function_may_take_hp(numbers, tmp_path):
    kt = pytest.importorskip("keras_tuner")
    X, y = numbers
    clf = MultimodalClassifier(model=hp_build, **QUICK).fit(X, y)
    assert find(clf.model_, "hidden").units == 4  # outside a tuner: the default
    hm = MultimodalClassifier(model=hp_build, **QUICK).to_hypermodel({"batch_size": [16]}, X, y)
    tuner = kt.RandomSearch(hm, objective="loss", max_trials=2, seed=0,
                            directory=str(tmp_path), project_name="hp")  # fmt: skip
    tuner.search(X, y, epochs=1, verbose=0)
    best_hp, best = tuner.get_best_hyperparameters()[0], tuner.get_best_models()[0]
    assert best_hp.values["units"] in (2, 4, 6, 8)  # the function's own declaration ...
    assert find(best, "hidden").units == best_hp.values["units"]  # ... built by the trial


def test_to_hypermodel_tunes_model_settings(numbers):
    kt = pytest.importorskip("keras_tuner")
    X, y = numbers
    hm = MultimodalClassifier(model=mlp, **QUICK).to_hypermodel({"model__units": [3, 7]}, X, y)
    hp = kt.HyperParameters()
    hp.Choice("model__units", [3, 7])
    hp.values["model__units"] = 7
    model = hm.build(hp)
    assert find(model, "hidden0").units == 7


# ---- bad input ---------------------------------------------------------------------
def test_input_names_that_do_not_match_list_both(table):
    frame, y = table
    i = keras.Input((8, 8, 3), name="photo")
    model = keras.Model(i, L.Dense(3)(L.Flatten()(i)))
    with pytest.raises(ModelBuildError) as err:
        MultimodalClassifier(model=model, **QUICK).fit(frame, y)
    message = str(err.value)
    assert "['photo']" in message and "'image'" in message and "'caption'" in message


def test_a_raising_build_function_is_named_with_its_cause(numbers):
    X, y = numbers
    with pytest.raises(ModelBuildError, match=r"failing raised RuntimeError: no GPU here") as err:
        MultimodalClassifier(model=failing, **QUICK).fit(X, y)
    assert isinstance(err.value.__cause__, RuntimeError)


def test_a_model_of_the_wrong_type_is_a_parameter_error(numbers):
    X, y = numbers
    with pytest.raises(ParameterError, match="Received: str"):
        MultimodalClassifier(model="resnet", **QUICK).fit(X, y)
    with pytest.raises(ParameterError, match=r"\(inputs, specs, n_outputs"):
        MultimodalClassifier(model=lambda x: x, **QUICK).fit(X, y)
    with pytest.raises(PersistenceError):  # a build function defined in a function
        mmsk.save(MultimodalClassifier(model=lambda a, b, c: None), "/nonexistent/x")


# ---- scikit-learn's own checks on an estimator with a user model -----------------
def _sklearn_model(inputs, specs, n_outputs, units=8):
    x = L.Dense(units, activation="relu")(inputs["numeric"])
    return keras.Model(inputs, L.Dense(n_outputs)(x))


CHECKS = (
    "check_get_params_invariance", "check_set_params", "check_parameters_default_constructible",
    "check_no_attributes_set_in_init", "check_dont_overwrite_parameters",
    "check_fit2d_predict1d", "check_estimators_pickle", "check_fit_idempotent",
    "check_n_features_in",
)  # fmt: skip


def expected_failures(estimator):
    failures = {
        "check_sample_weight_equivalence_on_dense_data": "minibatch SGD (test_estimator_checks)",
        "check_methods_subset_invariance": "float32 blocking (test_estimator_checks)",
        "check_methods_sample_order_invariance": "float32 blocking (test_estimator_checks)",
    }
    if any(k.startswith("model__") for k in estimator.get_params(deep=False)):
        failures["check_no_attributes_set_in_init"] = (
            "routed settings (model__units=4) are kept as attributes, as scikeras keeps them; "
            "get_params lists them and clone passes them on"
        )
    return failures


def _user_model_checks():
    """(id, estimator, check) for the CHECKS subset; ids name the class and the check
    (the estimators' reprs hold a function's address, which differs between
    pytest-xdist workers)."""
    estimators = [
        MultimodalClassifier(model=_sklearn_model, epochs=5, learning_rate=0.01, random_state=0),
        MultimodalRegressor(
            model=_sklearn_model, model__units=4, epochs=5, learning_rate=0.01, random_state=0
        ),
    ]
    cases = []
    for est in estimators:
        checks = estimator_checks_generator(
            est, expected_failed_checks=expected_failures(est), mark="xfail"
        )
        for item in checks:
            marks = item.marks if hasattr(item, "marks") else ()
            estimator, check = item.values if hasattr(item, "values") else item
            name = getattr(check, "func", check).__name__
            options = ",".join(f"{k}={v}" for k, v in getattr(check, "keywords", {}).items())
            if name in CHECKS:
                case_id = f"{type(est).__name__}-{name}({options})"
                cases.append(pytest.param(estimator, check, marks=marks, id=case_id))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize(("estimator", "check"), _user_model_checks())
def test_sklearn_checks_with_a_user_model(estimator, check):
    """A quick subset (the estimator API around a user model); every check runs on
    mmsk's own network in test_estimator_checks.py."""
    check(estimator)
