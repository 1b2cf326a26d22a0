"""Text as providers send it, made fit for results: markup stripped, unencodable characters replaced."""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def utf8_safe(text: str) -> str:
    """JSON may carry lone surrogates ("\\ud800") that no UTF-8 output can encode; replace them."""
    return text.encode("utf-8", "replace").decode("utf-8")


def strip_html(fragment: str) -> str:
    return utf8_safe(_SPACE.sub(" ", html.unescape(_TAG.sub("", fragment))).strip())
