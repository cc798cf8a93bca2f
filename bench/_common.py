"""What both benchmark scripts print first: package versions and the machine's load."""

from __future__ import annotations

import os
import platform


def load_warning() -> str:
    """The 1-minute load average, with a warning when other processes use the CPUs."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:
        return (
            f"WARNING: load average {load:.1f} before the run: other processes are using "
            "the CPUs, timings are noisy"
        )
    return f"load average {load:.1f} before the run"


def versions() -> str:
    """Python, mmsk, TensorFlow, Keras, scikit-learn, Pillow and NumPy versions, and cores."""
    import keras
    import numpy as np
    import PIL
    import sklearn
    import tensorflow as tf

    import mmsk

    return (
        f"python {platform.python_version()}, mmsk {mmsk.__version__}, "
        f"tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"scikit-learn {sklearn.__version__}, pillow {PIL.__version__}, "
        f"numpy {np.__version__}; {os.cpu_count()} CPU cores"
    )
