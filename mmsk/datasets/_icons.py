"""``load_icons``: desktop icons and their names -> the icon's context (image + text)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mmsk.datasets._base import (
    data_version,
    extract,
    frame_or_arrays,
    get_data_home,
    load_arrays,
    load_descr,
)

_FILE = "icons.npz"


def _write_files(folder: Path, images: np.ndarray) -> None:
    from PIL import Image

    (folder / "images").mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img, mode="RGB").save(folder / "images" / f"{i:04d}.png")


def load_icons(
    *,
    as_frame: bool = True,
    return_X_y: bool = False,
    as_paths: bool = False,
    data_home: str | os.PathLike[str] | None = None,
) -> Any:
    """Load the desktop icons: an icon's picture and name -> its context (7 classes).

    1,381 icons of the Papirus icon theme (GPL-3.0), rasterised to 32x32 RGB
    on white, each with its name as words (``folder-blue-music`` ->
    ``"folder blue music"``).  The target is the icon's context in the
    theme: actions, apps, devices, emblems, mimetypes, places or status.
    The classes are imbalanced (48 to 300 rows): report macro-F1 as well as
    accuracy.  The name alone and the picture alone each leave errors the
    other can fix; see ``DESCR``.

    =================  ==============================================
    Classes            7 (``target`` 0-6; names in ``target_names``)
    Rows               1381
    ``icon``           uint8 (32, 32, 3) RGB arrays, or PNG paths
    ``name``           str, the icon name split into words
    =================  ==============================================

    Parameters
    ----------
    as_frame : bool, default=True
        ``data`` as a DataFrame (``icon`` object column, ``name`` string
        column), ``target`` as a Series and ``frame`` both together.  If
        False, ``data`` is a 2-D object array of the same cells and
        ``frame`` is None.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of the Bunch.
    as_paths : bool, default=False
        Make the ``icon`` cells paths of PNG files, written once into
        ``data_home`` and reused.
    data_home : str or path-like, optional
        Folder for ``as_paths`` files; see :func:`get_data_home`.

    Returns
    -------
    Bunch or tuple
        ``data``, ``target``, ``frame``, ``feature_names``, ``target_names``,
        ``images`` (uint8 (1381, 32, 32, 3)), ``icon_names`` (the theme's
        file names), ``source_files`` (the SVG each icon was drawn from,
        relative to the theme folder) and ``DESCR``.

    Examples
    --------
    >>> from mmsk.datasets import load_icons
    >>> icons = load_icons()
    >>> icons.data.shape, list(icons.data.columns)
    ((1381, 2), ['icon', 'name'])
    >>> icons.data["icon"][0].shape, icons.target_names.tolist()[:3]
    ((32, 32, 3), ['actions', 'apps', 'devices'])
    """
    from sklearn.utils import Bunch

    arrays = load_arrays(_FILE)
    images = arrays["images"]
    target = arrays["target"].astype(np.int64)
    icon: list[Any] = list(images)
    if as_paths:
        folder = get_data_home(data_home) / f"icons-{data_version(_FILE)}"
        extract(folder, lambda tmp: _write_files(tmp, images))
        icon = [str(folder / "images" / f"{i:04d}.png") for i in range(len(target))]
    parts = frame_or_arrays(
        {"icon": icon, "name": arrays["text"]}, target, "context", as_frame=as_frame
    )
    if return_X_y:
        return parts["data"], parts["target"]
    return Bunch(
        **parts,
        target_names=arrays["target_names"],
        images=images,
        icon_names=arrays["icon_names"],
        source_files=arrays["source_files"],
        DESCR=load_descr("icons.rst"),
    )
