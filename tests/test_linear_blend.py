"""The linear blend: a fresh fit ends as the network blended with the best linear model."""

import keras
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import mmsk
from mmsk.models import _linear as linear
from mmsk.models import _training as training

WORDS = [f"w{i}" for i in range(400)]


class EpochWeights(keras.callbacks.Callback):
    """Keeps the network's weights at the end of every epoch."""

    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def _network_alone(est, grab, X):
    """``est``'s predictions with the weights early stopping restored (before the blend)."""
    blended = est.model_.get_weights()
    est.model_.set_weights(grab.weights[int(np.argmin(est.history_["val_loss"]))])
    try:
        return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    finally:
        est.model_.set_weights(blended)


def _frame(n=260, seed=0, missing=0.0):
    """Names holding a rare key word of the class, a tinted 6x6 image and two numbers."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    keys = [WORDS[c::3][:60] for c in range(3)]  # 60 key words per class
    names = [" ".join([*rng.choice(WORDS, 3), rng.choice(keys[c])]) for c in y]
    images = []
    for c in y:
        img = rng.integers(0, 90, (6, 6, 3)).astype(np.uint8)
        img[..., c] += np.uint8(rng.integers(0, 40))
        images.append(img)
    frame = pd.DataFrame({"name": names, "image": images,
                          "a": y + rng.normal(0, 2.0, n), "b": rng.normal(size=n)})  # fmt: skip
    if missing:
        frame.loc[rng.random(n) < missing, "name"] = None
    return frame, y


def _linear_logits(est, X, y, activation):
    """The logits of the linear model the blend chose (solved again outside the network)."""
    x = training.to_batch(est, X, fit=False).to_inputs(est.modalities_)
    seed = training.draw_seed(est.random_state)
    rows, _ = training._split(y, 0.1, seed, y.dtype.kind == "i")
    design, blocks = linear._features(est.model_, x, np.asarray(x["mmsk_present"]),
                                      est.modalities_, rows)  # fmt: skip
    dense = np.concatenate([np.full(len(b.scale), not b.bag) for b in blocks])
    solution = linear._solve(design, y, None, activation, dense, seed)
    assert solution.kind == est.linear_blend_["linear_model"]
    assert solution.dense_weight == est.linear_blend_["dense_weight"]
    design = design @ sparse.diags(np.where(dense, solution.dense_weight, 1.0))
    return np.asarray(design @ solution.coef.T + solution.intercept)


@pytest.fixture(scope="module")
def blended():
    """A classifier fitted on rows of which 30 % have no text, its epochs' weights."""
    X, y = _frame(missing=0.3)
    grab = EpochWeights()
    clf = mmsk.MultimodalClassifier(epochs=3, random_state=0, callbacks=[grab]).fit(X, y)
    return X, y, clf, grab


def test_the_blend_is_written_into_the_network_exactly(blended):
    """Predictions are softmax(a * network logits + b * linear logits), the linear
    model being scikit-learn's on the wide features, chosen by cross-validation and
    refitted on all rows; rows without text included."""
    X, y, clf, grab = blended
    chosen = clf.linear_blend_
    assert clf.modalities_ == ["name", "image", "numeric"]
    assert chosen["linear"] > 0  # three epochs are too few for the rare key words
    z_linear = _linear_logits(clf, X, y, "softmax")
    z = chosen["network"] * np.log(_network_alone(clf, grab, X)) + chosen["linear"] * z_linear
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(X), expected, atol=5e-3)
    # On the held-out rows the blend does at least as well as the network alone.
    assert chosen["val_loss"] <= chosen["val_loss_network"]


@pytest.mark.slow
def test_the_blend_beats_the_network_alone_where_words_carry_the_class():
    X, y = _frame(n=600, seed=1)
    X_test, y_test = _frame(n=600, seed=2)
    grab = EpochWeights()
    clf = mmsk.MultimodalClassifier(epochs=4, random_state=0, callbacks=[grab]).fit(X, y)
    alone = (np.argmax(_network_alone(clf, grab, X_test), axis=1) == y_test).mean()
    blended = clf.score(X_test, y_test)
    assert blended > alone + 0.05, (blended, alone, clf.linear_blend_)


def test_regressor_blends_with_ridge():
    rng = np.random.default_rng(1)
    n = 240
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = 3 * X["a"].to_numpy() - X["b"].to_numpy() + rng.normal(0, 0.5, n)
    grab = EpochWeights()
    reg = mmsk.MultimodalRegressor(epochs=2, random_state=0, callbacks=[grab]).fit(X, y)
    chosen = reg.linear_blend_
    assert chosen["linear"] > 0
    # On the standardised target: a * network + b * ridge.
    mean, std = y.mean(), y.std()
    assert chosen["linear_model"] == "ridge"
    z_linear = _linear_logits(reg, X, (y - mean) / std, "linear")
    network = (_network_alone(reg, grab, X) - mean) / std
    expected = chosen["network"] * network + chosen["linear"] * z_linear.ravel()
    np.testing.assert_allclose((reg.predict(X) - mean) / std, expected, atol=1e-3)


def test_numbers_reach_the_linear_model_as_curves():
    """The wide path reads each number beside its piecewise-linear encoding, so the
    blended linear model fits a V that no line through the number can."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(3)

    def frame(n):
        X = pd.DataFrame({"a": rng.uniform(-3, 3, n), "b": rng.normal(size=n)})
        return X, np.abs(X["a"].to_numpy()) + rng.normal(0, 0.1, n)

    (X, y), (X_test, y_test) = frame(400), frame(400)
    reg = mmsk.MultimodalRegressor(epochs=2, random_state=0).fit(X, y)
    edges = reg.model_.get_layer("wide_numeric_bins").edges.numpy()
    assert edges.shape == (2, 9) and np.all(np.diff(edges, axis=1) > 0)  # both numbers binned
    assert reg.linear_blend_["linear"] > reg.linear_blend_["network"]
    line = r2_score(y_test, LinearRegression().fit(X, y).predict(X_test))
    assert line < 0.05
    assert r2_score(y_test, reg.predict(X_test)) > 0.9, reg.linear_blend_


@pytest.mark.slow  # trains three models
def test_no_blend_without_a_wide_path_or_held_out_rows():
    X, y = _frame(n=80)
    wide_off = mmsk.MultimodalClassifier(wide=False, epochs=1, validation_split=0.25)
    assert wide_off.fit(X, y).linear_blend_ is None
    # "auto" holds out no rows below 200: nothing to choose the blend on.
    assert mmsk.MultimodalClassifier(epochs=1).fit(X, y).linear_blend_ is None


@pytest.mark.slow
def test_no_blend_with_a_loss_of_ones_own_or_a_multilabel_target():
    X, y = _frame(n=80)
    kw = dict(epochs=1, random_state=0, validation_split=0.25)
    own_loss = mmsk.MultimodalClassifier(loss="sparse_categorical_crossentropy", **kw)
    assert own_loss.fit(X, y).linear_blend_ is None
    multilabel = np.stack([y == 0, y == 1], axis=1).astype(int)
    assert mmsk.MultimodalClassifier(**kw).fit(X, multilabel).linear_blend_ is None


@pytest.mark.slow
def test_large_data_chooses_on_a_sample_and_refits_on_every_row(monkeypatch):
    monkeypatch.setattr(linear, "SELECTION_ROWS", 150)  # as if 260 rows were many
    X, y = _frame()
    clf = mmsk.MultimodalClassifier(epochs=2, random_state=0).fit(X, y)
    chosen = clf.linear_blend_
    assert chosen["linear"] > 0
    assert clf.score(X, y) > 0.9


def test_the_diagram_shows_the_blend(blended):
    clf = blended[2]
    chosen = clf.linear_blend_
    html = clf._repr_html_()
    assert f"linear blend: {chosen['network']:g} x network + {chosen['linear']:g} x " in html
    assert {"logistic": "LogisticRegression", "svm": "LinearSVC"}[chosen["linear_model"]] in html


def test_image_colour_histograms_are_adapted_and_join_the_linear_model(blended):
    """The image's colour histogram (bins from the training images) is a wide block of
    its own, so the linear model sees colours wherever they are in the picture."""
    X, _, clf, _ = blended
    colours = clf.model_.get_layer("wide_image_colours")
    pixels = clf.preprocessor_.transform(X)["image"]  # the training rows' network input
    np.testing.assert_allclose(colours.low.numpy(), pixels.reshape(-1, 3).min(axis=0))
    np.testing.assert_allclose(colours.high.numpy(), pixels.reshape(-1, 3).max(axis=0))
    assert colours.bins * 3 == clf.model_.get_layer("wide_image_hist").kernel.shape[0]
    blocks = [layer for _, layer, _, _ in linear._wide_layers(clf.model_, clf.modalities_)]
    assert blocks == [
        "wide_name_words",
        "wide_name_chars",
        "wide_image",
        "wide_image_hist",
        "wide_numeric",
    ]


def test_text_encoders_see_the_words_and_the_wide_path_their_character_ngrams(blended):
    _, _, clf, _ = blended
    spec = clf.preprocessor_.specs_["name"]
    assert spec.char_columns > 0 and spec.char_vocabulary_size > 2  # short names: "auto" on
    model = clf.model_
    words = spec.words().shape[0]
    assert model.get_layer("name_words").output.shape[1] == words
    assert model.get_layer("name_unknown").input.shape[1] == words  # dropout: words only
    assert model.get_layer("name_ngrams").input.shape[1] == words  # the deep bag's input
    assert model.get_layer("wide_name_chars").vocabulary_size == spec.char_vocabulary_size
    assert model.get_layer("wide_name_chars").input.shape[1] == spec.char_columns


def test_words_never_seen_in_training_are_read_by_their_character_ngrams():
    """Every name is a word of its own, so no test word is in the vocabulary: the class
    shows only in how the word is spelt (its ending). With the default character
    n-grams that is learned; with the words alone no better than chance."""
    from mmsk.preprocessing import ModalityPreprocessor, TextVectorizer

    rng = np.random.default_rng(0)
    endings = ["dev", "doc", "bin"]

    def frame(n, start):
        y = rng.integers(0, 3, n)
        stems = ["".join(rng.choice(list("klmnprstvz"), 6)) for _ in range(n)]
        names = [f"{s}{start + i}{endings[c]}" for i, s, c in zip(range(n), stems, y, strict=True)]
        return pd.DataFrame({"name": names, "x": rng.normal(size=n)}), y

    X, y = frame(300, 0)
    X_test, y_test = frame(150, 10_000)
    clf = mmsk.MultimodalClassifier(epochs=3, random_state=0).fit(X, y)
    assert clf.score(X_test, y_test) > 0.9
    words = mmsk.MultimodalClassifier(
        epochs=3, random_state=0, preprocessor=ModalityPreprocessor(text=TextVectorizer())
    ).fit(X, y)
    assert words.score(X_test, y_test) < 0.5


def test_choose_keeps_a_clear_winner():
    """A blend far better on every row is kept, even when it is not an even one."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 1.5, 300)
    rows = {(a, b): base + 0.5 * abs(a - 1.0) + 0.5 * b for a in linear.BLEND
            for b in linear.BLEND if a or b}  # fmt: skip
    assert linear._choose(rows, None) == (1.0, 0.0)


def test_choose_takes_the_even_blend_among_those_within_one_standard_error():
    """Where the best blend wins by less than the noise of its rows' differences,
    the even one is kept; where it wins on every row, it is kept; and weights count."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 1.5, 300)

    def noisy(offset):  # row losses of a mean exactly ``offset`` above base's
        v = rng.normal(0, 0.2, 300)  # the differences' standard error is about 0.016
        return base + v - v.mean() + offset

    rows = {(1.0, 0.0): noisy(0.0), (0.5, 0.5): noisy(0.005), (0.0, 1.0): noisy(0.01)}
    assert linear._choose(rows, None) == (0.5, 0.5)  # the network is lowest, by noise
    rows[(0.5, 0.5)] = rows[(1.0, 0.0)] + 0.005  # worse on every row: no noise at all
    assert linear._choose(rows, None) == (1.0, 0.0)
    # The even blend is far worse on the rows of weight 0 only.
    rows[(0.5, 0.5)] = np.r_[base[:150] + 5.0, base[150:]]
    rows[(1.0, 0.0)] = rows[(0.0, 1.0)] = base + 0.3  # worse on every row
    w = np.r_[np.zeros(150), np.ones(150)]
    assert linear._choose(rows, None) != (0.5, 0.5)
    assert linear._choose(rows, w) == (0.5, 0.5)


def test_held_out_logits_come_from_the_chosen_model_fitted_without_those_rows():
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    X = sparse.csr_matrix(rng.normal(size=(300, 6)))
    y = np.argmax(X @ rng.normal(size=(6, 3)) + rng.normal(0, 0.5, (300, 3)), axis=1)
    holdout = np.arange(200, 300)
    solution = linear._solve(X, y, None, "softmax", np.zeros(6, bool), 0, holdout=holdout)
    model = {"logistic": LogisticRegression(C=solution.strength, max_iter=300, tol=1e-6),
             "svm": LinearSVC(C=solution.strength, max_iter=2000)}[solution.kind]  # fmt: skip
    model.fit(X[:200], y[:200])
    expected = solution.temperature * model.decision_function(X[200:])
    np.testing.assert_allclose(solution.held_out, expected, atol=0.05 * np.abs(expected).max())
    # Not the refit on every row: that one has seen the held-out rows.
    refit = np.asarray(X[200:] @ solution.coef.T + solution.intercept)
    assert np.abs(refit - solution.held_out).max() > 0.05 * np.abs(expected).max()
