"""The linear blend: the network plus the best linear model on its wide features.

With ``wide=True`` the network's logits are the sum of a deep path and a
linear ("wide") path on each modality's raw input (``_build._wide_logits``).
Trained together by gradient descent with early stopping, the linear part
rarely reaches what a tuned linear model reaches on the same features, so
after training a fresh fit also solves the linear model as scikit-learn
would, and blends it in:

1. the wide features of all rows are read from the model: TF-IDF vectors of
   the words and character n-grams of text (as the model's
   :class:`~mmsk.layers.TfidfBag` layers compute them), pooled pixels and
   colour histograms, the mean spectrum, the numbers and categories;
2. they become one sparse matrix: the TF-IDF vectors as they are,
   standardised columns for the rest (one-hot columns kept as they are),
   each block scaled to a mean row norm of 1;
3. ``LogisticRegression`` and ``LinearSVC`` (``Ridge`` for a regressor), for
   a few penalties and weights of the dense columns, are compared by 3-fold
   cross-validation over all rows (at most :data:`SELECTION_ROWS` of them;
   the folds fitted in threads, one per core), and the best is refitted on
   every row (:func:`_solve`);
4. the blend ``a * network + b * linear`` (of logits, or of the standardised
   prediction of a regressor) is chosen on the validation rows, with ``a`` and
   ``b`` in :data:`BLEND` (``a=1, b=0`` is the network alone), the linear
   model's logits there from the chosen model fitted on the network's
   training rows (out-of-fold logits, from models fitted on two thirds of the
   rows, understated it): of the blends whose loss there is within one
   standard error of the lowest, the one nearest an even blend
   (:func:`_choose`);
5. it is written into the network itself: the head and the wide layers are
   scaled by ``a``, the linear model's coefficients (the scaling folded in)
   times ``b`` are added to the wide layers, its intercept to the head's bias.

The result is one Keras model, saved, exported and served as before.  It
needs held-out rows (``validation_split``) to choose, and mmsk's own network
with a wide path, the task's own loss and a dense head.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from mmsk import _backend

C_GRID = (1.0, 3.0, 10.0, 30.0)  # inverse penalties tried (Ridge: alpha = 1 / C)
SVM_GRID = (0.3, 1.0)  # LinearSVC's
TEMPERATURES = (0.5, 1.0, 2.0, 4.0, 8.0)  # scales of a classifier's logits tried
FOLDS = 3  # cross-validation folds that choose the linear model
SELECTION_ROWS = 20_000  # rows the choice is made on (a seeded sample of larger data)
DENSE_WEIGHTS = (1.0, 0.3, 0.1)  # weights of the dense columns against the bags, tried
HEAD = "head_logits"  # the deep head's last layer: takes the intercept


@dataclass
class _Block:
    """One modality's wide features and how to fold the solution back into its layer."""

    name: str
    layer: str  # the wide layer whose weights the solution becomes
    bag: bool  # True: a TfidfBag over ids; False: a Dense on a vector
    scale: np.ndarray  # per column: feature = raw * scale (after centring)
    centre: np.ndarray | None  # per column mean (dense blocks)


def supports(model: Any, estimator: Any, target: Any) -> bool:
    """Whether this fit can blend in a linear model."""
    if not getattr(estimator, "wide", False) or getattr(estimator, "model", None) is not None:
        return False
    if getattr(estimator, "loss", None) is not None:
        return False  # a loss of the user's own: the linear model would not minimise it
    if target.loss not in ("sparse_categorical_crossentropy", "mean_squared_error") and not (
        target.loss == "binary_crossentropy" and target.n_outputs == 1
    ):
        return False  # multilabel: several sigmoids, left to joint training
    names = {layer.name for layer in model.layers}
    return HEAD in names and any(n.startswith("wide_") for n in names)


def _wide_layers(model: Any, modalities: list[str]) -> list[tuple[str, str, bool, Any]]:
    """(modality, layer name, is bag, tensor holding its features) for each wide layer."""
    found = []
    names = {layer.name for layer in model.layers}
    for name in modalities:
        for layer in (f"wide_{name}_words", f"wide_{name}_chars"):  # a text's TF-IDF bags
            if layer in names:
                found.append((name, layer, True, model.get_layer(layer).input))
        for layer in (f"wide_{name}", f"wide_{name}_hist"):  # an image has two: pixels, colours
            if layer in names:
                found.append((name, layer, False, model.get_layer(layer).input))
    return found


def _bag_matrix(bag: Any, ids: np.ndarray, chunk: int = 1024) -> sparse.csr_matrix:
    """Row i: the TF-IDF vector that the ``TfidfBag`` layer ``bag`` makes of ids row i."""
    parts = [np.asarray(bag.tfidf(ids[s : s + chunk])) for s in range(0, len(ids), chunk)]
    weights = np.concatenate(parts) if parts else ids * 0.0
    rows, cols = np.nonzero(ids)
    return sparse.csr_matrix(
        (weights[rows, cols].astype(np.float64), (rows, ids[rows, cols])),
        shape=(len(ids), bag.vocabulary_size),
    )  # duplicates (an id twice in a row) are summed


def _features(model: Any, x: dict[str, Any], present: np.ndarray, modalities: list[str],
              train: np.ndarray) -> tuple[sparse.csr_matrix, list[_Block]]:  # fmt: skip
    """The design matrix of all rows, and its blocks (scaled on the ``train`` rows)."""
    keras = _backend.keras()
    layers = _wide_layers(model, modalities)
    reader = keras.Model(model.input, [tensor for *_, tensor in layers])
    outputs = _run(reader, x)
    parts, blocks = [], []
    for (name, layer, bag, _), raw in zip(layers, outputs, strict=True):
        on = present[:, modalities.index(name)] > 0
        raw = np.asarray(raw)
        if bag:
            bag_layer = model.get_layer(layer)
            block = _bag_matrix(bag_layer, np.where(on[:, None], raw, 0))
            norm = _mean_norm(block[train][on[train]])
            blocks.append(_Block(name, layer, True, np.full(bag_layer.vocabulary_size, 1 / norm),
                                 None))  # fmt: skip
            parts.append(block / norm)
        else:
            raw = raw.reshape(len(raw), -1).astype(np.float64)
            centre = raw[train][on[train]].mean(axis=0) if on[train].any() else raw[0] * 0
            spread = raw[train][on[train]].std(axis=0) if on[train].any() else centre + 1
            spread[spread < 1e-8] = 1.0
            seen = raw[train][on[train]]
            flags = np.all((seen == 0) | (seen == 1), axis=0)  # one-hot: kept as 0/1
            centre[flags], spread[flags] = 0.0, 1.0
            z = (raw - centre) / spread
            z[~on] = 0.0
            norm = _mean_norm(z[train][on[train]])
            blocks.append(_Block(name, layer, False, 1.0 / (spread * norm), centre))
            parts.append(sparse.csr_matrix(z / norm))
    return sparse.hstack(parts, format="csr"), blocks


def _run(model: Any, x: dict[str, Any], chunk: int = 1024) -> list[np.ndarray]:
    """The model's outputs (a list), computed eagerly in chunks: no ``predict``
    function to trace for one call."""
    n = len(next(iter(x.values())))
    parts = []
    for start in range(0, n, chunk):
        out = model({k: np.asarray(v)[start : start + chunk] for k, v in x.items()},
                    training=False)  # fmt: skip
        parts.append([np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])])
    return [np.concatenate(column) for column in zip(*parts, strict=True)]


def _mean_norm(block: Any) -> float:
    if block.shape[0] == 0:
        return 1.0
    squares = block.multiply(block) if sparse.issparse(block) else block**2
    norm = float(np.mean(np.sqrt(np.asarray(squares.sum(axis=1)).ravel())))
    return norm if norm > 1e-8 else 1.0


@dataclass
class _Solution:
    """The chosen linear model: logits ``X @ coef.T + intercept`` (temperature included)."""

    kind: str  # "logistic", "svm" or "ridge"
    strength: float  # C (ridge: 1 / alpha)
    dense_weight: float
    temperature: float
    cv_loss: float  # of the out-of-fold logits, over all rows
    out_of_fold: np.ndarray  # (n_rows, n_outputs) logits, each from a model without its row
    sample: np.ndarray  # the rows with out-of-fold logits (all, up to SELECTION_ROWS)
    coef: np.ndarray | None = None  # (n_outputs, d), refitted on all rows
    intercept: np.ndarray | None = None  # (n_outputs,)
    held_out: np.ndarray | None = None  # logits of the ``holdout`` rows, fitted on the others


def _candidates(classify: bool) -> list[tuple[str, float, Any]]:
    """(kind, strength, unfitted model) of every linear model tried, in fitting order."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.svm import LinearSVC

    if not classify:
        return [("ridge", C, Ridge(alpha=1.0 / C)) for C in C_GRID]
    logistic = LogisticRegression(max_iter=300, tol=1e-3, warm_start=True)  # along the path
    return [("logistic", C, logistic) for C in C_GRID] + [
        ("svm", C, LinearSVC(C=C, max_iter=2000)) for C in SVM_GRID
    ]


def _fit(model: Any, kind: str, strength: float, X: Any, y: np.ndarray,
         w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Fit one model (its ``ConvergenceWarning`` silenced by the caller: warning filters
    are global, and the folds are fitted in threads)."""
    if kind == "logistic":
        model.set_params(C=strength)
    model.fit(X, y, sample_weight=w)
    return np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)


def _fold(X: Any, y: np.ndarray, w: np.ndarray | None, fit_rows: np.ndarray, held: np.ndarray,
          classify: bool) -> dict[tuple[str, float], np.ndarray]:  # fmt: skip
    """Every candidate fitted on ``fit_rows``: its logits of the ``held`` rows."""
    wf = None if w is None else w[fit_rows]
    out = {}
    for kind, strength, model in _candidates(classify):  # fresh: a logistic path per fold
        coef, intercept = _fit(model, kind, strength, X[fit_rows], y[fit_rows], wf)
        out[(kind, strength)] = np.asarray(X[held] @ coef.T + intercept)
    return out


def _solve(X: Any, y: np.ndarray, w: np.ndarray | None, activation: str, dense: np.ndarray,
           seed: int, holdout: np.ndarray | None = None) -> _Solution:  # fmt: skip
    """The linear model of the lowest cross-validated loss, refitted on all rows (and,
    for the ``holdout`` rows, fitted on the other rows to give their ``held_out`` logits).

    Tried, by 3-fold cross-validation over all rows (as ``GridSearchCV``
    would): ``LogisticRegression`` for each strength of :data:`C_GRID` and
    ``LinearSVC`` (a hinge loss, often best on TF-IDF) for each of
    :data:`SVM_GRID`, or ``Ridge`` with ``alpha = 1 / C`` for a regressor;
    each with the columns where ``dense`` is True (numbers, pixels) weighted
    by each of :data:`DENSE_WEIGHTS` against the bags of words (with one
    penalty for all, a handful of dense columns otherwise outweigh thousands
    of sparse word columns).  A classifier's logits are scaled by the
    temperature of :data:`TEMPERATURES` that fits best, which turns the
    SVM's margins into probabilities.
    """
    from joblib import Parallel, cpu_count, delayed
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold, StratifiedKFold

    classify = activation != "linear"
    y_out = y.reshape(len(y), -1) if not classify else y
    cv: Any = StratifiedKFold if classify else KFold  # every class in every fold
    cv = cv(FOLDS, shuffle=True, random_state=seed)
    sample = np.arange(len(y))
    if len(y) > SELECTION_ROWS:  # a seeded sample of large data
        sample = np.sort(np.random.default_rng(seed).choice(len(y), SELECTION_ROWS, False))
    folds = [(sample[a], sample[b])
             for a, b in cv.split(sample, y[sample] if classify else None)]  # fmt: skip
    factors = DENSE_WEIGHTS if dense.any() and not dense.all() else (1.0,)
    best: _Solution | None = None
    scaled = {factor: X @ sparse.diags(np.where(dense, factor, 1.0)) for factor in factors}
    jobs = [(factor, fit_rows, held) for factor in factors for fit_rows, held in folds]
    run = Parallel(n_jobs=min(len(jobs), cpu_count()), backend="threading")
    with warnings.catch_warnings():  # for every thread: the filters are global
        warnings.simplefilter("ignore", ConvergenceWarning)
        parts = run(delayed(_fold)(scaled[factor], y, w, fit_rows, held, classify)
                    for factor, fit_rows, held in jobs)  # fmt: skip
    for i, factor in enumerate(factors):  # jobs go factor by factor, fold by fold
        out: dict[tuple[str, float], np.ndarray] = {}
        for (_, held), part in zip(folds, parts[i * len(folds) : (i + 1) * len(folds)],
                                   strict=True):  # fmt: skip
            for key, logits in part.items():
                out.setdefault(key, np.zeros((len(y), logits.shape[1])))[held] = logits
        for (kind, strength), z in out.items():
            for t in TEMPERATURES if classify else (1.0,):
                loss = _loss(t * z[sample], y_out[sample], None if w is None else w[sample],
                             activation)  # fmt: skip
                if best is None or loss < best.cv_loss:
                    best = _Solution(kind, strength, factor, t, loss, t * z, sample)
    assert best is not None
    Xf = scaled[best.dense_weight]
    model = dict(((k, c), m) for k, c, m in _candidates(classify))[(best.kind, best.strength)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if holdout is not None and len(holdout):  # as the network: trained without them
            rest = np.setdiff1d(np.arange(len(y)), holdout)
            coef, intercept = _fit(model, best.kind, best.strength, Xf[rest], y[rest],
                                   None if w is None else w[rest])  # fmt: skip
            best.held_out = best.temperature * np.asarray(Xf[holdout] @ coef.T + intercept)
        coef, intercept = _fit(model, best.kind, best.strength, Xf, y, w)
    best.coef, best.intercept = best.temperature * coef, best.temperature * intercept
    return best


BLEND = (0.0, 0.25, 0.5, 0.75, 1.0)  # weights tried for each of the two models' logits


def _logits(out: np.ndarray, activation: str) -> np.ndarray:
    """Logits (up to a per-row constant) of the network's predictions."""
    out = np.asarray(out, dtype=np.float64)
    if activation == "softmax":
        return np.log(np.clip(out, 1e-12, None))
    if activation == "sigmoid":
        out = np.clip(out, 1e-12, 1 - 1e-12)
        return np.log(out) - np.log1p(-out)
    return out


def _loss(z: np.ndarray, y: np.ndarray, w: np.ndarray | None, activation: str) -> float:
    """The task's loss of logits ``z`` (what ``val_loss`` measures)."""
    return float(np.average(_row_losses(z, y, activation), weights=w))


def _row_losses(z: np.ndarray, y: np.ndarray, activation: str) -> np.ndarray:
    """The task's loss of logits ``z``, row by row."""
    if activation == "softmax":
        z = z - z.max(axis=1, keepdims=True)
        each = np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y.astype(int)]
    elif activation == "sigmoid":
        z, t = z.reshape(len(y), -1), y.reshape(len(y), -1)
        each = (np.logaddexp(0, z) - t * z).mean(axis=1)
    else:
        each = ((z.reshape(len(y), -1) - y.reshape(len(y), -1)) ** 2).mean(axis=1)
    return each


def _choose(rows: dict[tuple[float, float], np.ndarray], w: np.ndarray | None) -> tuple:
    """The blend ``(a, b)`` to keep, from each blend's losses on the validation rows.

    The lowest mean loss on a few hundred rows is a noisy choice (and early
    stopping chose the network's epoch on these rows, which flatters it), so by
    the one-standard-error rule every blend whose mean loss is within one
    standard error of the best one's (the error of the rows' differences) is as
    good, and of those the one nearest an even blend is kept: an even mix of two
    models is the hardest to beat when weights are estimated from little data.
    """

    def mean(v: np.ndarray) -> float:
        return float(np.average(v, weights=w))

    best = min(rows, key=lambda k: (mean(rows[k]), -k[0]))  # ties: more of the network
    n = len(rows[best])
    share = np.ones(n) / n if w is None else np.asarray(w, float) / float(np.sum(w))
    plausible = []
    for key, loss in rows.items():
        gap = loss - rows[best]
        excess = float(share @ gap)
        error = float(np.sqrt(share @ (gap - excess) ** 2 * n / max(n - 1, 1) / n))
        if excess <= error:
            plausible.append(key)
    return min(plausible, key=lambda k: (abs(k[0] - 0.5) + abs(k[1] - 0.5), mean(rows[k])))


def blend(estimator: Any, x: dict[str, Any], y: np.ndarray, sample_weight: np.ndarray | None,
          rows: tuple[np.ndarray, np.ndarray], activation: str,
          seed: int) -> dict | None:  # fmt: skip
    """Blend the trained network with the best linear model on its wide features.

    ``x`` holds the inputs of all rows, ``rows`` are the indices of the
    network's training rows and of its validation rows.  The linear model is chosen by
    cross-validation over all rows and refitted on all of them
    (:func:`_solve`); the weights of the two (each from :data:`BLEND`) are
    chosen by :func:`_choose` from the losses on the ``val`` rows, where the network's
    predictions are compared with those of the chosen linear model fitted on the
    network's training rows (both trained without the ``val`` rows).  The
    blend is written into the wide layers and the head.  Returns what was
    chosen, or None where nothing can be chosen (no validation rows, a class
    with fewer than :data:`FOLDS` rows).
    """
    model = estimator.model_
    names = list(estimator.modalities_)
    train, val = rows
    y = np.asarray(y)
    classify = activation != "linear"
    if not len(val):
        return None
    if classify:
        counts = np.bincount(y.astype(int), minlength=max(model.output.shape[-1], 2))
        if counts.min() < FOLDS:
            return None
    X, blocks = _features(model, x, np.asarray(x["mmsk_present"]), names, train)
    dense = np.concatenate([np.full(len(b.scale), not b.bag) for b in blocks])
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small problems: BLAS threads only contend (with Keras')
        solution = _solve(X, y, sample_weight, activation, dense, seed, holdout=val)
    factor, coef, intercept = solution.dense_weight, solution.coef, solution.intercept
    assert coef is not None and intercept is not None and solution.held_out is not None
    linear = solution.held_out  # from the network's training rows, as the network's are
    x_val = {k: np.asarray(v)[val] for k, v in x.items()}
    trained = _logits(_run(model, x_val)[0], activation)
    trained = trained.reshape(len(val), -1)
    wv = None if sample_weight is None else sample_weight[val]
    each = {(a, b): _row_losses(a * trained + b * linear, y[val], activation)
            for a in BLEND for b in BLEND if a or b}  # fmt: skip
    losses = {k: float(np.average(v, weights=wv)) for k, v in each.items()}
    a, b = _choose(each, wv)
    strength = {"alpha": 1.0 / solution.strength} if solution.kind == "ridge" else {
        "C": solution.strength, "temperature": solution.temperature}  # fmt: skip
    chosen = {"linear_model": solution.kind, **strength,
              "dense_weight": factor, "network": a, "linear": b, "val_loss": losses[(a, b)],
              "val_loss_network": losses[(1.0, 0.0)]}  # fmt: skip
    if (a, b) == (1.0, 0.0):
        return chosen
    column = 0
    for block in blocks:
        layer = model.get_layer(block.layer)
        width = len(block.scale)
        part = coef[:, column : column + width].T * block.scale[:, None]  # (d, n_outputs)
        part = part * (1.0 if block.bag else factor)
        column += width
        weights = layer.get_weights()  # kernel, then bias (Dense) or idf (TfidfBag)
        weights[0] = a * weights[0] + b * part
        if not block.bag:
            weights[1] = a * weights[1] - b * (block.centre @ part)
        layer.set_weights([v.astype("float32") for v in weights])
    head = model.get_layer(HEAD)
    kernel, bias = head.get_weights()
    head.set_weights([a * kernel, (a * bias + b * intercept).astype("float32")])
    return chosen
