"""Public conformance checks for plugin authors: ``check_encoder`` and ``check_fusion``.

Run them in your plugin's tests, as scikit-learn's ``check_estimator`` is run for
estimators::

    from mmsk.testing import check_encoder
    from my_plugin import MyEncoder

    def test_contract():
        check_encoder(MyEncoder())
"""

from mmsk.exceptions import PluginContractError
from mmsk.testing._checks import check_encoder, check_fusion

__all__ = ["PluginContractError", "check_encoder", "check_fusion"]
