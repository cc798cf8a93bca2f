"""Rebuild ``mmsk/datasets/data/icons.npz``: desktop icons, their names and their contexts.

Not imported by mmsk; run it by hand to check or refresh the shipped file::

    apt-get install papirus-icon-theme librsvg2-bin
        # Debian 12: papirus-icon-theme 20230104-2, librsvg2-bin 2.54.7+dfsg-1~deb12u2
    pip install "numpy>=2" "pillow>=10"
    python mmsk/datasets/_build/build_icons.py [--out PATH] [--theme DIR]

Source: the Papirus icon theme (GPL-3.0; Debian package ``papirus-icon-theme``),
installed under ``/usr/share/icons/Papirus``.  Every icon is an SVG file in a
folder named after its *context* (the freedeskt.org Icon Theme Specification's
``Context``: actions, apps, devices, emblems, mimetypes, places, status).

How the table is made:

1. For each context, every real SVG file (symbolic links are aliases of other
   icons and are skipped, as are ``*-symbolic`` monochrome variants) is taken
   once per name, from the first size folder that has it in the order
   48x48, 64x64, 32x32, 24x24, 22x22, 16x16.
2. Each is rasterised with ``rsvg-convert`` to 32x32 RGBA and composited on
   white, giving uint8 RGB.
3. Pictures drawn identically under several names are kept once (first name
   in sorted order); a picture found in two contexts is dropped.
4. At most ``CAP`` icons per context are kept, drawn with
   ``numpy.random.default_rng(SEED)`` from the sorted names.

The icon name becomes the text column: ``folder-blue-documents`` ->
``folder blue documents`` (``-``, ``_``, ``.``, ``+`` become spaces).
The output is deterministic for a given theme version.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _npz import save_npz  # this folder is sys.path[0] when run as a script
from PIL import Image

SEED = 20240605
SIZE = 32
CAP = 300
CONTEXTS = ("actions", "apps", "devices", "emblems", "mimetypes", "places", "status")
SIZE_FOLDERS = ("48x48", "64x64", "32x32", "24x24", "22x22", "16x16")
THEME = Path("/usr/share/icons/Papirus")
OUT = Path(__file__).resolve().parents[1] / "data" / "icons.npz"


def find_icons(theme: Path) -> list[tuple[str, str, Path]]:
    """(context, name, svg path) of every real, non-symbolic icon, one per name."""
    found: dict[tuple[str, str], Path] = {}
    for size in SIZE_FOLDERS:
        for context in CONTEXTS:
            folder = theme / size / context
            if not folder.is_dir() or folder.is_symlink():
                continue
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                name = entry.name[:-4]
                if (
                    entry.name.endswith(".svg")
                    and not entry.is_symlink()
                    and not name.endswith("-symbolic")
                ):
                    found.setdefault((context, name), Path(entry.path))
    return [(c, n, p) for (c, n), p in sorted(found.items())]


def rasterise(svg: Path) -> np.ndarray:
    """SVG -> (SIZE, SIZE, 3) uint8 RGB on white."""
    png = subprocess.run(
        ["rsvg-convert", "-w", str(SIZE), "-h", str(SIZE), "-f", "png", str(svg)],
        check=True,
        capture_output=True,
    ).stdout
    rgba = Image.open(io.BytesIO(png)).convert("RGBA")
    if rgba.size != (SIZE, SIZE):
        rgba = rgba.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)


def words(name: str) -> str:
    """``org.gnome.Maps`` -> ``org gnome Maps``."""
    return re.sub(r"[-_.+\s]+", " ", name).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--theme", type=Path, default=THEME)
    args = parser.parse_args()

    icons = find_icons(args.theme)
    if not icons:
        raise SystemExit(f"no icons under {args.theme}; apt-get install papirus-icon-theme")
    with ThreadPoolExecutor(4) as pool:
        pictures = list(pool.map(rasterise, [p for _, _, p in icons]))

    # one row per distinct picture; a picture in two contexts is ambiguous: drop it
    first: dict[str, int] = {}
    contexts_of: dict[str, set[str]] = {}
    for i, ((context, _, _), pic) in enumerate(zip(icons, pictures, strict=True)):
        key = hashlib.sha1(pic.tobytes()).hexdigest()
        first.setdefault(key, i)
        contexts_of.setdefault(key, set()).add(context)
    unique = sorted(i for key, i in first.items() if len(contexts_of[key]) == 1)

    rng = np.random.default_rng(SEED)
    keep: list[int] = []
    for context in CONTEXTS:
        rows = [i for i in unique if icons[i][0] == context]
        if len(rows) > CAP:
            rows = sorted(rng.choice(rows, CAP, replace=False).tolist())
        keep += rows
    images = np.stack([pictures[i] for i in keep])
    target = np.array([CONTEXTS.index(icons[i][0]) for i in keep], dtype=np.uint8)
    names = np.array([icons[i][1] for i in keep])
    source = np.array([str(icons[i][2].relative_to(args.theme)) for i in keep])
    save_npz(
        args.out,
        {
            "images": images,
            "target": target,
            "icon_names": names,
            "text": np.array([words(n) for n in names]),
            "source_files": source,
            "target_names": np.array(CONTEXTS),
        },
    )
    per_context = np.bincount(target, minlength=len(CONTEXTS)).tolist()
    counts = dict(zip(CONTEXTS, per_context, strict=True))
    size = args.out.stat().st_size / 1e6
    print(
        f"wrote {args.out} ({size:.2f} MB): {len(keep)} icons of {len(icons)} found; "
        f"per context {counts}"
    )


if __name__ == "__main__":
    main()
