"""The bag-of-n-grams text encoder (``"bag"``), the deep twin of TF-IDF + a linear model."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

from sklearn.utils._param_validation import Interval

from mmsk import _backend
from mmsk._batch import ModalitySpec
from mmsk.components._base import Encoder


class BagEncoder(Encoder):
    """A learned bag of word n-grams: the mean embedding of a text's tokens and n-grams.

    Token ids (from :class:`~mmsk.preprocessing.TextVectorizer`) are extended
    in the model with hashed ids of every run of up to ``ngrams`` adjacent
    tokens (fastText's trick), embedded, and averaged over the non-padding
    ids.  Word order beyond ``ngrams`` is ignored, which is what makes it
    strong and fast on short text (names, titles, descriptions): it learns
    what TF-IDF n-grams and a linear model learn, end to end with the rest of
    the network.

    Parameters
    ----------
    embedding_dim : int, default=64
        Width of the token and n-gram embeddings (and of the encoding).
    ngrams : int, default=2
        Longest word n-gram (1: a bag of words).
    buckets : int or None, default=None
        Hash buckets of the n-grams; None uses twice the vocabulary size,
        between 1,024 and 65,536.
    dropout : float, default=0.0
        Dropout on the pooled encoding.

    Examples
    --------
    >>> BagEncoder(ngrams=3).get_params()
    {'buckets': None, 'dropout': 0.0, 'embedding_dim': 64, 'ngrams': 3}
    """

    kinds: ClassVar[tuple[str, ...]] = ("text",)
    _parameter_constraints: ClassVar[dict] = {
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "ngrams": [Interval(Integral, 1, None, closed="left")],
        "buckets": [Interval(Integral, 1, None, closed="left"), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self, embedding_dim: int = 64, ngrams: int = 2, buckets: int | None = None,
        dropout: float = 0.0,
    ) -> None:  # fmt: skip
        self.embedding_dim = embedding_dim
        self.ngrams = ngrams
        self.buckets = buckets
        self.dropout = dropout

    def n_buckets(self, spec: ModalitySpec) -> int:
        """The number of hash buckets used for a text of this spec."""
        if self.buckets is not None:
            return int(self.buckets)
        return int(min(max(2 * (spec.vocabulary_size or 0), 1024), 65536))

    def encode(self, x: Any, spec: ModalitySpec, *, sequence: bool, name: str) -> tuple[Any, Any]:
        keras = _backend.keras()
        from mmsk.layers import HashedNgrams, MaskedMeanPool, TokenMask

        if not spec.vocabulary_size:
            raise ValueError(f"a text encoder needs token ids with a vocabulary size; got {spec}")
        L = keras.layers
        buckets = self.n_buckets(spec) if self.ngrams > 1 else 1
        ids = HashedNgrams(spec.vocabulary_size, buckets, int(self.ngrams),
                           name=f"{name}_ngrams")(x)  # fmt: skip
        mask = TokenMask(name=f"{name}_mask")(ids)
        h = L.Embedding(spec.vocabulary_size + buckets, self.embedding_dim,
                        name=f"{name}_embed")(ids)  # fmt: skip
        if sequence:
            return h, mask
        h = MaskedMeanPool(name=f"{name}_pool")(h, mask=mask)
        if self.dropout:
            h = L.Dropout(self.dropout, name=f"{name}_drop")(h)
        return h, None
