"""``python -m mmsk demo``: fit mmsk on bundled data and compare fusions (placeholder until
the bundled data sets land; see issue 4)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(commands: Any) -> None:
    """Register the ``demo`` sub-command."""
    p = commands.add_parser("demo", help="train and compare models on bundled data")
    p.add_argument("--epochs", type=int, default=5)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Fit a small classifier on a synthetic table and print its accuracy."""
    import numpy as np
    import pandas as pd

    import mmsk

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    X = pd.DataFrame(
        {"note": np.where(y == 1, "good value", "poor value"), "x": rng.normal(size=80) + y}
    )
    clf = mmsk.MultimodalClassifier(epochs=args.epochs, random_state=0).fit(X, y)
    print(f"accuracy: {clf.score(X, y):.3f}")
    return 0
