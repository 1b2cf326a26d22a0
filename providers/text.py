"""Text as providers send it, made fit for results: markup stripped, unencodable characters replaced."""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def utf8_safe(text: str) -> str:
    """JSON may carry lone surrogates ("\\ud800") that no UTF-8 output can encode; replace them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def strip_html(fragment: str) -> str:
    if "<" in fragment:
        fragment = _TAG.sub("", fragment)
    if "&" in fragment:
        fragment = html.unescape(fragment)
    return utf8_safe(_SPACE.sub(" ", fragment).strip())
