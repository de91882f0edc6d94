"""MkDocs hook: show the Sphinx roles of the docstrings as plain code.

fastgrad's docstrings (NumPy style) cross-reference with Sphinx roles such as
``:func:`fastgrad.numerical_gradient```; Markdown renders those as the role's
name followed by a code span. This hook drops the role and keeps the code,
with ``~a.b.c`` shortened to ``c`` as Sphinx would.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:mod|func|class|data|meth|attr|exc|obj):<code>(~?)([^<]*)</code>")


def on_page_content(html, page, config, files):
    """Replace every ``:role:<code>x</code>`` in the rendered page by ``<code>x</code>``."""
    return ROLE.sub(lambda m: f"<code>{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}</code>", html)
