"""Snippets arrive with markup (Wikipedia's `<span class="searchmatch">`, entities); users want text."""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def strip_html(fragment: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAG.sub("", fragment))).strip()
