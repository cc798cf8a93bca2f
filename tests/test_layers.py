"""mmsk's Keras layers: real outputs, config round trip, .keras save/load with safe_mode."""

import keras
import numpy as np
import pytest

from mmsk import layers as L

rng = np.random.default_rng(0)


def _roundtrip(model, inputs, tmp_path):
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        np.asarray(loaded(inputs)), np.asarray(model(inputs)), rtol=1e-6, atol=1e-6
    )
    return loaded


def test_transformer_block_attends_only_to_valid_keys(tmp_path):
    block = L.TransformerBlock(num_heads=2, ff_dim=8)
    x = rng.normal(size=(2, 4, 6)).astype("float32")
    mask = np.array([[True, True, False, False]] * 2)
    out = np.asarray(block(x, mask=mask))
    x2 = x.copy()
    x2[:, 2:] = 100.0  # change only masked positions
    out2 = np.asarray(block(x2, mask=mask))
    np.testing.assert_allclose(out[:, :2], out2[:, :2], rtol=1e-5, atol=1e-5)
    inp = keras.Input((4, 6))
    model = keras.Model(inp, L.TransformerBlock(2, 8)(inp))
    _roundtrip(model, x, tmp_path)


def test_transformer_block_validates_arguments():
    with pytest.raises(ValueError, match=r"Expected a positive integer\. Received: num_heads=0"):
        L.TransformerBlock(num_heads=0, ff_dim=4)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        L.TransformerBlock(num_heads=4, ff_dim=4)(np.zeros((1, 2, 6), "float32"))
    with pytest.raises(ValueError, match="dropout"):
        L.TransformerBlock(num_heads=1, ff_dim=4, dropout=1.0)


def test_token_and_position_embedding_and_mask(tmp_path):
    ids = np.array([[3, 4, 0, 0], [0, 0, 0, 0]])
    inp = keras.Input((4,), dtype="int32")
    emb = L.TokenAndPositionEmbedding(10, 4, 8)(inp)
    pooled = L.MaskedMeanPool()(emb, mask=L.TokenMask()(inp))
    model = keras.Model(inp, pooled)
    _roundtrip(model, ids, tmp_path)
    layer = L.TokenAndPositionEmbedding(10, 4, 8)
    assert L.TokenAndPositionEmbedding.from_config(layer.get_config()).sequence_length == 4


def test_presence_layers(tmp_path):
    x = rng.normal(size=(3, 5)).astype("float32")
    present = np.array([[1, 0], [0, 1], [1, 1]], "float32")
    xi, pi = keras.Input((5,)), keras.Input((2,))
    a = L.ApplyPresence(1)(xi, pi)
    model = keras.Model([xi, pi], a)
    out = np.asarray(model([x, present]))
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_allclose(out[1], x[1])
    _roundtrip(model, [x, present], tmp_path)


def test_gated_and_late_pooling_ignore_missing_modalities(tmp_path):
    v = rng.normal(size=(2, 3, 4)).astype("float32")
    present = np.array([[1, 0, 0], [1, 1, 1]], "float32")
    gated = np.asarray(L.PresenceSoftmaxPool()(v, present))
    np.testing.assert_allclose(gated[0], v[0, 0], rtol=1e-5)  # only modality 0 present
    late = np.asarray(L.PresenceWeightedMean()(v, present))
    np.testing.assert_allclose(late[1], v[1].mean(axis=0), rtol=1e-5)
    xi, pi = keras.Input((6,)), keras.Input((2,))
    model = keras.Model([xi, pi], L.SplitHeads([2, 4], 3)(xi, pi))
    x = rng.normal(size=(2, 6)).astype("float32")
    _roundtrip(model, [x, np.ones((2, 2), "float32")], tmp_path)
    with pytest.raises(ValueError, match="sizes"):
        L.SplitHeads([], 3)


def test_join_tokens_and_sequence_mask():
    seq = [np.ones((2, 3, 4), "float32"), np.ones((2, 2, 4), "float32")]
    present = np.array([[1, 0], [1, 1]], "float32")
    masks = [L.SequenceMask(0)(seq[0], present), L.SequenceMask(1)(seq[1], present)]
    joined, mask = L.JoinTokens()(seq, masks)
    assert tuple(joined.shape) == (2, 6, 4)
    assert np.asarray(mask).tolist() == [[True] * 4 + [False] * 2, [True] * 6]


def test_modality_dropout_keeps_one_modality_and_is_off_in_inference():
    layer = L.ModalityDropout(0.3, seed=1)
    present = np.ones((500, 3), "float32")
    dropped = np.asarray(layer(present, training=True))
    assert (dropped.sum(axis=1) >= 1).all()
    assert 0.6 < dropped.mean() < 0.8  # 0.7 kept, plus rows restored when all were hidden
    np.testing.assert_array_equal(np.asarray(layer(present, training=False)), present)
    assert L.ModalityDropout.from_config(layer.get_config()).rate == 0.3
    with pytest.raises(ValueError, match="rate"):
        L.ModalityDropout(1.0)


def test_unknown_word_dropout_replaces_words_at_their_rates_in_training_only(tmp_path):
    layer = L.UnknownWordDropout(7, alpha=0.25, seed=3)
    layer.adapt(np.array([[2, 3, 3, 3, 3, 0], [6, 1, 1, 0, 0, 0]]))  # 2 and 6 once, 3 four times
    expected = [0.0, 0.0, 0.2, 0.25 / 4.25, 0.0, 0.0, 0.2]  # 4, 5 unseen: never replaced
    np.testing.assert_allclose(layer.rates.numpy(), expected, rtol=1e-6)

    ids = np.tile(np.array([[2, 3, 4, 1, 0, 6]], "int32"), (20000, 1))
    out = np.asarray(layer(ids, training=True))
    changed = out != ids
    assert set(np.unique(out[changed])) == {1}  # always to the out-of-vocabulary id
    assert not changed[:, 2:5].any()  # unseen, out-of-vocabulary and padding: kept
    assert abs(changed[:, 0].mean() - 0.2) < 0.015 and abs(changed[:, 5].mean() - 0.2) < 0.015
    assert abs(changed[:, 1].mean() - 0.0588) < 0.008
    np.testing.assert_array_equal(np.asarray(layer(ids)), ids)  # outside training: as given
    again = L.UnknownWordDropout(7, alpha=0.25, seed=3)
    again.adapt(np.array([[2, 3, 3, 3, 3, 0], [6, 1, 1, 0, 0, 0]]))
    np.testing.assert_array_equal(np.asarray(again(ids, training=True)), out)  # seeded

    inputs = keras.Input((6,), dtype="int32")
    model = keras.Model(inputs, L.UnknownWordDropout(7, seed=0, name="u")(inputs))
    model.get_layer("u").adapt(ids)
    loaded = _roundtrip(model, ids[:4], tmp_path)
    np.testing.assert_array_equal(loaded.get_layer("u").rates.numpy(),
                                  model.get_layer("u").rates.numpy())  # fmt: skip
    with pytest.raises(ValueError, match="vocabulary_size"):
        L.UnknownWordDropout(1)
    with pytest.raises(ValueError, match="alpha"):
        L.UnknownWordDropout(5, alpha=-1.0)


def test_unknown_word_dropout_docstring_example():
    import doctest

    from mmsk.layers import _words

    assert doctest.testmod(_words).failed == 0


def test_colour_histogram_counts_shares_per_channel_between_adapted_bounds(tmp_path):
    images = rng.uniform(-3.0, 5.0, size=(4, 6, 5, 3)).astype("float32")
    layer = L.ColourHistogram(bins=4)
    layer.adapt(images)
    np.testing.assert_allclose(np.asarray(layer.low), images.reshape(-1, 3).min(axis=0))
    np.testing.assert_allclose(np.asarray(layer.high), images.reshape(-1, 3).max(axis=0))
    out = np.asarray(layer(images)).reshape(4, 3, 4)
    np.testing.assert_allclose(out.sum(axis=2), 1.0, rtol=1e-6)  # every pixel in one bin
    low, high = layer.low.numpy(), layer.high.numpy()
    for i, c in np.ndindex(4, 3):  # as NumPy counts them between the same bounds
        counts = np.histogram(images[i, ..., c], bins=4, range=(low[c], high[c]))[0]
        np.testing.assert_allclose(out[i, c], counts / 30.0, atol=1e-6)
    # Values outside the bounds fall in the end bins; the bounds are saved with the model.
    assert np.allclose(np.asarray(layer(images + 100.0)).reshape(4, 3, 4)[..., -1], 1.0)
    assert np.allclose(np.asarray(layer(images - 100.0)).reshape(4, 3, 4)[..., 0], 1.0)
    inputs = keras.Input((6, 5, 3))
    loaded = _roundtrip(keras.Model(inputs, layer(inputs)), images, tmp_path)
    np.testing.assert_allclose(np.asarray(loaded.layers[-1].high), np.asarray(layer.high))


def test_tfidf_bag_is_scikit_learns_sublinear_tfidf_times_its_kernel(tmp_path):
    """Rows of ids read as TfidfVectorizer(sublinear_tf=True) reads the same tokens,
    with idf from the adapted rows; the output is that vector times the kernel."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    train = rng.integers(0, 9, size=(40, 7))  # 0 is padding
    test = np.vstack([rng.integers(0, 9, size=(5, 7)), np.zeros((1, 7), int),
                      [[3, 3, 3, 0, 0, 0, 0]]])  # fmt: skip
    words = lambda rows: [" ".join(f"w{i}" for i in row if i) for row in rows]  # noqa: E731
    vec = TfidfVectorizer(sublinear_tf=True, token_pattern=r"\S+",
                          vocabulary=[f"w{i}" for i in range(1, 9)]).fit(words(train))  # fmt: skip
    bag = L.TfidfBag(9, 2)
    bag.adapt(train)
    np.testing.assert_allclose(bag.idf.numpy()[1:], vec.idf_, rtol=1e-6)
    weights = np.asarray(bag.tfidf(test))
    dense = np.zeros((len(test), 9))
    np.add.at(dense, (np.arange(len(test))[:, None].repeat(7, 1), test), weights)
    np.testing.assert_allclose(dense[:, 1:], vec.transform(words(test)).toarray(), atol=1e-6)
    assert np.all(weights[test == 0] == 0)  # padding, and an empty row, weigh nothing

    kernel = rng.normal(size=(9, 2)).astype("float32")
    bag.kernel.assign(kernel)
    np.testing.assert_allclose(np.asarray(bag(test)), dense @ kernel, rtol=1e-5, atol=1e-6)
    inputs = keras.Input((7,), dtype="int32")
    loaded = _roundtrip(keras.Model(inputs, bag(inputs)), test, tmp_path)
    np.testing.assert_allclose(loaded.layers[-1].idf.numpy(), bag.idf.numpy())
    with pytest.raises(ValueError, match="units"):
        L.TfidfBag(5, 0)


def test_column_slice(tmp_path):
    x = np.arange(12).reshape(2, 6)
    np.testing.assert_array_equal(np.asarray(L.ColumnSlice(2, 5)(x)), x[:, 2:5])
    inputs = keras.Input((6,))
    _roundtrip(keras.Model(inputs, L.ColumnSlice(4, 6)(inputs)), x.astype("float32"), tmp_path)
    with pytest.raises(ValueError, match="start < stop"):
        L.ColumnSlice(3, 3)


def test_tfidf_docstring_examples():
    import doctest

    from mmsk.layers import _tfidf

    result = doctest.testmod(_tfidf)
    assert result.attempted > 0 and result.failed == 0


def test_piecewise_linear_encodes_each_number_by_its_quantile_intervals(tmp_path):
    """Each value gives, per interval between the column's quantiles, the share of it
    crossed (0 below, 1 above); tied quantiles leave fewer intervals, the rest 0."""
    train = np.column_stack([rng.normal(size=200), np.r_[np.zeros(150), np.arange(1.0, 51)],
                             rng.integers(0, 2, 200)]).astype("float32")  # fmt: skip
    layer = L.PiecewiseLinear(bins=4)
    layer.adapt(np.vstack([train, [[np.nan, np.inf, 0.0]]]))  # non-finite values left out
    edges = layer.edges.numpy()
    np.testing.assert_allclose(edges[0], np.quantile(train[:, 0], [0, 0.25, 0.5, 0.75, 1]),
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(edges[1], [0, 0.25, 50, 50, 50], rtol=1e-5)  # 0 is tied
    np.testing.assert_allclose(edges[2], [0, 1, 1, 1, 1])  # a 0/1 column: one interval

    test = np.array([[edges[0, 1], 25.125, 1.0], [-9.0, 99.0, 0.0]], "float32")
    out = np.asarray(layer(test)).reshape(2, 3, 4)
    np.testing.assert_allclose(out[0, 0], [1, 0, 0, 0], atol=1e-6)  # at the first quantile
    np.testing.assert_allclose(out[0, 1], [1, 0.5, 0, 0], atol=1e-6)  # half the second
    np.testing.assert_allclose(out[0, 2], [1, 0, 0, 0])  # the 0/1 column is itself
    np.testing.assert_allclose(out[1], [[0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])  # flat ends
    # A linear model on the encoding is the piecewise-linear curve through the edges.
    x = np.linspace(-3, 3, 61, dtype="float32")[:, None].repeat(3, axis=1)
    curve = np.asarray(layer(x)).reshape(61, 3, 4)[:, 0] @ np.array([1.0, -1.0, 2.0, 0.5])
    knots = np.cumsum(np.r_[0.0, 1.0, -1.0, 2.0, 0.5])
    np.testing.assert_allclose(curve, np.interp(x[:, 0], edges[0], knots), atol=1e-5)

    inputs = keras.Input((3,))
    loaded = _roundtrip(keras.Model(inputs, layer(inputs)), test, tmp_path)
    np.testing.assert_allclose(loaded.layers[-1].edges.numpy(), edges)
    with pytest.raises(ValueError, match="bins"):
        L.PiecewiseLinear(bins=0)


def test_piecewise_linear_docstring_example():
    import doctest

    from mmsk.layers import _numeric

    assert doctest.testmod(_numeric).failed == 0
