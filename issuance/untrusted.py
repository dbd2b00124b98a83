"""Characters no field of kihonet may hold, and the checks that refuse them before any view.

PostgreSQL cannot store NUL in text at all (the driver raises, the request would end in a
500); other C0 control characters and lone surrogates (possible in JSON's ``\\ud800``) have no
place in a code, an address, a search term or a PEM either. Tab, line feed and carriage return
stay allowed: PEM text and multi-line notes carry them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")

# The request bodies of the API are flat objects; a few levels leave room, a thousand (which
# makes Python's JSON reader raise RecursionError) are refused.
MAX_JSON_DEPTH = 8


def has_forbidden_character(text: str) -> bool:
    return FORBIDDEN_CHARACTERS.search(text) is not None


def any_forbidden(texts: Iterable[str]) -> bool:
    return any(has_forbidden_character(text) for text in texts)


class JsonTooDeep(ValueError):
    pass


def json_strings(data: object) -> Iterable[str]:
    """Every key and string value of a parsed JSON document, without recursion.

    Raises JsonTooDeep when arrays and objects nest more than ``MAX_JSON_DEPTH`` levels.
    """
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise JsonTooDeep()
            items: Iterable[object]
            if isinstance(value, dict):
                yield from value.keys()
                items = value.values()
            else:
                items = value
            stack.extend((item, depth + 1) for item in items)
