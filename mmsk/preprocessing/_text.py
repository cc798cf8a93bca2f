"""Text column -> padded int32 token ids: :class:`TextVectorizer`."""

from __future__ import annotations

import functools
import math
import reprlib
import weakref
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from mmsk import _backend
from mmsk._batch import ModalitySpec
from mmsk._infer import is_missing
from mmsk.exceptions import DecodeError, InputError, InputTypeError, ParameterError
from mmsk.preprocessing._column import Column, as_column, check_not_empty
from mmsk.preprocessing._single import OneColumnTransformer

if TYPE_CHECKING:
    from typing_extensions import Self

_CHUNK = 8192  # rows per call of the Keras layer
_STANDARDIZE = ("lower_and_split_punctuation", "lower_and_strip_punctuation", "lower",
                "strip_punctuation")  # fmt: skip
_PLACEHOLDER = "\x00[mmsk-empty]"  # lets a layer with no learned token be built
# vectorizer -> (its vocabulary_ when compiled, compiled layer): transform writes no state
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
CHAR_NGRAMS = (2, 5)  # character n-gram lengths of ``char_ngrams="auto"``
CHAR_AUTO_WORDS = 32  # "auto" adds character n-grams to texts of at most this many words


class TextVectorizer(OneColumnTransformer):
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
        Tokens per row. None picks the 99th percentile of the training texts'
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
        Upper bound of the length chosen when ``sequence_length=None`` (for
        the word ids, and for the character n-gram ids on their own).
    char_ngrams : (int, int), "auto" or None, default=None
        Also give the ids of the text's character n-grams of these lengths
        (from, to), after the word ids of each row, in a vocabulary of their
        own (``char_vocabulary_``, at most ``max_tokens``).  The text is
        lower-cased, punctuation becomes a space and it is padded with a
        space at each end, so ``" ar"`` marks a word starting with "ar".
        Such n-grams let a linear model read words it never saw
        (``"libfoo3-dev"``): mmsk's networks feed them to their wide path.
        ``"auto"`` uses (2, 5) for short texts (at most 32 words in
        ``sequence_length_``: names, titles, one-line descriptions) and none
        for longer ones; it is what mmsk's estimators use for a text column.
        None gives the word ids alone.  Ignored with ``split="character"``.

    Attributes
    ----------
    vocabulary_ : list of str
        Tokens by id: ``vocabulary_[0] == ""`` (padding), ``vocabulary_[1] == "[UNK]"``.
    vocabulary_size_ : int
        ``len(vocabulary_)``.
    sequence_length_ : int
        Word ids per row (the first columns of the output of ``transform``).
    char_vocabulary_ : list of str
        Character n-grams by id (padding and out-of-vocabulary first, as for
        the words); empty without character n-grams.
    char_vocabulary_size_ : int
        ``len(char_vocabulary_)``.
    char_sequence_length_ : int
        Character n-gram ids per row, after the word ids (0 without them).
    spec_ : ModalitySpec
        ``ModalitySpec("text", (sequence_length_ + char_sequence_length_,), "int32",
        vocabulary_size=vocabulary_size_, char_columns=char_sequence_length_,
        char_vocabulary_size=char_vocabulary_size_)``.
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

    With character n-grams, their ids follow the words':

    >>> vec = TextVectorizer(sequence_length=2, char_ngrams=(2, 3)).fit(["ab", "abc"])
    >>> vec.char_vocabulary_[:5]  # Keras joins an n-gram's characters with spaces
    ['', '[UNK]', 'a b', '  a b', '  a']
    >>> vec.transform(["ab"])  # 2 word ids, then " a", "ab", "b ", " ab", "ab "
    array([[ 3,  0,  4,  2,  8,  3, 10,  0,  0]], dtype=int32)
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
        "char_ngrams": [tuple, StrOptions({"auto"}), None],
    }

    def __init__(
        self,
        max_tokens: int | None = 20000,
        sequence_length: int | None = None,
        standardize: str | None = "lower_and_split_punctuation",
        split: str = "whitespace",
        ngrams: int | tuple[int, ...] | None = None,
        max_sequence_length: int = 512,
        char_ngrams: tuple[int, int] | str | None = None,
    ) -> None:
        self.max_tokens = max_tokens
        self.sequence_length = sequence_length
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self.max_sequence_length = max_sequence_length
        self.char_ngrams = char_ngrams

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("char_ngrams", None)  # pickled before character n-grams existed
        super().__setstate__(state)

    _unnamed = "text"

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> Self:
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
            raise ParameterError(
                "Expected ngrams to be None, a positive int or a non-empty tuple of positive "
                f"ints. Received: ngrams={ngrams!r}"
            )
        chars = self.char_ngrams
        if isinstance(chars, tuple) and not (
            len(chars) == 2 and all(isinstance(n, Integral) and n >= 1 for n in chars)
            and chars[0] <= chars[1]
        ):  # fmt: skip
            raise ParameterError(
                "Expected char_ngrams to be None, 'auto' or a pair (from, to) of positive ints "
                f"with from <= to. Received: char_ngrams={chars!r}"
            )
        column = as_column(X, "TextVectorizer")
        check_not_empty(column, "TextVectorizer")
        self._fit_column(X, column)
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
        else:  # 99th percentile of the token counts each text gives (n-grams included)
            cap = int(self.max_sequence_length)
            widths = self._widths()
            words = self._count(self._clip(texts, cap + widths[0]))
            counts = sum(np.maximum(words - n + 1, 0) for n in widths)
            self.sequence_length_ = min(cap, max(1, math.ceil(np.percentile(counts, 99))))
        self._fit_chars(texts)
        self.spec_ = ModalitySpec(
            "text",
            (self.sequence_length_ + self.char_sequence_length_,),
            "int32",
            vocabulary_size=self.vocabulary_size_,
            char_columns=self.char_sequence_length_,
            char_vocabulary_size=self.char_vocabulary_size_,
        )
        return self

    def _char_widths(self) -> tuple[int, ...]:
        """The character n-gram lengths used (none when off, or chosen off by "auto")."""
        chars = self._setting("char_ngrams")
        if chars is None or self._setting("split") == "character":
            return ()
        if chars == "auto":
            if self.sequence_length_ > CHAR_AUTO_WORDS:
                return ()
            chars = CHAR_NGRAMS
        return tuple(range(int(chars[0]), int(chars[1]) + 1))

    def _fit_chars(self, texts: list[str]) -> None:
        """Learn the character n-grams' vocabulary and ids per row (after the words)."""
        self.char_vocabulary_, self.char_vocabulary_size_, self.char_sequence_length_ = [], 0, 0
        widths = self._char_widths()
        if not widths:
            return
        tf = _backend.tf()
        cap = int(self.max_sequence_length)
        texts = [t[: cap + 1] for t in texts]  # more characters make more ids than kept
        layer = _char_layer(widths, max_tokens=self.max_tokens)
        layer.adapt(
            tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)).batch(_CHUNK)
        )
        self.char_vocabulary_ = [str(t) for t in layer.get_vocabulary()]
        self.char_vocabulary_size_ = len(self.char_vocabulary_)
        lengths = [len(t) + 2 for t in texts if t]  # the padded texts, by characters
        counts = [sum(max(n - w + 1, 0) for w in widths) for n in lengths] or [1]
        self.char_sequence_length_ = min(cap, max(1, math.ceil(np.percentile(counts, 99))))

    def char_keras_layer(self) -> Any:
        """A new ``keras.layers.TextVectorization`` giving the character n-gram ids of
        :meth:`transform` (the columns after the word ids), or None without them.

        Examples
        --------
        >>> vec = TextVectorizer(char_ngrams=(2, 2)).fit(["ab"])
        >>> vec.char_vocabulary_  # " a", "ab", "b " (characters joined with spaces)
        ['', '[UNK]', 'b  ', 'a b', '  a']
        >>> vec.char_keras_layer()(["ab", "ax"]).numpy().tolist()
        [[4, 3, 2], [4, 1, 1]]
        """
        check_is_fitted(self)
        if not getattr(self, "char_sequence_length_", 0):
            return None
        vocab = self.char_vocabulary_ if self.char_vocabulary_size_ > 2 else [_PLACEHOLDER]
        return _char_layer(self._char_widths(), vocabulary=vocab,
                           output_sequence_length=self.char_sequence_length_)  # fmt: skip

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
        length, chars = self.sequence_length_, getattr(self, "char_sequence_length_", 0)
        raw = _texts(column)
        texts = self._clip(raw, length + self._widths()[0])
        tf = _backend.tf()
        entry = _COMPILED.get(self)
        if entry is None or entry[0] is not self.vocabulary_:  # first call, or refitted
            # Compiled once: eager string ops cost ~10 ms a call, the graph ~1 ms.
            signature = [tf.TensorSpec([None], tf.string)]
            call = tf.function(self.keras_layer(), input_signature=signature)
            char_call = None
            if chars:
                char_call = tf.function(self.char_keras_layer(), input_signature=signature)
            entry = _COMPILED[self] = (self.vocabulary_, call, char_call)
        out = np.zeros((len(texts), length + chars), dtype=np.int32)
        # The first `chars` n-grams (the shortest come first) need that many characters.
        cut = [t[: chars + 1] for t in raw] if chars else []
        word_call, char_call = entry[1], entry[2]
        for start in range(0, len(texts), _CHUNK):
            chunk = tf.constant(texts[start : start + _CHUNK], tf.string)
            out[start : start + _CHUNK, :length] = word_call(chunk).numpy()
            if char_call is not None:
                chunk = tf.constant(cut[start : start + _CHUNK], tf.string)
                out[start : start + _CHUNK, length:] = char_call(chunk).numpy()
        if self.vocabulary_size_ <= 2:  # nothing learned: the placeholder's id is OOV too
            out[:, :length][out[:, :length] >= self.vocabulary_size_] = 1
        if chars and self.char_vocabulary_size_ <= 2:
            out[:, length:][out[:, length:] >= self.char_vocabulary_size_] = 1
        return out

    def keras_layer(self) -> Any:
        """A new ``keras.layers.TextVectorization`` holding the fitted vocabulary and length.

        What :meth:`transform` runs, usable in a Keras model or a
        ``tf.function``; :func:`mmsk.export` builds its text input with it.
        With nothing learned in ``fit`` (only padding and out-of-vocabulary
        ids), it holds a placeholder token that :meth:`transform` maps to the
        out-of-vocabulary id 1.

        Examples
        --------
        >>> vec = TextVectorizer(sequence_length=3).fit(["a red bus", "a dog"])
        >>> vec.keras_layer()(["a red cat"]).numpy().tolist()
        [[2, 3, 1]]
        """
        check_is_fitted(self)
        vocab = self.vocabulary_ if self.vocabulary_size_ > 2 else [_PLACEHOLDER]
        return self._new_layer(vocabulary=vocab, output_sequence_length=self.sequence_length_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Return ``["<col>_tok0", ..., "<col>_tok{L-1}"]`` (col is "text" when unnamed),
        then ``"<col>_char0", ...`` for the character n-gram ids.

        ``input_features``, if given, must be the one column seen in ``fit``.
        """
        col = self._output_prefix(input_features)
        names = [f"{col}_tok{i}" for i in range(self.sequence_length_)]
        names += [f"{col}_char{i}" for i in range(getattr(self, "char_sequence_length_", 0))]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.one_d_array = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True  # NaN/None cells are missing texts
        tags.transformer_tags.preserves_dtype = []  # always int32
        return tags

    # -- helpers -----------------------------------------------------------------
    def _ngrams(self) -> int | tuple[int, ...] | None:
        ngrams = self._setting("ngrams")
        if isinstance(ngrams, tuple):
            return tuple(map(int, ngrams))
        return int(ngrams) if isinstance(ngrams, Integral) else None

    def _widths(self) -> tuple[int, ...]:
        """The n-gram lengths the layer makes."""
        ngrams = self._ngrams()
        return tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams or (1,)

    def _new_layer(self, **kwargs: Any) -> Any:
        return _layer(self._setting("standardize"), self._setting("split"), self._ngrams(),
                      **kwargs)  # fmt: skip

    def _count(self, texts: list[str]) -> np.ndarray:
        """Number of unigram tokens in each text, as the layer splits them."""
        counter = _counter(self._setting("standardize"), self._setting("split"))
        tf = _backend.tf()
        counts = [
            counter(tf.constant(texts[s : s + _CHUNK], tf.string)).row_lengths().numpy()
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


def _layer(standardize: str | None, split: str, ngrams: Any, **kwargs: Any) -> Any:
    """A ``TextVectorization`` layer with these settings (``kwargs`` override)."""
    keras = _backend.keras()
    how: Any = standardize
    if standardize == "lower_and_split_punctuation":
        # Characters: punctuation is dropped, as a space would be a token of its own.
        how = (
            _lower_and_split_punctuation
            if split == "whitespace"
            else "lower_and_strip_punctuation"
        )
    settings = dict(standardize=how, split=split, ngrams=ngrams, output_mode="int")
    return keras.layers.TextVectorization(**{**settings, **kwargs})


def _char_layer(widths: tuple[int, ...], **kwargs: Any) -> Any:
    """A ``TextVectorization`` layer giving the character n-grams of these lengths."""
    keras = _backend.keras()
    settings = dict(standardize=_pad_words, split="character", ngrams=widths,
                    output_mode="int")  # fmt: skip
    return keras.layers.TextVectorization(**{**settings, **kwargs})


def _pad_words(texts: Any) -> Any:
    """Lower-case, punctuation to spaces, and a space at each end of a non-empty text."""
    tf = _backend.tf()
    return tf.strings.regex_replace(_lower_and_split_punctuation(texts), r"(?s)^(.+)$", r" \1 ")


@functools.lru_cache(maxsize=8)
def _counter(standardize: str | None, split: str) -> Any:
    """A layer splitting texts into unigrams as the vectorizer does, to count them."""
    return _layer(standardize, split, None, ragged=True, vocabulary=[_PLACEHOLDER])


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
