"""Preprocessing transformers: raw columns -> arrays, and a table -> :class:`~mmsk.ModalityBatch`.

Importing this package does not import TensorFlow; transformers load it when
they first need it.
"""

from mmsk.preprocessing._audio import AudioFeaturizer
from mmsk.preprocessing._image import ImagePreprocessor
from mmsk.preprocessing._modality import ModalityPreprocessor
from mmsk.preprocessing._text import TextVectorizer

__all__ = ["AudioFeaturizer", "ImagePreprocessor", "ModalityPreprocessor", "TextVectorizer"]
