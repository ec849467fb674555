"""MkDocs hook: render the Sphinx roles used in ptychopinn's docstrings as plain code.

The docstrings write cross-references Sphinx-style (``:class:`~ptychopinn.data.PtychoData```).
mkdocstrings renders them as ``:class:<code>~ptychopinn.data.PtychoData</code>``; this hook
drops the role and, for a leading ``~``, keeps only the last dotted name (Sphinx's meaning).
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):<code>(~?)([^<]*)</code>")


def _plain(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(_plain, html)
