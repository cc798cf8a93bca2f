"""Tests of :class:`mmsk.preprocessing.ModalityPreprocessor`: a DataFrame -> ModalityBatch."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mmsk import ModalityBatch, ModalitySpec
from mmsk.exceptions import (
    ColumnMismatchError,
    InputError,
    InputTypeError,
    NotFittedError,
    ParameterError,
)
from mmsk.preprocessing import (
    AudioFeaturizer,
    ImagePreprocessor,
    ModalityPreprocessor,
    TextVectorizer,
)

SMALL_AUDIO = {"sample_rate": 100, "duration": 0.2, "frame_length": 0.05, "frame_step": 0.02}


def small_audio() -> AudioFeaturizer:
    return AudioFeaturizer(n_mels=4, **SMALL_AUDIO)  # (8 frames, 4 mels)


def table(n: int = 6, seed: int = 0) -> pd.DataFrame:
    """One column of every kind; row 2 misses image, text and both numbers."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "photo": [rng.integers(0, 256, (6, 5, 3), dtype=np.uint8) for _ in range(n)],
            "review": [
                "a lovely warm coat",
                "the zip broke fast",
                None,
                "fits well and looks good",
                "too big for me",
                "great value",
            ][:n],
            "voice": [rng.uniform(-0.5, 0.5, 30) for _ in range(n)],
            "price": [10.0, 12.5, np.nan, 8.0, 20.0, 15.0][:n],
            "weight": [1.0, np.nan, np.nan, 0.5, 2.0, 1.5][:n],
            "size": pd.Categorical(["S", "M", "L", "S", None, "M"][:n]),
        }
    )
    df.loc[2, "photo"] = None
    return df


def small_prep(**kw) -> ModalityPreprocessor:
    return ModalityPreprocessor(image=ImagePreprocessor(size=4), audio=small_audio(), **kw)


@pytest.fixture(scope="module")
def fitted():
    df = table()
    prep = small_prep()
    return df, prep, prep.fit_transform(df)


# --- defaults from inference ---------------------------------------------------------


def test_defaults_from_inference_build_one_modality_per_kind(fitted):
    df, prep, batch = fitted
    assert isinstance(batch, ModalityBatch) and len(batch) == 6
    assert list(batch) == ["photo", "review", "voice", "numeric", "categorical"]
    kinds = {name: spec.kind for name, spec in batch.specs.items()}
    assert kinds == {
        "photo": "image",
        "review": "text",
        "voice": "audio",
        "numeric": "numeric",
        "categorical": "categorical",
    }
    specs = batch.specs
    assert specs["photo"] == ModalitySpec("image", (4, 4, 3), "float32", columns=("photo",))
    assert specs["voice"] == ModalitySpec("audio", (8, 4), "float32", columns=("voice",))
    assert specs["review"].dtype == "int32" and specs["review"].columns == ("review",)
    text = prep.transformers_[1][1]
    assert specs["review"].vocabulary_size == text.vocabulary_size_ == len(text.vocabulary_)
    # two numbers + one missing-indicator each (both have NaN); L, M, S and <missing>
    assert specs["numeric"] == ModalitySpec("numeric", (4,), columns=("price", "weight"))
    assert specs["categorical"] == ModalitySpec("categorical", (4,), columns=("size",))
    for name, spec in specs.items():
        assert batch[name].shape == (6, *spec.shape)
        assert batch[name].dtype == np.dtype(spec.dtype)
    assert prep.specs_ == specs
    assert prep.feature_names_in_.tolist() == list(df.columns) and prep.n_features_in_ == 6
    assert [name for name, _, _ in prep.transformers_] == list(batch)
    assert isinstance(prep.transformers_[0][1], ImagePreprocessor)
    assert prep.transformers_[0][1].size == 4  # the template, cloned
    assert prep.image.__dict__.get("spec_") is None  # the template itself stays unfitted


def test_masks_for_missing_cells(fitted):
    _, _, batch = fitted
    masks = {name: m.tolist() for name, m in batch.masks.items()}
    assert masks["photo"] == [True, True, False, True, True, True]
    assert masks["review"] == [True, True, False, True, True, True]
    assert masks["voice"] == [True] * 6
    assert masks["numeric"] == [True, True, False, True, True, True]  # both NaN in row 2
    assert masks["categorical"] == [True, True, True, True, False, True]
    for name in batch:
        assert (batch[name][~batch.masks[name]] == 0).all(), name
        assert (batch[name][batch.masks[name]] != 0).any(), name


def test_partly_missing_numeric_row_is_imputed_with_an_indicator(fitted):
    df, prep, batch = fitted
    numeric = batch["numeric"]
    assert np.isfinite(numeric).all()
    scaler = prep.transformers_[3][1][-1]
    raw = numeric * scaler.scale_ + scaler.mean_  # undo the scaling
    # row 1: price present, weight imputed with the median of the training column, and
    # the indicator columns (price missing?, weight missing?) say which one was filled
    median = np.nanmedian(df["weight"])
    np.testing.assert_allclose(raw[1], [12.5, median, 0.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(raw[0], [10.0, 1.0, 0.0, 0.0], atol=1e-5)


def test_transform_matches_fit_transform_and_handles_new_missing_cells(fitted):
    df, prep, batch = fitted
    again = prep.transform(df)
    for name in batch:
        np.testing.assert_allclose(again[name], batch[name], atol=1e-6)
        np.testing.assert_array_equal(again.masks[name], batch.masks[name])
    new = table(3, seed=1)
    new.loc[0, "review"] = np.nan
    new.loc[1, ["price", "weight"]] = np.nan
    new.loc[2, "voice"] = None
    out = prep.transform(new)  # row 2 of table() misses photo, review and numbers already
    assert out.masks["review"].tolist() == [False, True, False]
    assert out.masks["numeric"].tolist() == [True, False, False]
    assert out.masks["voice"].tolist() == [True, True, False]
    assert out.masks["photo"].tolist() == [True, True, False]
    assert (out["voice"][2] == 0).all() and (out["review"][0] == 0).all()


def test_flat_matrix_and_feature_names_agree(fitted):
    df, prep, batch = fitted
    names = prep.get_feature_names_out()
    flat = np.asarray(batch)
    width = sum(int(np.prod(spec.shape)) for spec in batch.specs.values()) + 5
    assert flat.shape == (6, len(names)) == (6, width) == batch.shape
    assert names.tolist() == batch.feature_names().tolist()
    assert names[-5:].tolist() == [f"{m}_present" for m in batch]
    assert prep.get_feature_names_out(list(df.columns)).tolist() == names.tolist()
    with pytest.raises(InputError, match="input_features"):
        prep.get_feature_names_out(["a", "b"])


def test_pickle_round_trip(fitted):
    df, prep, batch = fitted
    back = pickle.loads(pickle.dumps(prep))
    out = back.transform(df)
    for name in batch:
        np.testing.assert_allclose(out[name], batch[name], atol=1e-6)


def test_modalities_mapping_overrides_inference():
    df = pd.DataFrame({"code": [1, 2, 1, 3], "note": ["x", "y", "x", "x"]})
    batch = ModalityPreprocessor(modalities={"code": "categorical", "note": "text"}).fit_transform(
        df
    )
    assert {n: s.kind for n, s in batch.specs.items()} == {
        "note": "text",
        "categorical": "categorical",
    }
    assert batch["categorical"].shape == (4, 3)  # one-hot of 1, 2, 3


def test_group_names_do_not_collide_with_columns():
    df = pd.DataFrame({"numeric": ["a long review text"] * 2, "x": [1.0, 2.0]})
    batch = ModalityPreprocessor().fit_transform(df)
    assert list(batch) == ["numeric", "numeric_"]
    assert batch.specs["numeric"].kind == "text" and batch.specs["numeric_"].kind == "numeric"


def test_numeric_array_becomes_one_numeric_modality():
    X = np.arange(20.0).reshape(5, 4)
    X[1, 2] = np.nan
    prep = ModalityPreprocessor()
    batch = prep.fit_transform(X)
    assert list(batch) == ["numeric"]
    assert batch.specs["numeric"].columns == ("x0", "x1", "x2", "x3")
    assert batch["numeric"].shape == (5, 5)  # 4 numbers + the indicator of x2
    np.testing.assert_allclose(
        batch["numeric"][:, 0], StandardScaler().fit_transform(X[:, :1])[:, 0], rtol=1e-5
    )
    assert prep.transform(X.tolist())["numeric"].shape == (5, 5)  # nested lists too


def test_sklearn_output_config_keeps_the_batch(fitted):
    df, _, _ = fitted
    with sklearn.config_context(transform_output="pandas"):
        assert isinstance(small_prep().fit_transform(df), ModalityBatch)


# --- explicit transformers -----------------------------------------------------------


def test_explicit_transformers_with_plain_sklearn_ones():
    df = table().fillna({"price": 0.0, "weight": 0.0})
    prep = ModalityPreprocessor(
        [
            ("img", ImagePreprocessor(size=3, color_mode="grayscale"), "photo"),
            ("nums", StandardScaler(), ["price", "weight"]),
            ("words", TextVectorizer(sequence_length=5), ["review"]),
            ("cat", OneHotEncoder(sparse_output=True), ["size"]),
        ]
    )
    batch = prep.fit_transform(df)
    assert list(batch) == ["img", "nums", "words", "cat"]  # only the named columns
    assert {n: s.kind for n, s in batch.specs.items()} == {
        "img": "image",
        "nums": "numeric",
        "words": "text",
        "cat": "categorical",
    }
    assert batch.specs["nums"].columns == ("price", "weight")
    expected = StandardScaler().fit_transform(df[["price", "weight"]])
    np.testing.assert_allclose(batch["nums"], expected, rtol=1e-5)
    assert batch["img"].shape == (6, 3, 3, 1) and batch["words"].shape == (6, 5)
    assert batch["cat"].dtype == np.float32 and batch["cat"].shape == (6, 4)  # sparse -> dense
    assert batch.masks["img"].tolist() == [True, True, False, True, True, True]
    assert batch.masks["cat"].tolist() == [True, True, True, True, False, True]
    assert (batch["cat"][4] == 0).all()


def test_explicit_single_numeric_column_gets_a_series_with_a_clear_error():
    df = pd.DataFrame({"price": [1.0, 2.0, 3.0]})
    with pytest.raises(InputError, match=r"modality 'p'.*StandardScaler.*\['price'\].*1-D Series"):
        ModalityPreprocessor([("p", StandardScaler(), "price")]).fit(df)
    batch = ModalityPreprocessor([("p", StandardScaler(), ["price"])]).fit_transform(df)
    np.testing.assert_allclose(batch["p"][:, 0], [-1.2247449, 0, 1.2247449], rtol=1e-6)


def test_nested_params_of_templates():
    df = table(4)
    prep = small_prep()
    params = prep.get_params()
    assert params["image__size"] == 4 and params["audio__n_mels"] == 4
    prep.set_params(image__size=2, image__color_mode="grayscale", audio__n_mels=3)
    batch = prep.fit_transform(df)
    assert batch["photo"].shape == (4, 2, 2, 1) and batch["voice"].shape == (4, 8, 3)
    # a template left at None becomes the default transformer of its kind when reached
    bare = ModalityPreprocessor(audio=small_audio()).set_params(
        image__size=3, numeric__simpleimputer__strategy="mean"
    )
    assert isinstance(bare.image, ImagePreprocessor) and bare.image.size == 3
    batch = bare.fit_transform(df)
    assert batch["photo"].shape == (4, 3, 3, 3)
    imputer = bare.transformers_[3][1][0]
    assert imputer.strategy == "mean"
    assert bare.get_params()["numeric__simpleimputer__strategy"] == "mean"


def test_nested_params_of_explicit_transformers():
    df = table(4).fillna({"price": 0.0, "weight": 0.0})
    prep = ModalityPreprocessor(
        [("img", ImagePreprocessor(size=3), "photo"), ("nums", StandardScaler(), ["price"])]
    )
    params = prep.get_params()
    assert params["img__size"] == 3 and params["nums__with_mean"] is True
    assert params["img"] is prep.transformers[0][1]
    prep.set_params(img__size=5, nums__with_mean=False)
    assert prep.transformers[0][1].size == 5
    batch = prep.fit_transform(df)
    assert batch["img"].shape == (4, 5, 5, 3)
    np.testing.assert_allclose(
        batch["nums"][:, 0], df["price"] / df["price"].std(ddof=0), rtol=1e-5
    )
    prep.set_params(nums=SimpleImputer())  # replace a transformer by name
    assert isinstance(prep.transformers[1][1], SimpleImputer)
    assert prep.transformers[1][2] == ["price"]


def test_get_params_and_clone_round_trip():
    prep = ModalityPreprocessor(
        [("img", ImagePreprocessor(size=3), "photo"), ("nums", StandardScaler(), ["a", "b"])],
        modalities={"a": "numeric"},
        text=TextVectorizer(max_tokens=50),
    )
    twin = clone(prep)
    assert twin.get_params(deep=False).keys() == prep.get_params(deep=False).keys()
    assert twin.transformers[0][1] is not prep.transformers[0][1]
    assert twin.transformers[0][1].get_params() == prep.transformers[0][1].get_params()
    assert twin.get_params()["text__max_tokens"] == 50 and twin.modalities == {"a": "numeric"}
    assert repr(twin) == repr(prep)
    assert not hasattr(twin, "transformers_")
    with pytest.raises(NotFittedError):
        twin.transform(pd.DataFrame({"a": [1.0]}))


def test_in_a_pipeline_with_cross_validation_and_grid_search():
    rng = np.random.default_rng(3)
    n = 24
    y = np.arange(n) % 2
    df = pd.DataFrame(
        {
            "photo": [np.full((4, 4), 200 * label, np.uint8) for label in y],
            "price": rng.normal(size=n) + 3 * y,
            "size": rng.choice(["S", "M"], n),
        }
    )
    pipe = Pipeline(
        [
            ("prep", ModalityPreprocessor(image=ImagePreprocessor(size=2))),
            ("clf", LogisticRegression()),
        ]
    )
    scores = cross_val_score(pipe, df, y, cv=KFold(3, shuffle=True, random_state=0))
    assert scores.min() == 1.0
    fitted = clone(pipe).fit(df, y)
    # 2x2 RGB pixels, the price, one-hot S/M, three presence flags
    assert fitted.named_steps["clf"].n_features_in_ == 12 + 1 + 2 + 3
    search = GridSearchCV(pipe, {"prep__image__size": [1, 2]}, cv=2).fit(df, y)
    assert search.best_estimator_.named_steps["prep"].image.size in (1, 2)
    assert search.best_estimator_.predict(df.iloc[:4]).tolist() == y[:4].tolist()


# --- bad input -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_fitted():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, np.nan, 1.0], "c": ["x", "y", "x"]})
    return df, ModalityPreprocessor().fit(df)


def test_column_missing_at_transform(small_fitted):
    df, prep = small_fitted
    with pytest.raises(ColumnMismatchError, match=r"lacks the columns \['b'\] seen in fit"):
        prep.transform(df.drop(columns="b").assign(z=1.0))
    with pytest.raises(ColumnMismatchError, match=r"lacks the columns \['a', 'c'\]"):
        prep.transform(df[["b"]])


def _same_batch(a, b):
    assert list(a) == list(b) and a.specs == b.specs
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        np.testing.assert_array_equal(a.masks[name], b.masks[name])


def test_columns_are_selected_by_name_as_column_transformer_does(small_fitted):
    df, prep = small_fitted
    expected = prep.transform(df)
    _same_batch(prep.transform(df[["c", "a", "b"]]), expected)  # another order
    _same_batch(prep.transform(df.assign(z=1.0).iloc[:, ::-1]), expected)  # and an extra
    explicit = ModalityPreprocessor([("n", StandardScaler(), ["a"])]).fit(df)
    only = explicit.transform(df[["a"]])  # columns no transformer uses may be absent
    np.testing.assert_array_equal(only["n"], explicit.transform(df)["n"])


def test_arrays_keep_their_columns_by_position():
    X = np.array([[1.0, 5.0], [2.0, 6.0], [3.0, 9.0]])
    prep = ModalityPreprocessor().fit(X)
    expected = ModalityPreprocessor().fit_transform(X)["numeric"]
    np.testing.assert_array_equal(prep.transform(X)["numeric"], expected)
    # fitted on an array, a DataFrame's columns are taken by position too (ColumnTransformer)
    named = pd.DataFrame(X, columns=["p", "q"])
    np.testing.assert_array_equal(prep.transform(named)["numeric"], expected)
    with pytest.raises(ColumnMismatchError, match=r"X has 3 features, but .* expecting 2"):
        prep.transform(np.hstack([X, X[:, :1]]))


@pytest.mark.parametrize("rows", [0, None])
def test_empty_dataframe(small_fitted, rows):
    df, prep = small_fitted
    empty = df.iloc[:0] if rows == 0 else pd.DataFrame(index=range(3))
    with pytest.raises(InputError, match=r"0 (sample|feature)"):
        ModalityPreprocessor().fit(empty)
    with pytest.raises(InputError, match="0 sample"):
        prep.transform(df.iloc[:0])


def test_inf_in_numeric_column_names_column_and_rows(small_fitted):
    df, prep = small_fitted
    bad = df.assign(a=[1.0, np.inf, -np.inf])
    with pytest.raises(InputError, match=r"column 'a' holds inf at rows \[1, 2\]"):
        ModalityPreprocessor().fit(bad)
    with pytest.raises(InputError, match=r"column 'a' holds inf at rows \[1, 2\]"):
        prep.transform(bad)
    explicit = ModalityPreprocessor([("p", StandardScaler(), "a")], modalities={"a": "numeric"})
    with pytest.raises(InputError, match=r"column 'a' holds inf at rows \[1, 2\]"):
        explicit.fit(bad)


def test_transformer_naming_a_column_not_in_x(small_fitted):
    df, _ = small_fitted
    prep = ModalityPreprocessor([("nums", StandardScaler(), ["a", "zz"])])
    with pytest.raises(ColumnMismatchError, match=r"'nums' names columns \['zz'\]"):
        prep.fit(df)


@pytest.mark.parametrize("kind", ["image", "text", "audio", "numeric", "categorical"])
def test_kind_templates_must_be_transformers(small_fitted, kind):
    df, _ = small_fitted
    prep = ModalityPreprocessor(**{kind: LogisticRegression()})  # fit, but no transform
    with pytest.raises(
        ParameterError, match=f"'{kind}' parameter .* implementing 'fit' and 'transform'"
    ):
        prep.fit(df)


@pytest.mark.parametrize(
    "transformers, match",
    [
        (
            [("x", StandardScaler(), ["a"]), ("x", StandardScaler(), ["b"])],
            r"unique transformer names.*\['x', 'x'\]",
        ),
        ([("x", "drop", ["a"])], "'x': expected an estimator with fit and transform"),
        ([("x", StandardScaler())], r"\(name, transformer, columns\)"),
        ([("a__b", StandardScaler(), ["a"])], "without '__'"),
    ],
)
def test_bad_transformers(small_fitted, transformers, match):
    df, _ = small_fitted
    with pytest.raises(ParameterError, match=match):
        ModalityPreprocessor(transformers).fit(df)


@pytest.mark.parametrize(
    "X, error, match",
    [
        (["a.png", "b.png"], InputError, "Reshape your data"),
        ({"a": [1.0]}, InputTypeError, "Received: dict"),
        (pd.Series([1.0, 2.0], name="a"), InputTypeError, "to_frame"),
        ("a.png", InputTypeError, "Received: str"),
        (np.zeros(3), InputError, r"shape \(3,\)"),
        (np.zeros((3, 2, 2)), InputError, r"shape \(3, 2, 2\)"),
        ([[1.0], [2.0, 3.0]], InputError, "rectangular"),
        (np.ones((3, 1), complex), InputError, "Complex data not supported"),
    ],
)
def test_inputs_that_are_not_a_table(X, error, match):
    with pytest.raises(error, match=match):
        ModalityPreprocessor().fit(X)


def test_sparse_input_is_refused_clearly():
    from scipy import sparse

    with pytest.raises(InputTypeError, match="sparse input is not supported"):
        ModalityPreprocessor().fit(sparse.csr_matrix(np.eye(3)))


def test_bad_cells_are_reported_by_column_and_row(tmp_path):
    df = pd.DataFrame({"photo": [np.zeros((4, 4), np.uint8), str(tmp_path / "gone.png")]})
    with pytest.raises(InputError, match=r"column 'photo', row 1: file not found"):
        ModalityPreprocessor(image=ImagePreprocessor(size=2)).fit(df)
    with pytest.raises(InputTypeError, match=r"column 'note' mixes cell types"):
        ModalityPreprocessor().fit(pd.DataFrame({"note": ["some words here", 3.5]}))


# --- scikit-learn common checks --------------------------------------------------------

# ModalityPreprocessor takes a 2-D numeric array as numeric columns x0..x{m-1} and
# returns a ModalityBatch (np.asarray gives the flat matrix), so every common check
# applies and passes; none is expected to fail.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks(
    [
        ModalityPreprocessor(),
        ModalityPreprocessor(numeric=make_pipeline(SimpleImputer(), StandardScaler())),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
