"""MkDocs hook: docstrings name objects with Sphinx roles (:class:`Plan`, :func:`solve`); the API pages show the name.

Python-Markdown renders such a role as the text ``:class:`` before the code span; this drops that text from the
rendered pages, so that the docstrings stay as they are for editors and ``help()``.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:py:)?(?:mod|class|func|meth|attr|data|exc|obj|const):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    return ROLE.sub("", html)
