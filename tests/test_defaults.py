"""The defaults do what they claim: early stopping, text encoder choice, image size, scaling."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

import mmsk
from mmsk.components import BagEncoder, TransformerEncoder
from mmsk.models import _training as training
from mmsk.models._params import resolve_encoders
from mmsk.preprocessing import ImagePreprocessor, TextVectorizer

WORDS = [f"w{i}" for i in range(300)]


def test_validation_and_early_stopping_are_on_by_default():
    clf = mmsk.MultimodalClassifier()
    assert (clf.validation_split, clf.early_stopping, clf.epochs) == ("auto", True, 100)
    assert training.validation_share(clf.validation_split, 1000) == 0.1
    assert training.validation_share(clf.validation_split, 199) == 0.0  # tiny data: every row


@pytest.mark.slow
def test_early_stopping_restores_the_best_epoch():
    """The kept model's loss on the held-out rows is the lowest in ``history_``."""
    rng = np.random.default_rng(0)
    n = 300
    X = rng.normal(size=(n, 20))
    y = (X[:, 0] + rng.normal(0, 1.5, n) > 0).astype(int)  # noisy: overfits after a while
    # wide=False: no linear blend after training, the network is the best epoch's.
    clf = mmsk.MultimodalClassifier(head_units=256, learning_rate=0.01, patience=4, wide=False,
                                    epochs=60, random_state=0).fit(X, y)  # fmt: skip
    val_loss = clf.history_["val_loss"]
    best = int(np.argmin(val_loss))
    assert best < len(val_loss) - 1  # training went on past the best epoch
    assert clf.n_epochs_ == len(val_loss) < 60  # and stopped early
    # The same held-out rows as in fit: the split is seeded from random_state.
    seed = int(check_random_state(0).randint(0, 2**31 - 1))
    _, val = train_test_split(np.arange(n), test_size=0.1, random_state=seed, stratify=y)
    kept = log_loss(y[val], clf.predict_proba(X[val]), labels=[0, 1])
    assert kept == pytest.approx(val_loss[best], rel=1e-3)
    assert kept < val_loss[-1]


def _names(n, rng):
    return [" ".join(rng.choice(WORDS, 3)) for _ in range(n)]


@pytest.mark.slow  # trains two models
def test_auto_text_encoder_is_a_bag_for_short_text_and_a_sequence_model_for_long():
    rng = np.random.default_rng(0)
    n = 20
    y = rng.integers(0, 2, n)
    short = pd.DataFrame({"name": _names(n, rng)})
    reviews = pd.DataFrame({"review": [" ".join(rng.choice(WORDS, 260)) for _ in range(n)]})
    kw = dict(epochs=1, random_state=0)
    clf = mmsk.MultimodalClassifier(**kw).fit(short, y)
    assert isinstance(clf.encoders_["name"], BagEncoder)
    assert "BagEncoder" in clf._repr_html_()
    clf = mmsk.MultimodalClassifier(**kw).fit(reviews, y)
    assert clf.specs_["review"].shape == (260,)
    assert isinstance(clf.encoders_["review"], TransformerEncoder)
    # A name given for the kind still wins, and settings reach the automatic choice.
    specs = clf.specs_
    assert type(resolve_encoders({"text": "rnn"}, specs)["review"]).__name__ == "RNNEncoder"
    clf = mmsk.MultimodalClassifier().set_params(encoders__text__embedding_dim=8)
    assert isinstance(clf.encoders["text"], BagEncoder)
    assert clf.encoders["text"].embedding_dim == 8


@pytest.mark.slow
def test_bag_encoder_learns_word_order_through_bigrams():
    """'a b' and 'b a' have the same words: only the bigrams tell them apart."""
    rng = np.random.default_rng(0)
    pairs = [(a, b) for a in WORDS[:7] for b in WORDS[:7] if a < b]

    def draw(n):
        rows = [pairs[i] for i in rng.integers(0, len(pairs), n)]
        flip = rng.integers(0, 2, n)
        text = [f"{b} {a}" if f else f"{a} {b}" for (a, b), f in zip(rows, flip, strict=True)]
        return pd.DataFrame({"pair": text}), flip

    (X, y), (X_new, y_new) = draw(150), draw(200)
    scores = {}
    for ngrams in (1, 2):
        clf = mmsk.MultimodalClassifier(encoders={"text": BagEncoder(ngrams=ngrams)},
                                        wide=False, learning_rate=0.02, epochs=25,
                                        random_state=0).fit(X, y)  # fmt: skip
        scores[ngrams] = clf.score(X_new, y_new)
    assert scores[1] < 0.7  # a bag of words cannot know the order
    assert scores[2] > 0.95


def test_word_dropout_teaches_the_out_of_vocabulary_id_from_the_training_words():
    """Every training word is in the vocabulary, so without word dropout the
    out-of-vocabulary id 1 never occurs in training and its weight on the wide path
    (zeros at the start) stays zero; with it (the default) that weight is trained,
    and each word's rate is word_dropout / (word_dropout + its count)."""
    rng = np.random.default_rng(0)
    text = [" ".join(rng.choice(WORDS[:30], 3)) for _ in range(150)]  # < 200 rows: no blend
    y = np.array([int(t.split()[0] in WORDS[:15]) for t in text])
    X = pd.DataFrame({"t": text, "x": rng.normal(size=150)})
    clf = mmsk.MultimodalClassifier(epochs=3, random_state=0).fit(X, y)
    layer = clf.model_.get_layer("t_unknown")
    words = clf.preprocessor_.specs_["t"].words().shape[0]  # character n-gram ids follow
    ids = clf.preprocessor_.transform(X)["t"][:, :words]
    counts = np.bincount(ids.ravel(), minlength=layer.vocabulary_size)
    word = 5
    assert layer.rates.numpy()[word] == pytest.approx(0.25 / (0.25 + counts[word]), rel=1e-6)
    trained = clf.model_.get_layer("wide_t_words").get_weights()[0][1]
    assert np.abs(trained).max() > 1e-4

    off = mmsk.MultimodalClassifier(epochs=3, random_state=0, word_dropout=0).fit(X, y)
    assert "t_unknown" not in {layer.name for layer in off.model_.layers}
    np.testing.assert_array_equal(off.model_.get_layer("wide_t_words").get_weights()[0][1], 0)
    with pytest.raises(mmsk.exceptions.ParameterError, match="word_dropout"):
        mmsk.MultimodalClassifier(word_dropout=-0.1).fit(X, y)


def test_an_estimator_saved_before_word_dropout_loads_with_it_off():
    """Pickles made before the setting existed trained without it: they read 0."""
    old = mmsk.MultimodalClassifier(epochs=3).__getstate__()
    del old["word_dropout"]
    loaded = mmsk.MultimodalClassifier.__new__(mmsk.MultimodalClassifier)
    loaded.__setstate__(old)
    assert loaded.get_params()["word_dropout"] == 0.0 and loaded.epochs == 3
    assert mmsk.MultimodalClassifier().get_params()["word_dropout"] == 0.25


def test_text_is_split_at_punctuation_by_default():
    vec = TextVectorizer().fit(["python3-numpy libgtk-3-dev", "GTK+ based_tool"])
    assert {"python3", "numpy", "libgtk", "dev", "gtk", "based", "tool"} <= set(vec.vocabulary_)
    assert vec.transform(["numpy-dev"])[0, :2].tolist() == [
        vec.vocabulary_.index("numpy"),
        vec.vocabulary_.index("dev"),
    ]


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((8, 8), (8, 8)), ((20, 30, 3), (20, 30)), ((300, 200, 3), (64, 43))],
    ids=["tiny-kept", "small-kept", "large-capped"],
)
def test_image_size_is_chosen_from_the_data(shape, expected):
    images = np.zeros((4, *shape), np.uint8)
    prep = ImagePreprocessor().fit(images)
    assert prep.size_ == expected
    assert prep.transform(images).shape[1:3] == expected
    assert ImagePreprocessor(size=16).fit(images).size_ == (16, 16)  # a given size is kept


def test_image_size_of_files_is_read_from_their_headers(tmp_path):
    from PIL import Image

    paths = []
    for i, (w, h) in enumerate([(40, 20), (60, 30), (50, 25), (300, 100)]):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("RGB", (w, h)).save(paths[-1])
    assert ImagePreprocessor().fit(paths).size_ == (28, 55)  # median 27.5 x 55


def test_regressor_trains_on_a_standardised_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    y = 5e4 + 2e3 * X[:, 0]  # far from unit scale
    reg = mmsk.MultimodalRegressor(learning_rate=0.01, epochs=30, random_state=0).fit(X, y)
    assert reg.y_mean_[0] == pytest.approx(y.mean())
    assert reg.y_scale_[0] == pytest.approx(y.std())
    batch, _ = training.convert(reg, X)
    raw = np.asarray(reg.model_(batch.to_inputs(reg.modalities_)))
    assert abs(raw.mean()) < 0.3 and 0.5 < raw.std() < 1.5  # the network sees unit scale
    assert reg.score(X, y) > 0.9  # predictions are on the original scale


def test_audio_duration_is_chosen_from_the_data(tmp_path):
    import wave

    from mmsk.preprocessing import AudioFeaturizer

    rng = np.random.default_rng(0)
    clips = [rng.uniform(-0.5, 0.5, 4000).astype("float32") for _ in range(19)]
    f = AudioFeaturizer().fit([*clips, np.zeros(64000, "float32")])  # one 4 s outlier
    assert f.duration_ == pytest.approx(np.percentile([0.25] * 19 + [4.0], 95))
    assert f.n_samples_ == round(f.duration_ * 16000)
    short = AudioFeaturizer().fit(clips)  # no padding: every frame holds signal
    assert short.duration_ == 0.25 and short.n_samples_ == 4000
    assert short.transform(clips).shape == (19, 1 + (4000 - 400) // 160, 40)
    path = tmp_path / "clip.wav"  # files: their own rate and length
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes((rng.uniform(-0.5, 0.5, 4000) * 32767).astype("<i2").tobytes())
    assert AudioFeaturizer().fit([str(path)]).duration_ == 0.5
    assert AudioFeaturizer(duration=1.0).fit(clips).n_samples_ == 16000  # explicit wins
