"""Where mmsk's API reference lives: the "?" links of the HTML diagrams.

scikit-learn's diagram asks each estimator for ``_get_doc_link()``; its own
default links only scikit-learn's classes, so mmsk's objects give theirs.
"""

from __future__ import annotations

from typing import Any

#: The documentation site (``site_url`` in mkdocs.yml, ``project.urls`` in pyproject.toml).
DOC_ROOT = "https://mmsk.readthedocs.io/en/latest/api/"
_PAGES = {
    "mmsk.components": "components/",
    "mmsk.preprocessing": "preprocessing/",
    "mmsk.models": "estimators/",
    "mmsk.tuning": "tuning/",
}


def doc_link(obj: Any) -> str:
    """The documentation URL of an mmsk class or object ("" for other packages').

    Examples
    --------
    >>> from mmsk.components import CNNEncoder
    >>> from mmsk._docs import doc_link
    >>> doc_link(CNNEncoder()).endswith("components/#mmsk.components.CNNEncoder")
    True
    >>> doc_link(dict)
    ''
    """
    cls = obj if isinstance(obj, type) else type(obj)
    public = ".".join(p for p in cls.__module__.split(".") if not p.startswith("_"))
    page = _PAGES.get(public)
    if page is None:
        return ""
    return f"{DOC_ROOT}{page}#{public}.{cls.__name__}"


class DocLinkMixin:
    """``_get_doc_link`` for scikit-learn's diagram: the object's page in mmsk's API
    reference (a subclass defined outside mmsk gets no link, as in scikit-learn)."""

    def _get_doc_link(self) -> str:
        return doc_link(self)
