"""Build the Keras model: inputs -> encoders -> fusion -> head."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmsk import _backend
from mmsk._batch import PRESENT, ModalityBatch, ModalitySpec
from mmsk.components import Encoded, Encoder, Fusion
from mmsk.exceptions import ModelBuildError

FUSED = "fused"  # name of the layer whose output ``transform`` returns


@dataclass
class Head:
    """What the network predicts: ``n_outputs`` values through ``activation``."""

    n_outputs: int
    activation: str
    units: int
    layers: int
    dropout: float
    wide: bool = False


WIDE_SIDE = 16  # images reach the wide path average-pooled to at most this many pixels a side
HISTOGRAM_BINS = 8  # bins per channel of an image's colour histogram on the wide path
NUMBER_BINS = 8  # quantile intervals per number on the wide path (piecewise-linear encoding)
BINNED_COLUMNS = 128  # numeric modalities wider than this (embeddings, spectra) stay linear


def _wide_features(x: Any, spec: ModalitySpec, name: str) -> Any:
    """A modality's raw input as a flat feature vector for the linear path, and for an
    image the colour histogram of its pooled pixels (None otherwise).  Numbers come
    as they are beside their piecewise-linear encoding (``wide_<name>_bins``; up to
    :data:`BINNED_COLUMNS` columns), so that the linear model on them is a curve
    per number, not a line."""
    keras = _backend.keras()
    from mmsk.layers import ColourHistogram, PiecewiseLinear

    L = keras.layers
    colours = None
    if spec.kind == "image" and len(spec.shape) == 3:
        pool = max(1, -(-max(spec.shape[:2]) // WIDE_SIDE))
        if pool > 1:
            x = L.AveragePooling2D(pool, padding="same", name=f"wide_{name}_pool")(x)
        colours = ColourHistogram(HISTOGRAM_BINS, name=f"wide_{name}_colours")(x)
    elif spec.kind == "audio" and len(spec.shape) == 2:
        x = L.GlobalAveragePooling1D(name=f"wide_{name}_mean")(x)
    elif spec.kind == "numeric" and len(spec.shape) == 1 and spec.shape[0] <= BINNED_COLUMNS:
        bins = PiecewiseLinear(NUMBER_BINS, name=f"wide_{name}_bins")(x)
        x = L.Concatenate(name=f"wide_{name}_numbers")([x, bins])
    if len(x.shape) > 2:
        x = L.Flatten(name=f"wide_{name}_flat")(x)
    return x, colours


def _wide_logits(inputs: dict, chars: dict, specs: Mapping[str, ModalitySpec], present: Any,
                 n_outputs: int) -> list[Any]:  # fmt: skip
    """One linear model per modality on its raw input (zero where the modality is missing).

    A text's words, and its character n-grams where ``chars`` has them, are
    each a TF-IDF bag (:class:`~mmsk.layers.TfidfBag`, ``wide_<name>_words``
    and ``wide_<name>_chars``), as scikit-learn's strongest text baseline reads them.
    """
    keras = _backend.keras()
    from mmsk.layers import ApplyPresence, TfidfBag

    L = keras.layers
    out = []
    for index, (name, spec) in enumerate(specs.items()):
        if spec.kind == "text" and spec.vocabulary_size:
            bags = [("words", inputs[name], spec.vocabulary_size)]
            if name in chars:
                bags.append(("chars", chars[name], spec.char_vocabulary_size))
            for part, ids, size in bags:
                logit = TfidfBag(size, n_outputs, name=f"wide_{name}_{part}")(ids)
                out.append(
                    ApplyPresence(index, name=f"wide_{name}_{part}_present")(logit, present)
                )
            continue
        x, colours = _wide_features(inputs[name], spec, name)
        logit = L.Dense(n_outputs, kernel_initializer="zeros", name=f"wide_{name}")(x)
        out.append(ApplyPresence(index, name=f"wide_{name}_present")(logit, present))
        if colours is not None:  # an image's colours, wherever they are in the picture
            logit = L.Dense(n_outputs, kernel_initializer="zeros", name=f"wide_{name}_hist")(
                colours
            )
            out.append(ApplyPresence(index, name=f"wide_{name}_hist_present")(logit, present))
    return out


def adapt_to_data(model: Any, batch: ModalityBatch, rows: int = 2000) -> None:
    """Set what a new network learns from the training rows before training: the bins
    of each image's colour histogram on the wide path (from at most ``rows`` images,
    spread over the batch; missing ones left out), and from every present row the
    quantiles of its numbers' piecewise-linear encoding, each text's word counts for
    its unknown-word dropout and the inverse document frequencies of its TF-IDF bags."""
    names = {layer.name for layer in model.layers}
    for name in batch:
        present = np.flatnonzero(batch.masks[name])
        spec = batch.specs[name]
        if f"wide_{name}_colours" in names:
            sample = present[:: max(1, len(present) // rows)][:rows]
            model.get_layer(f"wide_{name}_colours").adapt(batch[name][sample])
        if f"wide_{name}_bins" in names:
            model.get_layer(f"wide_{name}_bins").adapt(batch[name][present])
        if spec.kind != "text":
            continue
        words = spec.shape[0] - spec.char_columns
        ids = batch[name][present]
        if f"{name}_unknown" in names:
            model.get_layer(f"{name}_unknown").adapt(ids[:, :words])
        if f"wide_{name}_words" in names:
            model.get_layer(f"wide_{name}_words").adapt(ids[:, :words])
        if f"wide_{name}_chars" in names:
            model.get_layer(f"wide_{name}_chars").adapt(ids[:, words:])


def _check_encoding(tensor: Any, sequence: bool, name: str, encoder: Encoder) -> None:
    rank = len(tensor.shape)
    expected = 3 if sequence else 2
    if rank != expected:
        what = "a token sequence (N, T, d)" if sequence else "a vector (N, d)"
        raise ModelBuildError(
            f"encoder {type(encoder).__name__} of modality {name!r} returned shape "
            f"{tuple(tensor.shape)}; expected {what}"
        )


def model_inputs(specs: Mapping[str, ModalitySpec]) -> dict[str, Any]:
    """The Keras inputs of a model for these modalities.

    One input per modality, named like it, of the spec's shape and dtype, and
    ``mmsk_present`` (N, K): 1 where a row has the modality, 0 where it is
    missing.  ``ModalityBatch.to_inputs`` gives the arrays in this form.
    """
    keras = _backend.keras()
    inputs = {
        name: keras.Input(shape=spec.shape, dtype=spec.dtype, name=name)
        for name, spec in specs.items()
    }
    inputs[PRESENT] = keras.Input(shape=(len(specs),), dtype="float32", name=PRESENT)
    return inputs


def build_model(
    inputs: dict[str, Any],
    specs: Mapping[str, ModalitySpec],
    encoders: Mapping[str, Encoder],
    fusion: Fusion,
    head: Head,
    modality_dropout: float,
    seed: int | None,
    word_dropout: float = 0.0,
) -> Any:
    """Return the functional Keras model for these modalities.

    ``inputs`` come from :func:`model_inputs`.  The output is the head's
    prediction; the layer named ``fused`` holds the fused embedding.  With
    ``word_dropout`` > 0 each text's word ids pass an
    :class:`~mmsk.layers.UnknownWordDropout` (``<name>_unknown``, its rates
    set by :func:`adapt_to_data`) before its encoder and its wide path.
    """
    keras = _backend.keras()
    from mmsk.layers import ColumnSlice, ModalityDropout, UnknownWordDropout

    L = keras.layers
    present = inputs[PRESENT]
    if modality_dropout > 0 and len(specs) > 1:
        present = ModalityDropout(modality_dropout, seed=seed, name="modality_dropout")(present)

    given, inputs = inputs, dict(inputs)  # the model's own inputs; text may pass a dropout
    chars, full, specs = {}, specs, {name: spec.words() for name, spec in specs.items()}
    for name, spec in specs.items():
        if full[name].char_columns:  # encoders see the words, the wide path the n-grams too
            words, total = spec.shape[0], full[name].shape[0]
            chars[name] = ColumnSlice(words, total, name=f"{name}_chars")(inputs[name])
            inputs[name] = ColumnSlice(0, words, name=f"{name}_words")(inputs[name])
        if word_dropout > 0 and spec.kind == "text" and spec.vocabulary_size:
            inputs[name] = UnknownWordDropout(spec.vocabulary_size, word_dropout, seed=seed,
                                              name=f"{name}_unknown")(inputs[name])  # fmt: skip
    encoded = []
    for index, (name, spec) in enumerate(specs.items()):
        encoder = encoders[name]
        try:
            tensor, token_mask = encoder.encode(
                inputs[name], spec, sequence=fusion.sequence, name=name
            )
        except ModelBuildError:
            raise
        except Exception as exc:
            raise ModelBuildError(
                f"encoder {type(encoder).__name__} could not be built for modality {name!r} "
                f"({spec.kind}, rows of shape {spec.shape}, {spec.dtype}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        _check_encoding(tensor, fusion.sequence, name, encoder)
        encoded.append(Encoded(name, index, spec.kind, tensor, token_mask, present))

    try:
        embedding = L.Identity(name=FUSED)(fusion.fuse(encoded))
        logits = fusion.logits(embedding, encoded, n_outputs=head.n_outputs)
    except Exception as exc:
        raise ModelBuildError(
            f"fusion {type(fusion).__name__} could not be built over modalities "
            f"{list(specs)}: {type(exc).__name__}: {exc}"
        ) from exc
    if logits is None:
        x = embedding
        for i in range(head.layers):
            x = L.Dense(head.units, activation="relu", name=f"head_dense{i}")(x)
            if head.dropout:
                x = L.Dropout(head.dropout, seed=seed, name=f"head_dropout{i}")(x)
        logits = L.Dense(head.n_outputs, name="head_logits")(x)
    if head.wide:
        logits = L.Add(name="wide_and_deep")(
            [logits, *_wide_logits(inputs, chars, full, present, head.n_outputs)]
        )
    output = L.Activation(head.activation, name="prediction")(logits)
    try:
        return keras.Model(inputs=given, outputs=output, name="mmsk_model")
    except ValueError as exc:  # e.g. two layers of one name: an encoder ignored its prefix
        used = {name: type(encoder).__name__ for name, encoder in encoders.items()}
        raise ModelBuildError(
            f"the Keras model could not be assembled from encoders {used} and fusion "
            f"{type(fusion).__name__} ({exc}). Expected every layer an encoder adds to be "
            "named with the `name` it is given as a prefix, so that two modalities can use "
            "one encoder; mmsk.testing.check_encoder checks this rule"
        ) from exc
