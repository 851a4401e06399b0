"""One escaping function per output format, applied by every renderer where a value enters its
output: labels, ids, URLs and models come from agents and operators, not from us.

- `markdown`: one line, shown literally. Line breaks (any of str.splitlines') become spaces (a newline
  in a node label started a heading and broke tables); `& < >` become entities (raw `<script>` passed
  to viewers that render HTML in Markdown); Markdown's inline punctuation and `|` are backslash-escaped.
- `html`: `& < > " '` as entities (text and attribute values alike).
- `csv_cell`: a text cell that a spreadsheet would run as a formula (first character `= + - @`, tab or
  carriage return) gets a leading `'` (OWASP's advice); numbers stay numbers.
- `json_text`: the document as JSON, with `< > &` and U+2028/U+2029 written as \\u escapes, so the
  text is also safe inside an HTML <script> block or a JavaScript string.
"""

from __future__ import annotations

import html as _html
import json
import re
from typing import Any

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|#~!])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_JSON_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def markdown(text: object) -> str:
    """`text` as one line of Markdown that renders as exactly these characters."""
    one_line = " ".join(str(text).splitlines())
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", _html.escape(one_line, quote=False))


def html(text: object) -> str:
    """`text` for HTML element content or a quoted attribute value."""
    return _html.escape(str(text), quote=True)


def csv_cell(value: Any) -> Any:
    """`value` for a CSV cell: text that would start a formula is prefixed with `'`; other values as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def json_text(document: Any) -> str:
    """`document` as indented JSON (UTF-8 text kept), safe to embed in HTML."""
    text = json.dumps(document, indent=2, ensure_ascii=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_UNSAFE[m.group()], text)
