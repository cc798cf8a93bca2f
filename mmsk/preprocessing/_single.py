"""The base of the transformers of one column: images, text and audio."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from mmsk._validation import ParamsMixin
from mmsk.exceptions import InputError
from mmsk.preprocessing._column import Column


class OneColumnTransformer(ParamsMixin, TransformerMixin, BaseEstimator):
    """Shared contract of :class:`ImagePreprocessor`, :class:`TextVectorizer` and
    :class:`AudioFeaturizer`.

    - ``fit`` records ``n_features_in_`` (1) and, when the column has a name
      (a one-column DataFrame or a named Series), ``feature_names_in_``, as
      scikit-learn does for a table;
    - it freezes the settings it was fitted with: ``transform`` reads them
      through :meth:`_setting`, so ``set_params`` without a refit cannot put
      ``transform`` out of step with the learned state (``spec_``);
    - :meth:`_output_prefix` checks ``input_features`` of
      ``get_feature_names_out`` against the column seen in ``fit``;
    - ``transform`` writes nothing on the instance.
    """

    _unnamed: ClassVar[str] = "X"  # prefix of output names after a fit on an unnamed column

    def _fit_column(self, X: Any, column: Column) -> None:
        """Record the input column's name and freeze the settings (call at the start of fit)."""
        self._settings = self.get_params(deep=False)
        self.n_features_in_ = 1
        if isinstance(X, pd.DataFrame) or (isinstance(X, pd.Series) and X.name is not None):
            self.feature_names_in_ = np.asarray([column.name], dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)  # a refit without a name

    def _setting(self, name: str) -> Any:
        """A setting as it was when fitted (the current one before the first fit)."""
        frozen = self.__dict__.get("_settings", {})
        return frozen[name] if name in frozen else getattr(self, name)

    def _output_prefix(self, input_features: Iterable[Any] | None) -> str:
        """The input column's name for ``get_feature_names_out``, ``input_features`` checked."""
        check_is_fitted(self, "spec_")
        fitted = getattr(self, "feature_names_in_", None)
        if input_features is None:
            return self._unnamed if fitted is None else str(fitted[0])
        names = [str(f) for f in input_features]
        if len(names) != 1 or (fitted is not None and names[0] != fitted[0]):
            seen = "an unnamed column" if fitted is None else repr(str(fitted[0]))
            raise InputError(
                f"Expected input_features to be the one column seen in fit ({seen}). "
                f"Received: {names}"
            )
        return names[0]
