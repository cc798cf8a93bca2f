"""mmsk-keras-apps: the ``keras_app`` image encoder for mmsk, on keras.applications backbones.

Installing this package is all it takes: mmsk finds the encoder through the
``mmsk.encoders`` entry point, so ``encoders={"image": "keras_app"}`` works in
any mmsk estimator.
"""

from mmsk_keras_apps._backbones import BACKBONES, PretrainedWeightsError
from mmsk_keras_apps._encoder import KerasAppEncoder

__version__ = "0.1.0"

__all__ = ["BACKBONES", "KerasAppEncoder", "PretrainedWeightsError", "__version__"]
