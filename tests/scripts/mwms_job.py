"""One worker of a two-worker MultiWorkerMirroredStrategy fit (TF_CONFIG set by the test)."""

from __future__ import annotations

import json
import sys

import numpy as np

from mmsk import MultimodalClassifier


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = MultimodalClassifier(epochs=3, batch_size=16, head_units=8,
                               distribution="multi_worker", random_state=0)  # fmt: skip
    clf.fit(X, y)
    weights = [w.ravel().tolist() for w in clf.model_.get_weights()]
    with open(sys.argv[1], "w") as fh:
        json.dump({"weights": weights, "loss": clf.history_["loss"],
                   "accuracy": float(clf.score(X, y))}, fh)  # fmt: skip


if __name__ == "__main__":
    main()
