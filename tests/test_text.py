"""Tests of :class:`mmsk.preprocessing._text.TextVectorizer` (real Keras computations)."""

from __future__ import annotations

import doctest
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimator_tags_renamed,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    check_valid_tag_types,
    parametrize_with_checks,
)

from mmsk import ModalitySpec
from mmsk.exceptions import DecodeError, InputError, InputTypeError, ParameterError
from mmsk.preprocessing import _text
from mmsk.preprocessing._text import TextVectorizer

CORPUS = pd.Series(
    [
        "The cat sat on the mat.",
        "The dog ate my homework!",
        "A cat and a dog, friends?",
        "the END",
    ],
    name="review",
)


def keras_reference(vec: TextVectorizer, texts: list[str]) -> np.ndarray:
    """The same ids computed by a plain Keras layer built from the learned vocabulary."""
    import keras

    from mmsk.preprocessing._text import _lower_and_split_punctuation

    standardize = vec.standardize
    if standardize == "lower_and_split_punctuation":  # mmsk's own: punctuation -> space
        split = vec.split == "whitespace"
        standardize = _lower_and_split_punctuation if split else "lower_and_strip_punctuation"
    layer = keras.layers.TextVectorization(
        standardize=standardize,
        split=vec.split,
        ngrams=vec.ngrams,
        output_mode="int",
        output_sequence_length=vec.sequence_length_,
        vocabulary=vec.vocabulary_[2:],  # Keras adds "" and "[UNK]" itself
    )
    assert layer.get_vocabulary() == vec.vocabulary_
    return np.asarray(layer(np.asarray(texts, dtype=object)))


def test_fit_learns_vocabulary_and_spec():
    vec = TextVectorizer(sequence_length=6)
    assert vec.fit(CORPUS) is vec
    assert vec.vocabulary_[:2] == ["", "[UNK]"]
    assert vec.vocabulary_[2] == "the"  # most frequent first (4 times, case folded)
    assert {"cat", "dog", "mat", "homework", "end"} <= set(vec.vocabulary_)
    assert all(type(t) is str for t in vec.vocabulary_)
    assert "the." not in vec.vocabulary_ and "The" not in vec.vocabulary_
    assert vec.vocabulary_size_ == len(vec.vocabulary_) == 15
    assert vec.sequence_length_ == 6
    assert vec.spec_ == ModalitySpec("text", (6,), "int32", vocabulary_size=15)
    assert vec.n_features_in_ == 1


def test_padding_and_oov_ids():
    vec = TextVectorizer(sequence_length=5).fit(CORPUS)
    ids = {t: i for i, t in enumerate(vec.vocabulary_)}
    out = vec.transform(["the zebra cat", "", "cat " * 9])
    assert out.dtype == np.int32 and out.shape == (3, 5)
    assert out[0].tolist() == [ids["the"], 1, ids["cat"], 0, 0]
    assert out[1].tolist() == [0] * 5  # empty string: present, but no tokens
    assert out[2].tolist() == [ids["cat"]] * 5  # truncated


def test_max_tokens_limits_vocabulary():
    vec = TextVectorizer(max_tokens=4).fit(CORPUS)
    assert vec.vocabulary_size_ == 4
    assert vec.vocabulary_[2] == "the"
    assert vec.transform(["homework"])[0, 0] == 1


def test_sequence_length_from_99th_percentile():
    texts = [" ".join(["w"] * n) for n in range(1, 101)]  # 1..100 tokens
    vec = TextVectorizer().fit([*texts, None, None])  # missing cells do not count
    assert vec.sequence_length_ == int(np.ceil(np.percentile(np.arange(1, 101), 99))) == 100
    assert vec.transform(texts).shape == (100, 100)
    assert TextVectorizer(max_sequence_length=7).fit(texts).sequence_length_ == 7
    assert TextVectorizer(sequence_length=3).fit(texts).sequence_length_ == 3
    assert TextVectorizer().fit(["", ""]).sequence_length_ == 1  # at least 1


def test_sequence_length_counts_ngrams():
    # 4 words -> 4 unigrams + 3 bigrams = 7 positions
    assert TextVectorizer(ngrams=2).fit(["a b c d"]).sequence_length_ == 7
    assert TextVectorizer(ngrams=(2, 3)).fit(["a b c d"]).sequence_length_ == 5


def test_character_split():
    vec = TextVectorizer(split="character").fit(["abc", "ab", "Aa!"])
    assert set(vec.vocabulary_[2:]) == {"a", "b", "c"}
    assert vec.sequence_length_ == 3
    out = vec.transform(["cab", "xa"])
    ids = {t: i for i, t in enumerate(vec.vocabulary_)}
    assert out.tolist() == [[ids["c"], ids["a"], ids["b"]], [1, ids["a"], 0]]


@pytest.mark.parametrize("ngrams", [2, (1, 3), (2,)])
def test_ngrams(ngrams):
    vec = TextVectorizer(ngrams=ngrams, sequence_length=8).fit(CORPUS)
    assert ("the cat" in vec.vocabulary_) == (ngrams != (1, 3))
    assert ("the cat sat" in vec.vocabulary_) == (ngrams == (1, 3))
    texts = ["the cat sat on the mat", "dog ate"]
    np.testing.assert_array_equal(vec.transform(texts), keras_reference(vec, texts))


def test_character_ngrams():
    vec = TextVectorizer(split="character", ngrams=2, sequence_length=5).fit(["abc"])
    assert "a b" in vec.vocabulary_  # character bigrams are joined by a space
    np.testing.assert_array_equal(vec.transform(["abca"]), keras_reference(vec, ["abca"]))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"standardize": None, "max_tokens": None},
        {"standardize": "lower"},
        {"standardize": "strip_punctuation", "split": "character"},
        {"ngrams": 3, "sequence_length": 12},
    ],
)
def test_matches_keras_text_vectorization(params):
    vec = TextVectorizer(**params).fit(CORPUS)
    texts = [*CORPUS, "unseen words, The CAT!", "", "  spaced   out\ttabs\n"]
    np.testing.assert_array_equal(vec.transform(texts), keras_reference(vec, texts))


def test_missing_cells_give_zero_rows():
    s = pd.Series(["the cat", None, np.nan, pd.NA, "", "dog"], name="review")
    vec = TextVectorizer(sequence_length=3).fit(s)
    assert "nan" not in vec.vocabulary_ and "none" not in vec.vocabulary_
    out = vec.transform(s)
    assert out.shape == (6, 3)
    assert (out[1:5] == 0).all()
    assert out[0, 0] > 1 and out[5, 0] > 1


def test_all_missing_fit_learns_nothing():
    vec = TextVectorizer().fit([None, np.nan])
    assert vec.vocabulary_ == ["", "[UNK]"] and vec.sequence_length_ == 1
    assert vec.transform(["anything", None]).tolist() == [[1], [0]]


def test_bytes_are_decoded_as_utf8():
    vec = TextVectorizer(sequence_length=2).fit([b"caf\xc3\xa9 au lait", "caf\u00e9 noir"])
    assert "café" in vec.vocabulary_
    np.testing.assert_array_equal(
        vec.transform([b"caf\xc3\xa9", bytearray(b"noir"), np.bytes_(b"au")]),
        vec.transform(["café", "noir", "au"]),
    )


def test_non_utf8_bytes_error_names_column_and_row():
    s = pd.Series(["fine", b"\xff\xfe bad"], index=["a", "b"], name="notes")
    with pytest.raises(InputError, match=r"column 'notes', row 'b'.*UTF-8") as info:
        TextVectorizer().fit(s)
    assert isinstance(info.value, DecodeError)
    vec = TextVectorizer().fit(["fine"])
    with pytest.raises(InputError, match="expected UTF-8 text"):
        vec.transform(s)


def test_unencodable_str_error_names_row():
    with pytest.raises(InputError, match=r"column 'X', row 1: .*not valid Unicode"):
        TextVectorizer().fit(["fine", "bad \udcff byte"])


@pytest.mark.parametrize(
    ("cell", "type_name"),
    [(42, "int"), (3.5, "float"), (["a", "b"], "list"), (np.array([1, 2]), "ndarray")],
)
def test_non_string_cell_error(cell, type_name):
    s = pd.Series(["ok", "fine", cell], index=[10, 11, 12], name="review", dtype=object)
    with pytest.raises(InputTypeError) as info:
        TextVectorizer().fit(s)
    msg = str(info.value)
    assert "column 'review'" in msg and "row 12" in msg
    assert type_name in msg and "expected a str" in msg
    with pytest.raises(InputTypeError, match="row 12"):
        TextVectorizer().fit(["x"]).transform(s)


def test_not_fitted():
    vec = TextVectorizer()
    with pytest.raises(NotFittedError):
        vec.transform(["a"])
    with pytest.raises(NotFittedError):
        vec.get_feature_names_out()


def test_empty_and_bad_shaped_input():
    with pytest.raises(InputError, match="0 rows"):
        TextVectorizer().fit(pd.Series([], dtype=object, name="review"))
    vec = TextVectorizer().fit(["a"])
    with pytest.raises(InputError, match="0 rows"):
        vec.transform([])
    with pytest.raises(InputError, match="one column"):
        TextVectorizer().fit(pd.DataFrame({"a": ["x"], "b": ["y"]}))
    with pytest.raises(InputTypeError):
        TextVectorizer().fit("just one string")


def test_one_column_dataframe_and_arrays():
    df = pd.DataFrame({"review": CORPUS})
    a = TextVectorizer(sequence_length=4).fit(df)
    b = TextVectorizer(sequence_length=4).fit(CORPUS.to_numpy())
    assert a.vocabulary_ == b.vocabulary_
    np.testing.assert_array_equal(a.transform(df), b.transform(CORPUS.tolist()))
    np.testing.assert_array_equal(a.transform(df), a.transform(df.to_numpy()))  # (N, 1) object


@pytest.mark.parametrize(
    "params",
    [
        {"max_tokens": 2},
        {"sequence_length": 0},
        {"standardize": "upper"},
        {"split": None},
        {"ngrams": 0},
        {"ngrams": "2"},
        {"max_sequence_length": 0},
        {"char_ngrams": "all"},
        {"char_ngrams": 3},
    ],
)
def test_invalid_params_raise_in_fit(params):
    vec = TextVectorizer(**params)  # __init__ only stores
    with pytest.raises(ParameterError):
        vec.fit(["a"])


@pytest.mark.parametrize("ngrams", [(), (0, 1), (1, "2")])
def test_invalid_ngrams_tuple(ngrams):
    with pytest.raises(ParameterError, match="ngrams"):
        TextVectorizer(ngrams=ngrams).fit(["a"])


@pytest.mark.parametrize("chars", [(), (2,), (0, 3), (3, 2), (2, "5")])
def test_invalid_char_ngrams(chars):
    with pytest.raises(ParameterError, match="char_ngrams"):
        TextVectorizer(char_ngrams=chars).fit(["a"])


def char_reference(vec: TextVectorizer, texts: list[str]) -> np.ndarray:
    """The character n-gram ids a plain Keras layer gives for the whole texts."""
    import keras

    padded = [f" {_text._lower_and_split_punctuation(t).numpy().decode()} " if t else ""
              for t in texts]  # fmt: skip
    layer = keras.layers.TextVectorization(
        standardize=None, split="character", ngrams=vec._char_widths(), output_mode="int",
        output_sequence_length=vec.char_sequence_length_, vocabulary=vec.char_vocabulary_[2:],
    )  # fmt: skip
    return np.asarray(layer(np.asarray(padded, dtype=object)))


def test_character_ngrams_follow_the_word_ids():
    """Each row: the word ids, then the ids of the padded text's character n-grams, as a
    plain Keras layer gives them for the whole text (a long one too, with a newline)."""
    vec = TextVectorizer(char_ngrams=(2, 4), max_sequence_length=40).fit(CORPUS)
    words, chars = vec.sequence_length_, vec.char_sequence_length_
    assert chars == 40  # the 99th percentile of "the cat sat on the mat." is over the cap
    assert vec.spec_ == ModalitySpec(
        "text",
        (words + chars,),
        "int32",
        vec.vocabulary_size_,
        char_columns=chars,
        char_vocabulary_size=len(vec.char_vocabulary_),
    )
    assert vec.spec_.words() == ModalitySpec("text", (words,), "int32", vec.vocabulary_size_)
    assert " ".join(" ca") in vec.char_vocabulary_  # Keras joins the characters with spaces
    texts = ["The CAT!", "dog\nsat " * 50, "", "zzz"]
    out = vec.transform(texts)
    np.testing.assert_array_equal(out[:, :words], keras_reference(vec, texts))
    np.testing.assert_array_equal(out[:, words:], char_reference(vec, texts))
    assert (out[2] == 0).all()  # an empty text: no n-grams
    assert set(out[3, words:][out[3, words:] > 0]) == {1}  # "zzz": all out of vocabulary
    names = vec.get_feature_names_out()
    assert names[words - 1] == f"review_tok{words - 1}" and names[-1] == "review_char39"


def test_auto_character_ngrams_for_short_texts_only():
    short = TextVectorizer(char_ngrams="auto").fit(CORPUS)
    assert short._char_widths() == (2, 3, 4, 5) and short.char_sequence_length_ > 0
    long = TextVectorizer(char_ngrams="auto").fit([" ".join(["word"] * 40)] * 3)
    assert long.sequence_length_ == 40 and long.char_sequence_length_ == 0
    assert long.spec_.char_columns == 0 and long.char_keras_layer() is None
    chars = TextVectorizer(char_ngrams="auto", split="character").fit(CORPUS)
    assert chars.char_sequence_length_ == 0  # characters already


def test_a_vectorizer_pickled_before_character_ngrams_loads_without_them():
    vec = TextVectorizer().fit(CORPUS)
    old = dict(vars(vec))
    for key in ("char_ngrams", "char_vocabulary_", "char_vocabulary_size_",
                "char_sequence_length_"):  # fmt: skip
        old.pop(key)
    old["_settings"] = {k: v for k, v in old["_settings"].items() if k != "char_ngrams"}
    back = TextVectorizer.__new__(TextVectorizer)
    back.__setstate__(old)
    assert back.get_params()["char_ngrams"] is None and back.char_keras_layer() is None
    np.testing.assert_array_equal(back.transform(CORPUS), vec.transform(CORPUS))


def test_params_round_trip_and_clone():
    vec = TextVectorizer(max_tokens=50, sequence_length=7, ngrams=(1, 2), split="character")
    params = vec.get_params()
    assert params == {
        "max_tokens": 50,
        "sequence_length": 7,
        "standardize": "lower_and_split_punctuation",
        "split": "character",
        "ngrams": (1, 2),
        "max_sequence_length": 512,
        "char_ngrams": None,
    }
    assert vec.set_params(standardize="lower", ngrams=None) is vec
    assert vec.standardize == "lower" and vec.ngrams is None
    vec.fit(CORPUS)
    twin = clone(vec)
    assert twin.get_params() == vec.get_params()
    assert not hasattr(twin, "vocabulary_")


def test_refit_resets_cached_layer():
    vec = TextVectorizer(sequence_length=2).fit(["aaa bbb"])
    first = vec.transform(["ccc"])
    vec.fit(["ccc ddd"])
    assert first[0, 0] == 1 and vec.transform(["ccc"])[0, 0] > 1


def test_pickle_round_trip_gives_identical_transform():
    vec = TextVectorizer(ngrams=2).fit(CORPUS)
    state = dict(vars(vec))
    before = vec.transform(CORPUS)  # compiles the Keras layer, cached off the instance
    assert vars(vec) == state and all(vars(vec)[k] is v for k, v in state.items())
    back = pickle.loads(pickle.dumps(vec))
    assert vars(back).keys() == state.keys()
    assert back.vocabulary_ == vec.vocabulary_ and back.spec_ == vec.spec_
    np.testing.assert_array_equal(back.transform(CORPUS), before)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(TextVectorizer())).fit(CORPUS).transform(CORPUS),
        TextVectorizer().fit(CORPUS).transform(CORPUS),
    )


def test_get_feature_names_out():
    vec = TextVectorizer(sequence_length=3).fit(CORPUS)
    assert vec.get_feature_names_out().tolist() == ["review_tok0", "review_tok1", "review_tok2"]
    assert vec.get_feature_names_out(["review"]).tolist()[0] == "review_tok0"
    with pytest.raises(InputError, match="input_features"):
        vec.get_feature_names_out(["other"])
    unnamed = TextVectorizer(sequence_length=2).fit(["a b"])
    assert unnamed.get_feature_names_out().tolist() == ["text_tok0", "text_tok1"]
    assert unnamed.get_feature_names_out(["body"]).tolist() == ["body_tok0", "body_tok1"]
    df = pd.DataFrame({"body": ["a b"]})
    assert TextVectorizer(sequence_length=1).fit(df).get_feature_names_out().tolist() == [
        "body_tok0"
    ]


def test_set_output_pandas():
    vec = TextVectorizer(sequence_length=3).set_output(transform="pandas").fit(CORPUS)
    out = vec.transform(CORPUS)
    assert isinstance(out, pd.DataFrame)
    assert out.columns.tolist() == ["review_tok0", "review_tok1", "review_tok2"]
    assert out.index.equals(CORPUS.index)


def test_many_rows_are_vectorised_in_chunks(monkeypatch):
    monkeypatch.setattr(_text, "_CHUNK", 3)  # several layer calls, also in fit
    texts = [f"w{i % 7} w{i % 5} w{i % 3}" for i in range(20)]
    vec = TextVectorizer().fit(texts)
    monkeypatch.undo()
    whole = TextVectorizer().fit(texts)
    assert vec.vocabulary_ == whole.vocabulary_
    np.testing.assert_array_equal(vec.transform(texts), whole.transform(texts))
    np.testing.assert_array_equal(vec.transform(texts), keras_reference(vec, texts))


@pytest.mark.parametrize(
    "params",
    [{"sequence_length": 16}, {"sequence_length": 16, "ngrams": (2, 3)}, {"split": "character"}],
)
def test_very_long_text_is_truncated_exactly(params):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in rng.integers(0, 40, 300_000)]
    # a long run of punctuation first: the prefix holds no token until it grows
    long_text = "!? " * 30_000 + " ".join(words)
    vec = TextVectorizer(**params).fit([" ".join(words[:500]), "w1 w2"])
    out = vec.transform([long_text, "w3", long_text[-5000:]])
    assert out.shape == (3, vec.sequence_length_)
    np.testing.assert_array_equal(out, keras_reference(vec, [long_text, "w3", long_text[-5000:]]))


def test_long_training_text_caps_sequence_length():
    vec = TextVectorizer(max_sequence_length=64).fit(["tok " * 200_000] * 3)
    assert vec.sequence_length_ == 64
    assert (vec.transform(["tok " * 10])[0, :10] > 1).all()


def test_tags():
    tags = TextVectorizer().__sklearn_tags__()
    assert not tags.input_tags.two_d_array
    assert tags.input_tags.one_d_array and tags.input_tags.string and tags.input_tags.allow_nan
    assert tags.transformer_tags.preserves_dtype == []


def test_docstring_example():
    result = doctest.testmod(_text, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# In the fast tier: test_import.py::test_preprocessing_and_inference_stay_light_until_used
@pytest.mark.slow
def test_import_does_not_load_tensorflow():
    code = (
        "import sys, mmsk.preprocessing._text; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# The API checks that need no 2-D numeric data.
API_CHECKS = [
    check_estimator_cloneable,
    check_estimator_tags_renamed,
    check_valid_tag_types,
    check_estimator_repr,
    check_no_attributes_set_in_init,
    check_do_not_raise_errors_in_init_or_set_params,
    check_mixin_order,
    check_parameters_default_constructible,
    check_get_params_invariance,
    check_set_params,
]


@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
def test_sklearn_api_checks(check):
    check("TextVectorizer", TextVectorizer())


# TextVectorizer takes one column of texts (tags: two_d_array=False), so scikit-learn's
# common checks, which feed 2-D numeric arrays, are skipped for it: only
# check_estimator_cloneable runs.  Kept so more run as soon as scikit-learn gains
# checks for 1-D string input; the data-free API checks above run explicitly.
with warnings.catch_warnings():  # silence the SkipTestWarning raised while collecting
    warnings.simplefilter("ignore")
    _COMMON = parametrize_with_checks([TextVectorizer()])


@_COMMON
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
