"""Build ``glyphs.npz``: characters of the DejaVu fonts, rendered, with their Unicode names.

Every character that DejaVu Sans maps (fontTools reads the font's cmap) and
that has a Unicode name is a candidate, except code points from U+1F000 up
(emoticons and other pictographs: emoji data is kept out of this
benchmark); its general category (``Lu``, ``Ll``, ``So``, ...) is the
target.  The 11 categories with at least 60
characters are kept, up to 320 characters each, drawn with a fixed seed.
Each character is drawn by PIL in one of the DejaVu faces installed on this
machine that maps it (drawn per row: Sans, Serif, Mono, bold, oblique,
condensed, ...), black on white, 28 px, centred in a 32x32 greyscale image.

Columns: ``glyph`` (uint8 32x32), ``name`` (the Unicode name in lower case),
``font`` (the face's name), ``category`` (target).  Fonts: DejaVu (Debian
packages ``fonts-dejavu-core`` and ``fonts-dejavu-extra``), Bitstream Vera
licence with DejaVu changes in the public domain.  Run from the repository
root::

    python bench/data/build_glyphs.py
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).with_name("glyphs.npz")
FONTS = Path("/usr/share/fonts/truetype/dejavu")
SEED = 20261202
SIDE = 32
PER_CLASS = 320
MIN_CLASS = 60
EMOJI_PLANE_START = 0x1F000  # mahjong, cards, emoticons, pictographs...


def render(char: str, font: ImageFont.FreeTypeFont) -> np.ndarray:
    """The character centred on a white SIDE x SIDE canvas (shrunk if it overflows)."""
    canvas = Image.new("L", (SIDE * 3, SIDE * 3), 255)
    ImageDraw.Draw(canvas).text((SIDE * 1.5, SIDE * 1.5), char, font=font, fill=0, anchor="mm")
    box = Image.eval(canvas, lambda v: 255 - v).getbbox()
    if box is None:  # draws nothing (a space or a format character)
        return np.full((SIDE, SIDE), 255, np.uint8)
    w, h = box[2] - box[0], box[3] - box[1]
    crop = canvas.crop(box)
    if max(w, h) > SIDE - 2:
        scale = (SIDE - 2) / max(w, h)
        crop = crop.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    out = Image.new("L", (SIDE, SIDE), 255)
    out.paste(crop, ((SIDE - crop.width) // 2, (SIDE - crop.height) // 2))
    return np.asarray(out, np.uint8)


def main() -> None:
    faces = sorted(p for p in FONTS.glob("DejaVu*.ttf") if "Math" not in p.name)
    cmaps = {p: set(TTFont(p).getBestCmap()) for p in faces}
    candidates = []
    for cp in sorted(cmaps[FONTS / "DejaVuSans.ttf"]):
        char = chr(cp)
        name = unicodedata.name(char, "")
        if cp >= EMOJI_PLANE_START:  # emoji-like pictographs are kept out of this benchmark
            continue
        if name and not unicodedata.category(char).startswith(("C", "Z")):
            candidates.append((cp, name, unicodedata.category(char)))
    cats = [c for _, _, c in candidates]
    kept = sorted(c for c in set(cats) if cats.count(c) >= MIN_CLASS)
    rng = np.random.default_rng(SEED)
    rows = []
    for cat in kept:
        members = [r for r in candidates if r[2] == cat]
        pick = rng.choice(len(members), size=min(PER_CLASS, len(members)), replace=False)
        rows += [members[i] for i in sorted(pick)]
    images, names, fonts, target = [], [], [], []
    loaded: dict[Path, ImageFont.FreeTypeFont] = {}
    for cp, name, cat in rows:
        able = [p for p in faces if cp in cmaps[p]]
        face = able[int(rng.integers(len(able)))]
        font = loaded.setdefault(face, ImageFont.truetype(str(face), 28))
        images.append(render(chr(cp), font))
        names.append(name.lower())
        fonts.append(face.stem)
        target.append(cat)
    np.savez_compressed(
        OUT,
        images=np.stack(images),
        codepoints=np.array([r[0] for r in rows], np.int32),
        names=np.array(names),
        fonts=np.array(fonts),
        category=np.array(target),
    )
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB, {len(rows)} rows)")
    print({c: target.count(c) for c in kept})


if __name__ == "__main__":
    main()
