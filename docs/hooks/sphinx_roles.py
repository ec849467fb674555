"""MkDocs hook: render the reStructuredText bits of ptychopinn's docstrings readably.

The docstrings are NumPy-style with a few Sphinx/RST habits that Markdown does not know:

- roles such as ``:class:`~ptychopinn.data.PtychoData``` arrive as
  ``:class:<code>~ptychopinn.data.PtychoData</code>``: the role is dropped and, for a leading
  ``~``, only the last dotted name is kept (Sphinx's meaning);
- a paragraph ending in ``::`` before a literal block ends in ``:``;
- a ``.. math::`` directive line is dropped (the formula stays as a code block); a one-line
  ``.. math:: formula`` becomes a preformatted formula (with the underscores that Markdown
  took for emphasis put back);
- a simple RST table (rows of ``====``) is shown preformatted, as written.
"""

from __future__ import annotations

import re

_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const|math):<code>(~?)([^<]*)</code>")
_LITERAL_INTRO = re.compile(r"::</p>(\s*<div class=\"(?:language-\w+ )?highlight\">)")
_MATH_DIRECTIVE = re.compile(r"<p>\.\. math::</p>\s*")
_MATH_INLINE = re.compile(r"<p>\.\. math:: (.*?)</p>", re.S)
_RST_TABLE = re.compile(r"<p>(=+(?: +=+)+\n.*?)</p>", re.S)


def _plain(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def _formula(match: re.Match) -> str:
    return "<pre>" + re.sub(r"</?em>", "_", match.group(1)) + "</pre>"


def on_page_content(html: str, **kwargs) -> str:
    html = _ROLE.sub(_plain, html)
    html = _LITERAL_INTRO.sub(r":</p>\1", html)
    html = _MATH_DIRECTIVE.sub("", html)
    html = _MATH_INLINE.sub(_formula, html)
    return _RST_TABLE.sub(r"<pre>\1</pre>", html)
