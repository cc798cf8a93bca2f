"""mmsk: scikit-learn estimators for multimodal deep learning on Keras 3.

``import mmsk`` is light: TensorFlow and Keras load the first time a model is
built or a transformer needs them.

Examples
--------
>>> import mmsk
>>> sorted(mmsk.infer_modalities(__import__("pandas").DataFrame({"n": [1.0]})).items())
[('n', 'numeric')]
"""

from __future__ import annotations

import importlib
from typing import Any

from mmsk._batch import ModalityBatch, ModalitySpec
from mmsk._infer import infer_modalities

__version__ = "0.1.0.dev0"

# name -> module that defines it; imported on first attribute access.
_LAZY = {
    "MultimodalClassifier": "mmsk.models",
    "MultimodalRegressor": "mmsk.models",
    "ModalityPreprocessor": "mmsk.preprocessing",
    "ImagePreprocessor": "mmsk.preprocessing",
    "TextVectorizer": "mmsk.preprocessing",
    "AudioFeaturizer": "mmsk.preprocessing",
    "KerasTunerSearchCV": "mmsk.tuning",
    "save": "mmsk._persist",
    "load": "mmsk._persist",
    "get_untrusted_types": "mmsk._persist",
    "export": "mmsk._export",
    "get_config": "mmsk._config",
    "set_config": "mmsk._config",
    "config_context": "mmsk._config",
}
_SUBMODULES = {
    "testing",
    "components",
    "datasets",
    "exceptions",
    "layers",
    "models",
    "plugins",
    "preprocessing",
    "tuning",
    "widgets",
}

__all__ = ["ModalityBatch", "ModalitySpec", "__version__", "infer_modalities", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"mmsk.{name}")
    raise AttributeError(f"module 'mmsk' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBMODULES})
