"""mmsk's own overhead: MultimodalClassifier against the same network written by hand in Keras.

The data are synthetic: ``--rows`` rows of a 32x32 RGB image (an array per
cell), a short text and three numbers, with three classes.  mmsk's
preprocessing (:class:`mmsk.ModalityPreprocessor`) turns them into arrays
once; the hand-written Keras model trains on those same arrays, so both sides
see identical inputs.

The hand-written model repeats, layer for layer, what
``MultimodalClassifier(fusion="concat")`` builds with its default encoders
(``mmsk/models/_build.py``, ``mmsk/components``): a 2-block CNN (16 and 32
filters, max-pooling, global average pooling), an embedding + LSTM(32) over
the unpadded tokens, a Dense(32) for the numbers, each vector multiplied by
its modality's presence flag, concatenated with the flags, then Dense(64) +
Dropout(0.1) + a softmax layer; Adam(1e-3), sparse categorical cross-entropy,
same epochs, batch size, shuffling and seed.  The script checks that both
networks have the same number of weights and reports how far their
predictions are apart after training.

Measured:

* fit: hand-written Keras (build + compile + fit on the arrays, the
  **baseline**) vs ``MultimodalClassifier.fit`` on the preprocessed
  ``ModalityBatch`` (goal: ratio <= 1.05) and on the raw DataFrame, whose
  preprocessing is also timed on its own;
* fit of the same network given to mmsk as ``model=`` (a user's build
  function, issue 16) against the hand-written fit (goal: ratio <= 1.05),
  with its weight count and prediction gap, and its one-row predict;
* predict latency, median of many calls, for one row and for 1,000 rows:
  ``Model.predict`` (the **baseline**), mmsk ``predict_proba`` on a
  ``ModalityBatch`` and on a DataFrame row (preprocessing included),
  ``keras.wrappers.SKLearnClassifier.predict`` (Keras 3's own scikit-learn
  wrapper, which takes a flat 2-D array: here around a model that slices it
  into the same network's inputs), an eager ``model(x, training=False)``
  and a ``tf.function``-compiled call (the floor).  Goal: mmsk's one-row
  predict at most half of ``Model.predict``'s time (ratio <= 0.5).

Usage::

    python bench/overhead.py              # 2,000 rows, 5 epochs, median of 3 fits
    python bench/overhead.py --quick      # about a minute
    python bench/overhead.py --rows 5000 --epochs 3 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pandas as pd
from _common import load_warning, versions  # bench/ is sys.path[0]

N_CLASSES = 3
IMAGE_SIDE = 32
SEQUENCE_LENGTH = 24
BATCH_SIZE = 32
BIG_BATCH = 1000


# --------------------------------------------------------------------------- data
def make_data(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Images, texts and numbers that all carry some signal about one of three classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, size=rows)
    images = rng.normal(110.0, 40.0, size=(rows, IMAGE_SIDE, IMAGE_SIDE, 3))
    images[np.arange(rows), :, :, y] += 50.0  # class k: channel k is brighter
    images = np.clip(images, 0, 255).astype(np.uint8)
    common = [f"w{i}" for i in range(400)]
    cues = [["red", "warm", "sun"], ["green", "leaf", "grass"], ["blue", "cold", "sea"]]
    texts = []
    for label in y:
        words = list(rng.choice(common, size=int(rng.integers(5, 21))))
        if rng.random() < 0.8:
            words[int(rng.integers(len(words)))] = str(rng.choice(cues[label]))
        texts.append(" ".join(words))
    numbers = rng.normal(size=(rows, 3)) + 0.5 * y[:, None]
    df = pd.DataFrame({"image": list(images), "text": texts})
    for j, name in enumerate(("a", "b", "c")):
        df[name] = numbers[:, j]
    return df, y


def make_preprocessor() -> Any:
    from mmsk.preprocessing import ImagePreprocessor, ModalityPreprocessor, TextVectorizer

    return ModalityPreprocessor(
        image=ImagePreprocessor(size=IMAGE_SIDE),
        text=TextVectorizer(sequence_length=SEQUENCE_LENGTH),
    )


def _training(epochs: int, seed: int) -> dict[str, Any]:
    """The training settings both mmsk classifiers share: Adam, every row trained on."""
    return dict(
        optimizer="adam",
        validation_split=0.0,
        early_stopping=False,
        preprocessor=make_preprocessor(),
        epochs=epochs,
        batch_size=BATCH_SIZE,
        random_state=seed,
    )


def make_classifier(epochs: int, seed: int) -> Any:
    import mmsk

    return mmsk.MultimodalClassifier(
        encoders={"text": "rnn"},  # the network of the hand model below (the
        fusion="concat",  # defaults of issue 13 differ: bag, wide path, AdamW,
        wide=False,  # early stopping on a held-out share, word dropout)
        word_dropout=0.0,
        **_training(epochs, seed),
    )


# ------------------------------------------------------------ the hand-written model
def mmsk_seed(random_state: int) -> int:
    """The Keras seed MultimodalClassifier derives from ``random_state``."""
    return int(np.random.RandomState(random_state).randint(0, 2**31 - 1))


def hand_network(inputs: dict[str, Any], specs: dict[str, Any], seed: int) -> Any:
    """The layers of ``MultimodalClassifier(fusion="concat")`` on Keras inputs: the output."""
    import keras

    L = keras.layers
    image, text, numeric = inputs["image"], inputs["text"], inputs["numeric"]
    present = inputs["mmsk_present"]

    x = L.Conv2D(16, 3, padding="same", activation="relu")(image)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    image_vec = L.GlobalAveragePooling2D()(x)
    # mask_zero gives mmsk's TokenMask whenever a text has a token (always, here).
    tokens = L.Embedding(specs["text"].vocabulary_size, 32, mask_zero=True)(text)
    text_vec = L.LSTM(32)(tokens)
    numeric_vec = L.Dense(32, activation="relu")(numeric)

    parts = [
        image_vec * present[:, 0:1],
        text_vec * present[:, 1:2],
        numeric_vec * present[:, 2:3],
        present,
    ]
    h = L.Concatenate()(parts)
    h = L.Dense(64, activation="relu")(h)
    h = L.Dropout(0.1, seed=seed)(h)
    return L.Dense(N_CLASSES, activation="softmax")(h)


def hand_model(specs: dict[str, Any], seed: int) -> Any:
    """The network of ``MultimodalClassifier(fusion="concat")``, in plain Keras."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = {
        "image": keras.Input(specs["image"].shape, name="image"),
        "text": keras.Input(specs["text"].shape, dtype="int32", name="text"),
        "numeric": keras.Input(specs["numeric"].shape, name="numeric"),
        "mmsk_present": keras.Input((3,), name="mmsk_present"),
    }
    model = keras.Model(inputs, hand_network(inputs, specs, seed))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def own_build(inputs: dict[str, Any], specs: dict[str, Any], n_outputs: int, seed: int = 0) -> Any:
    """The hand-written network as a user's build function for ``model=`` (issue 16)."""
    import keras

    return keras.Model(inputs, hand_network(inputs, specs, seed))


def make_own_classifier(epochs: int, seed: int) -> Any:
    """``MultimodalClassifier(model=own_build)``: the hand network, trained by mmsk."""
    import mmsk

    return mmsk.MultimodalClassifier(
        model=own_build, model__seed=mmsk_seed(seed), **_training(epochs, seed)
    )


def fit_hand(
    inputs: dict[str, np.ndarray], y: np.ndarray, specs: dict, epochs: int, seed: int
) -> Any:
    model = hand_model(specs, seed)
    model.fit(inputs, y, epochs=epochs, batch_size=BATCH_SIZE, shuffle=True, verbose=0)
    return model


def flat(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Image, tokens and numbers side by side: the 2-D array a flat-input wrapper needs."""
    n = len(inputs["image"])
    parts = [inputs["image"].reshape(n, -1), inputs["text"], inputs["numeric"]]
    return np.hstack([p.astype(np.float32) for p in parts])


def keras_wrapper(model: Any, specs: dict[str, Any], x_flat: np.ndarray, y: np.ndarray) -> Any:
    """A fitted ``keras.wrappers.SKLearnClassifier`` running the hand model's network.

    The wrapper takes a flat 2-D array, so a small model slices it back into
    the hand model's four inputs.  Keras clones the model it is given (in
    Keras 3.15 ``warm_start`` is documented but never read), so the wrapper
    has the same layers with fresh weights; it is fitted for one epoch on 64
    rows, as only its predict path is timed and weights do not change that.
    """
    import keras
    from keras import ops

    image_size = int(np.prod(specs["image"].shape))
    text_len = specs["text"].shape[0]
    x = keras.Input((x_flat.shape[1],))
    image = keras.layers.Reshape(specs["image"].shape)(x[:, :image_size])
    text = ops.cast(x[:, image_size : image_size + text_len], "int32")
    numeric = x[:, image_size + text_len :]
    present = ops.ones_like(x[:, :3])
    out = model({"image": image, "text": text, "numeric": numeric, "mmsk_present": present})
    wrapped = keras.Model(x, out)
    wrapped.compile(optimizer="adam", loss="categorical_crossentropy")
    clf = keras.wrappers.SKLearnClassifier(wrapped)
    return clf.fit(x_flat[:64], y[:64], epochs=1, batch_size=BATCH_SIZE, verbose=0)


# ------------------------------------------------------------------------- timing
def timed(fn: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """((wall seconds, CPU seconds of the whole process), result) of one call."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    out = fn()
    return (time.perf_counter() - wall0, time.process_time() - cpu0), out


def median_latency(fn: Callable[[], Any], calls: int, warmup: int = 3) -> float:
    """Median seconds of ``calls`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def table(
    title: str, units: list[str], rows: list[tuple[str, list[float]]], baseline: str, digits: int
) -> None:
    """One row per method: each value and its ratio to the baseline's value in that column."""
    base = dict(rows)[baseline]
    print(f"\n{title}")
    header = f"{'':<64}" + "".join(f"{unit:>10}{'/ base':>8}" for unit in units)
    print(header)
    print("-" * len(header))
    for name, values in rows:
        label = name + ("  [baseline]" if name == baseline else "")
        cells = "".join(
            f"{v:>10.{digits}f}{v / b:>8.2f}" for v, b in zip(values, base, strict=True)
        )
        print(f"{label:<64}{cells}")


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="training rows (default 2000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 5)")
    parser.add_argument("--repeat", type=int, default=None, help="median of R fits (default 3)")
    parser.add_argument("--calls", type=int, default=None, help="one-row predict calls (200)")
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = args.rows if args.rows is not None else (400 if args.quick else 2000)
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 5)
    repeat = max(1, args.repeat if args.repeat is not None else (2 if args.quick else 3))
    calls = max(1, args.calls if args.calls is not None else (30 if args.quick else 200))
    big_calls = max(3, calls // 10)

    import keras
    import tensorflow as tf

    print(versions())
    print(load_warning())
    df, y = make_data(max(rows, BIG_BATCH), args.seed)
    df_fit, y_fit = df.iloc[:rows], y[:rows]
    print(
        f"data: {rows} rows (image 32x32x3 array, text, 3 numbers), {N_CLASSES} classes; "
        f"{epochs} epochs, batch {BATCH_SIZE}; fits: median of {repeat}"
    )

    batch = make_preprocessor().fit_transform(df_fit)
    specs = batch.specs
    inputs = batch.to_inputs(list(batch.keys()))
    seed = mmsk_seed(args.seed)

    # Warm-up: TensorFlow's one-time costs (kernels, thread pools) paid before any timing.
    fit_hand({k: v[:64] for k, v in inputs.items()}, y_fit[:64], specs, 1, seed)
    make_classifier(1, args.seed).fit(batch[:64], y_fit[:64])

    make_own_classifier(1, args.seed).fit(batch[:64], y_fit[:64])

    hand_s, mmsk_s, own_s, raw_s, prep_runs = [], [], [], [], []
    for _ in range(repeat):  # alternate, so drifting machine load hits both sides
        t, model = timed(lambda: fit_hand(inputs, y_fit, specs, epochs, seed))
        hand_s.append(t)
        t, clf = timed(lambda: make_classifier(epochs, args.seed).fit(batch, y_fit))
        mmsk_s.append(t)
        t, own = timed(lambda: make_own_classifier(epochs, args.seed).fit(batch, y_fit))
        own_s.append(t)
        t, clf_raw = timed(lambda: make_classifier(epochs, args.seed).fit(df_fit, y_fit))
        raw_s.append(t)
        prep_runs.append(timed(lambda: make_preprocessor().fit_transform(df_fit))[0])

    n_hand, n_mmsk = model.count_params(), clf.model_.count_params()
    gap = float(np.abs(model.predict(inputs, verbose=0) - clf.predict_proba(batch)).max())
    print(
        f"weights: hand {n_hand:,}, mmsk {n_mmsk:,} ({'same' if n_hand == n_mmsk else 'DIFFER'})"
        f"; largest gap between their predicted probabilities: {gap:.2g}"
    )

    def med(runs: list[tuple[float, float]]) -> list[float]:
        return [statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)]

    n_own = own.model_.count_params()
    own_gap = float(np.abs(model.predict(inputs, verbose=0) - own.predict_proba(batch)).max())
    print(
        f"model= (the hand network given to mmsk): weights {n_own:,} "
        f"({'same' if n_own == n_hand else 'DIFFER'}); largest gap to the hand model's "
        f"probabilities: {own_gap:.2g}"
    )
    hand, mm, raw, prep = med(hand_s), med(mmsk_s), med(raw_s), med(prep_runs)
    own_t = med(own_s)
    baseline = "hand-written Keras: build + compile + fit on arrays"
    table(
        f"fit time (seconds, median of {repeat} run(s); CPU = all threads of this process)",
        ["wall s", "CPU s"],
        [
            (baseline, hand),
            ("mmsk MultimodalClassifier.fit(ModalityBatch)", mm),
            ("mmsk fit(ModalityBatch), model= the hand network", own_t),
            ("mmsk MultimodalClassifier.fit(DataFrame)", raw),
            ("  mmsk preprocessing alone (ModalityPreprocessor)", prep),
            (
                "  fit(DataFrame) minus preprocessing",
                [r - p for r, p in zip(raw, prep, strict=True)],
            ),
        ],
        baseline,
        3,
    )
    runs = {"hand": hand_s, "mmsk(ModalityBatch)": mmsk_s, "model=": own_s,
            "mmsk(DataFrame)": raw_s}  # fmt: skip
    print(
        "wall s per run: "
        + " | ".join(f"{k} " + " ".join(f"{t[0]:.2f}" for t in v) for k, v in runs.items())
    )
    wall_ratio, cpu_ratio = mm[0] / hand[0], mm[1] / hand[1]
    print(
        f"goal mmsk fit / hand fit <= 1.05: wall {wall_ratio:.2f} "
        f"({'met' if wall_ratio <= 1.05 else 'NOT met'}), CPU {cpu_ratio:.2f} "
        f"({'met' if cpu_ratio <= 1.05 else 'NOT met'})"
    )

    own_wall, own_cpu = own_t[0] / hand[0], own_t[1] / hand[1]
    print(
        f"goal model= fit / hand fit <= 1.05: wall {own_wall:.2f} "
        f"({'met' if own_wall <= 1.05 else 'NOT met'}), CPU {own_cpu:.2f} "
        f"({'met' if own_cpu <= 1.05 else 'NOT met'})"
    )

    # ---- predict latency ------------------------------------------------------
    df_big = df.iloc[:BIG_BATCH]
    batch_big = clf_raw.preprocessor_.transform(df_big)
    inputs_big = batch_big.to_inputs(clf.modalities_)
    x_flat = flat(inputs_big)
    wrapper = keras_wrapper(model, specs, x_flat, y[:BIG_BATCH])

    def call(x: dict[str, np.ndarray]) -> Any:
        return model(x, training=False)

    compiled = tf.function(call, reduce_retracing=True)
    keras.utils.disable_interactive_logging()  # SKLearnClassifier.predict has no verbose=0

    def first(x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v[:1] for k, v in x.items()}

    small = {
        "arrays": first(inputs_big),
        "batch": batch_big[:1],
        "df": df_big.iloc[:1],
        "flat": x_flat[:1],
    }
    large = {"arrays": inputs_big, "batch": batch_big, "df": df_big, "flat": x_flat}
    cases: list[tuple[str, str, Callable[[Any], Any]]] = [
        ("keras Model.predict", "arrays", lambda x: model.predict(x, verbose=0)),
        ("mmsk predict_proba(ModalityBatch)", "batch", clf.predict_proba),
        ("mmsk predict_proba(ModalityBatch), model=", "batch", own.predict_proba),
        ("mmsk predict_proba(DataFrame) incl. preprocessing", "df", clf_raw.predict_proba),
        (
            "  of which preprocessing (preprocessor_.transform)",
            "df",
            clf_raw.preprocessor_.transform,
        ),
        ("keras.wrappers.SKLearnClassifier.predict", "flat", wrapper.predict),
        ("keras model(x, training=False), eager", "arrays", lambda x: model(x, training=False)),
        ("keras tf.function(model) (the floor)", "arrays", compiled),
    ]
    one_row, many = [], []
    for name, kind, fn in cases:
        one_row.append((name, [1e3 * median_latency(lambda f=fn, x=small[kind]: f(x), calls)]))
    for name, kind, fn in cases:
        ms = 1e3 * median_latency(lambda f=fn, x=large[kind]: f(x), big_calls)
        many.append((name, [ms]))
    base = "keras Model.predict"
    table(f"predict latency, 1 row (median of {calls} calls)", ["ms"], one_row, base, 2)
    latency = {name: values[0] for name, values in one_row}
    single = latency["mmsk predict_proba(ModalityBatch)"] / latency[base]
    single_df = latency["mmsk predict_proba(DataFrame) incl. preprocessing"] / latency[base]
    print(
        f"goal mmsk 1-row predict / Model.predict <= 0.50: {single:.2f} on a ModalityBatch "
        f"({'met' if single <= 0.5 else 'NOT met'}), {single_df:.2f} on a DataFrame row "
        f"({'met' if single_df <= 0.5 else 'NOT met'})"
    )
    title = f"predict latency, {BIG_BATCH} rows (median of {big_calls} calls)"
    table(title, ["ms"], many, base, 1)


if __name__ == "__main__":
    main()
