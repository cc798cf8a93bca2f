"""Text column -> padded int32 token ids: :class:`TextVectorizer`."""

from __future__ import annotations

import math
import reprlib
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from mmsk import _backend
from mmsk._batch import ModalitySpec
from mmsk._infer import is_missing
from mmsk._validation import ParamsMixin
from mmsk.exceptions import DecodeError, InputError, InputTypeError
from mmsk.preprocessing._column import Column, as_column, check_not_empty

_CHUNK = 8192  # rows per call of the Keras layer
_STANDARDIZE = ("lower_and_split_punctuation", "lower_and_strip_punctuation", "lower",
                "strip_punctuation")  # fmt: skip
_PLACEHOLDER = "\x00[mmsk-empty]"  # lets a layer with no learned token be built


class TextVectorizer(ParamsMixin, TransformerMixin, BaseEstimator):
    """Turn a column of texts into padded int32 token ids, with a vocabulary learned in ``fit``.

    A scikit-learn wrapper around :class:`keras.layers.TextVectorization`.  Id 0
    is padding and id 1 the out-of-vocabulary token.  Missing cells (None/NaN)
    give all-zero rows (the presence mask is kept by the caller); bytes cells
    are decoded as UTF-8.  Texts longer than the sequence are truncated before
    tokenization, so a huge cell costs little memory in ``transform``.

    Parameters
    ----------
    max_tokens : int or None, default=20000
        Largest vocabulary, padding and out-of-vocabulary ids included
        (at least 3). None keeps every token seen in ``fit``.
    sequence_length : int or None, default=None
        Tokens per row. None picks the 95th percentile of the training texts'
        token counts (rounded up, at least 1, at most ``max_sequence_length``).
    standardize : {"lower_and_split_punctuation", "lower_and_strip_punctuation", "lower", \
"strip_punctuation"} or None, default="lower_and_split_punctuation"
        Normalisation applied before splitting.  ``"lower_and_split_punctuation"``
        lower-cases and turns every punctuation mark or symbol into a space,
        so ``"python3-numpy"`` gives the tokens ``python3`` and ``numpy`` (as
        scikit-learn's ``TfidfVectorizer`` splits words); the ``strip`` options
        delete punctuation (``"python3numpy"``).  With ``split="character"``
        it deletes them too.
    split : {"whitespace", "character"}, default="whitespace"
        Word or character tokens.
    ngrams : int, tuple of int or None, default=None
        Passed to Keras: an int makes all n-grams up to it, a tuple exactly those.
    max_sequence_length : int, default=512
        Upper bound of the length chosen when ``sequence_length=None``.

    Attributes
    ----------
    vocabulary_ : list of str
        Tokens by id: ``vocabulary_[0] == ""`` (padding), ``vocabulary_[1] == "[UNK]"``.
    vocabulary_size_ : int
        ``len(vocabulary_)``.
    sequence_length_ : int
        Columns of the output of ``transform``.
    spec_ : ModalitySpec
        ``ModalitySpec("text", (sequence_length_,), "int32", vocabulary_size=vocabulary_size_)``.
    n_features_in_ : int
        Always 1.
    feature_names_in_ : ndarray of str
        The column's name, when ``fit`` got a DataFrame or a named Series.

    Examples
    --------
    >>> import pandas as pd
    >>> from mmsk.preprocessing import TextVectorizer
    >>> reviews = pd.Series(["Great fit, great colour!", "Too small", None], name="review")
    >>> vec = TextVectorizer(sequence_length=4).fit(reviews)
    >>> vec.vocabulary_[:3], vec.vocabulary_size_
    (['', '[UNK]', 'great'], 7)
    >>> vec.transform(["great shoes", None])
    array([[2, 1, 0, 0],
           [0, 0, 0, 0]], dtype=int32)
    >>> vec.get_feature_names_out()[:2].tolist()
    ['review_tok0', 'review_tok1']
    """

    _parameter_constraints: dict = {
        "max_tokens": [Interval(Integral, 3, None, closed="left"), None],
        "sequence_length": [Interval(Integral, 1, None, closed="left"), None],
        "standardize": [
            StrOptions(set(_STANDARDIZE)),
            None,
        ],
        "split": [StrOptions({"whitespace", "character"})],
        "ngrams": [Interval(Integral, 1, None, closed="left"), tuple, None],
        "max_sequence_length": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        max_tokens: int | None = 20000,
        sequence_length: int | None = None,
        standardize: str | None = "lower_and_split_punctuation",
        split: str = "whitespace",
        ngrams: int | tuple[int, ...] | None = None,
        max_sequence_length: int = 512,
    ) -> None:
        self.max_tokens = max_tokens
        self.sequence_length = sequence_length
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self.max_sequence_length = max_sequence_length

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> TextVectorizer:
        """Learn the vocabulary and the sequence length from a column of texts.

        Parameters
        ----------
        X : Series, one-column DataFrame, list or 1-D array of str/bytes/None
            The texts; missing cells are ignored.
        y : None
            Ignored.

        Returns
        -------
        self : TextVectorizer
        """
        ngrams = self.ngrams
        if isinstance(ngrams, tuple) and not (
            ngrams and all(isinstance(n, Integral) and n >= 1 for n in ngrams)
        ):
            raise InputError(
                "Expected ngrams to be None, a positive int or a non-empty tuple of positive "
                f"ints. Received: ngrams={ngrams!r}"
            )
        ngrams = tuple(map(int, ngrams)) if isinstance(ngrams, tuple) else ngrams
        ngrams = int(ngrams) if isinstance(ngrams, Integral) else ngrams
        # settings are frozen at fit, so set_params without a refit cannot desync transform
        self._settings = dict(standardize=self.standardize, split=self.split, ngrams=ngrams)
        self._widths = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams or (1,)
        self._layer: Any = None
        self._counter: Any = None

        column = as_column(X, "TextVectorizer")
        check_not_empty(column, "TextVectorizer")
        texts = [t for t, p in zip(_texts(column), column.present, strict=True) if p]

        tf = _backend.tf()
        layer = self._new_layer(max_tokens=self.max_tokens)
        layer.adapt(
            tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(_CHUNK)
        )
        self.vocabulary_ = [str(t) for t in layer.get_vocabulary()]
        self.vocabulary_size_ = len(self.vocabulary_)

        if self.sequence_length is not None:
            self.sequence_length_ = int(self.sequence_length)
        elif not texts:
            self.sequence_length_ = 1
        else:  # 95th percentile of the token counts each text gives (n-grams included)
            cap = int(self.max_sequence_length)
            words = self._count(self._clip(texts, cap + self._widths[0]))
            counts = sum(np.maximum(words - n + 1, 0) for n in self._widths)
            self.sequence_length_ = min(cap, max(1, math.ceil(np.percentile(counts, 95))))

        self.n_features_in_ = 1
        if isinstance(X, pd.DataFrame) or (isinstance(X, pd.Series) and X.name is not None):
            self.feature_names_in_ = np.asarray([column.name], dtype=object)
        self.spec_ = ModalitySpec(
            "text", (self.sequence_length_,), "int32", vocabulary_size=self.vocabulary_size_
        )
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return int32 token ids of shape ``(n_rows, sequence_length_)``.

        Parameters
        ----------
        X : Series, one-column DataFrame, list or 1-D array of str/bytes/None
            The texts; missing cells and empty strings give all-zero rows.

        Returns
        -------
        ndarray of int32, shape (n_rows, sequence_length_)
        """
        check_is_fitted(self)
        column = as_column(X, "TextVectorizer")
        check_not_empty(column, "TextVectorizer")
        length = self.sequence_length_
        texts = self._clip(_texts(column), length + self._widths[0])
        tf = _backend.tf()
        if getattr(self, "_layer", None) is None:
            vocab = self.vocabulary_ if self.vocabulary_size_ > 2 else [_PLACEHOLDER]
            layer = self._new_layer(vocabulary=vocab, output_sequence_length=length)
            # Compiled once: eager string ops cost ~10 ms a call, the graph ~1 ms.
            self._layer = tf.function(layer, input_signature=[tf.TensorSpec([None], tf.string)])
        out = np.zeros((len(texts), length), dtype=np.int32)
        for start in range(0, len(texts), _CHUNK):
            chunk = tf.constant(texts[start : start + _CHUNK], tf.string)
            out[start : start + _CHUNK] = self._layer(chunk).numpy()
        if self.vocabulary_size_ <= 2:  # nothing learned: the placeholder's id is OOV too
            out[out >= self.vocabulary_size_] = 1
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Return ``["<col>_tok0", ..., "<col>_tok{L-1}"]`` (col is "text" when unnamed)."""
        check_is_fitted(self)
        fitted = getattr(self, "feature_names_in_", None)
        if input_features is not None:
            names = [str(f) for f in input_features]
            if len(names) != 1 or (fitted is not None and names[0] != fitted[0]):
                raise InputError(
                    f"Expected input_features to be the one column seen in fit "
                    f"({None if fitted is None else fitted[0]!r}). Received: {names}"
                )
            col = names[0]
        else:
            col = "text" if fitted is None else str(fitted[0])
        return np.asarray([f"{col}_tok{i}" for i in range(self.sequence_length_)], dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True  # NaN/None cells are missing texts
        tags.transformer_tags.preserves_dtype = []  # always int32
        return tags

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: never edit our own __dict__
        state.pop("_layer", None)  # Keras layers are rebuilt from vocabulary_ on demand
        state.pop("_counter", None)
        return state

    # -- helpers -----------------------------------------------------------------
    def _new_layer(self, **kwargs: Any) -> Any:
        keras = _backend.keras()
        settings = dict(self._settings)
        if settings["standardize"] == "lower_and_split_punctuation":
            # Characters: punctuation is dropped, as a space would be a token of its own.
            split = settings["split"] == "whitespace"
            standardize: Any = (
                _lower_and_split_punctuation if split else "lower_and_strip_punctuation"
            )
            settings["standardize"] = standardize
        return keras.layers.TextVectorization(**{**settings, "output_mode": "int", **kwargs})

    def _count(self, texts: list[str]) -> np.ndarray:
        """Number of unigram tokens in each text, as the layer splits them."""
        if getattr(self, "_counter", None) is None:
            self._counter = self._new_layer(ngrams=None, ragged=True, vocabulary=[_PLACEHOLDER])
        tf = _backend.tf()
        counts = [
            self._counter(tf.constant(texts[s : s + _CHUNK], tf.string)).row_lengths().numpy()
            for s in range(0, len(texts), _CHUNK)
        ]
        return np.concatenate(counts) if counts else np.zeros(0, np.int64)

    def _clip(self, texts: list[str], need: int) -> list[str]:
        """Cut long texts to a prefix holding at least ``need`` unigrams (exact output).

        Standardizing and splitting go character by character, so only the prefix's
        last token may be cut; the prefix grows 4x a round while it holds too few.
        """
        budget = 32 * need + 1024
        pending = [i for i, t in enumerate(texts) if len(t) > budget]
        out = list(texts) if pending else texts
        while pending:
            counts = self._count([texts[i][:budget] for i in pending])
            longer = []
            for i, n in zip(pending, counts, strict=True):
                if n >= need:
                    out[i] = texts[i][:budget]
                elif len(texts[i]) > 4 * budget:
                    longer.append(i)
            pending, budget = longer, 4 * budget
        return out


def _lower_and_split_punctuation(texts: Any) -> Any:
    """Lower-case, and replace each punctuation mark or symbol with a space (in-graph)."""
    tf = _backend.tf()
    lowered = tf.strings.lower(texts, encoding="utf-8")
    return tf.strings.regex_replace(lowered, r"[\p{P}\p{S}]", " ")


def _texts(column: Column) -> list[str]:
    """Cells as str ("" for missing ones); other cells raise, naming column and row."""
    texts: list[str] = []
    for i, cell in enumerate(column.cells):
        if isinstance(cell, str):
            if not cell.isascii():  # lone surrogates cannot reach TensorFlow
                try:
                    cell.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise InputError(
                        f"{column.where(i)}: text holds {exc.object[exc.start]!r} at position "
                        f"{exc.start}, which is not valid Unicode; expected UTF-8 encodable text"
                    ) from exc
            texts.append(cell)
        elif isinstance(cell, (bytes, bytearray, memoryview)):
            try:
                texts.append(bytes(cell).decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"{column.where(i)}: bytes are not valid UTF-8 ({exc.reason} at byte "
                    f"{exc.start}); expected UTF-8 text, a str, or None/NaN for a missing text"
                ) from exc
        elif is_missing(cell):
            texts.append("")
        else:
            raise InputTypeError(
                f"{column.where(i)}: expected a str (or UTF-8 bytes), or None/NaN for a missing "
                f"text. Received: {type(cell).__name__} {reprlib.repr(cell)}"
            )
    return texts
