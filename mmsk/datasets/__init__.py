"""Small real multimodal data sets that ship with mmsk, loaded like scikit-learn's.

Each loader returns a :class:`sklearn.utils.Bunch` with ``data``, ``target``,
``frame``, ``target_names`` and ``DESCR`` (source, licence, how it was made).

- :func:`load_av_digits`: handwritten digit images + spoken digit audio -> digit.
- :func:`load_icons`: icon pictures + icon names (text) -> icon context.

Importing this package imports neither TensorFlow nor the data; a loader
reads its bundled file when called.  The scripts that rebuild the files from
their public sources are in ``mmsk/datasets/_build/``.
"""

from mmsk.datasets._av_digits import load_av_digits
from mmsk.datasets._base import clear_data_home, get_data_home
from mmsk.datasets._icons import load_icons

__all__ = ["clear_data_home", "get_data_home", "load_av_digits", "load_icons"]
