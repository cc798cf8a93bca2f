"""scikit-learn's estimator checks over both estimators.

Every check runs on a real 5-epoch Keras model.  The table lists the checks
that cannot pass for a minibatch-trained float32 network, with the reason.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from mmsk.models import MultimodalClassifier, MultimodalRegressor

SAMPLE_WEIGHT_REASON = (
    "a weight of 2 is not the same as a repeated row for minibatch SGD: the repeated "
    "row changes the number of steps per epoch and which rows share a minibatch"
)
FLOAT32_REASON = (
    "float32 matrix products are blocked differently for different batch sizes, so "
    "continuous predictions of a subset differ from the full batch by ~1e-6 relative; "
    "the check demands 1e-7"
)
KWARGS_REASON = (
    "**kwargs carries scikeras-style routed settings (model__units=..., fit__shuffle=...); "
    "the check passes a parameter literally named 'kwargs', which is neither a parameter "
    "nor a routed setting, so __init__ and set_params refuse it as they refuse any typo"
)


def expected_failures(estimator):
    # predict_proba and transform are float32 too; they may pass by luck (xfail is not strict).
    return {
        "check_sample_weight_equivalence_on_dense_data": SAMPLE_WEIGHT_REASON,
        "check_methods_subset_invariance": FLOAT32_REASON,
        "check_methods_sample_order_invariance": FLOAT32_REASON,  # rows in another order
        "check_do_not_raise_errors_in_init_or_set_params": KWARGS_REASON,
    }


ESTIMATORS = [
    MultimodalClassifier(epochs=5, learning_rate=0.01, random_state=0),
    MultimodalRegressor(epochs=5, learning_rate=0.01, random_state=0),
]


@pytest.mark.slow
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
