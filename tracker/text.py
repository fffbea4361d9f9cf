"""Text from outside made text every store can hold: a lone UTF-16 surrogate read as U+FFFD.

JSON may escape a surrogate on its own ("\\ud800"): valid JSON (RFC 8259 leaves what it means to the reader), not
valid Unicode, and what a sender's JavaScript leaves when it cuts a subject or a name in the middle of an emoji.
Python's json reads it as a lone surrogate code point, which no UTF-8 encoder takes: a Redis key or value, a log
line or a mail holding it fails wherever it is written, long after the delivery was acknowledged. A mail's charset
can produce one too (UTF-7's "+2AA-", Python's unicode_escape). So every JSON body and every mail text is mended
here, where it comes in: each lone surrogate becomes U+FFFD, the replacement character, and the rest is kept; a
pair JSON escapes ("\\ud83d\\ude00") is one character already and stays as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

LONE = re.compile("[\ud800-\udfff]")
ESCAPED = re.compile(r"\\u[dD][89a-fA-F]")  # what a JSON text holds before it can decode to a surrogate


def mended(text: str) -> str:
    """Return text with each lone surrogate replaced by U+FFFD."""
    return LONE.sub("\ufffd", text) if LONE.search(text) else text


def loads(text: str) -> Any:
    """json.loads, with every string (keys too) mended; raises what json.loads raises. Only a text holding a
    surrogate's escape is walked."""
    data = json.loads(text)
    return _walk(data) if ESCAPED.search(text) else data


def _walk(data: Any) -> Any:
    """Mend every string of decoded JSON, without recursion (a document may be nested as deep as json reads)."""
    if isinstance(data, str):
        return mended(data)
    if not isinstance(data, dict | list):
        return data
    root: list[Any] = [data]
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        if isinstance(node, dict):
            node.clear()
        for key, value in items:
            if isinstance(value, str):
                value = mended(value)
            elif isinstance(value, dict | list):
                stack.append(value)
            node[mended(key) if isinstance(key, str) else key] = value
    return root[0]
