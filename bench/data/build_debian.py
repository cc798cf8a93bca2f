"""Build ``debian.csv.gz``: a seeded sample of the Debian package catalogue.

Reads ``apt-cache dumpavail`` (the ``Packages`` index of the apt sources
configured on this machine: Debian 12 "bookworm", ``main``, amd64) and keeps,
per package: its name, its one-line description (the long descriptions live
in translation files that are not downloaded), section, priority,
architecture, multi-arch, installed size (KiB) and the number of packages
named in Depends, Pre-Depends, Recommends, Suggests and Provides.

The file holds a seeded sample of 12,000 packages (uniform over the
catalogue), so the benchmark never depends on the state of apt.  Run from the
repository root::

    python bench/data/build_debian.py
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).with_name("debian.csv.gz")
N_ROWS = 12_000
SEED = 20261202
_RELATIONS = ("Depends", "Pre-Depends", "Recommends", "Suggests", "Provides")


def _count(relation: str) -> int:
    """Packages named in a relation field (alternatives ``a | b`` count once)."""
    return len([p for p in relation.split(",") if p.strip()]) if relation else 0


def parse(text: str) -> pd.DataFrame:
    """One row per stanza of a ``Packages`` index."""
    rows = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" not in fields or "Installed-Size" not in fields:
            continue
        row = {
            "package": fields["Package"],
            "summary": fields.get("Description", ""),
            "section": fields.get("Section", "").split("/")[-1],
            "priority": fields.get("Priority", "optional"),
            "architecture": fields.get("Architecture", ""),
            "multi_arch": fields.get("Multi-Arch", "no"),
            "installed_size_kib": int(fields["Installed-Size"]),
        }
        for rel in _RELATIONS:
            row["n_" + rel.lower().replace("-", "_")] = _count(fields.get(rel, ""))
        rows.append(row)
    return pd.DataFrame(rows).drop_duplicates("package").reset_index(drop=True)


def main() -> None:
    text = subprocess.run(
        ["apt-cache", "dumpavail"], check=True, capture_output=True, text=True
    ).stdout
    frame = parse(text)
    print(f"{len(frame)} packages in the catalogue")
    rng = np.random.default_rng(SEED)
    keep = np.sort(rng.choice(len(frame), size=min(N_ROWS, len(frame)), replace=False))
    sample = frame.iloc[keep].reset_index(drop=True)
    sample.to_csv(OUT, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB, {len(sample)} rows)")
    print(sample["section"].value_counts().head(12).to_string())


if __name__ == "__main__":
    main()
