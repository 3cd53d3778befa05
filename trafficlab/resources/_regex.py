"""Go RE2 patterns (OpenAPI ``pattern``, CEL ``matches``) run with Python's ``re``.

Kubernetes checks ``pattern`` with Go's ``regexp.MatchString``: an unanchored search, so
a pattern constrains the whole value only through its own ``^...$``. Two details differ
in Python and are translated here:

* ``$`` in Go (without the ``m`` flag) matches only at the end of the text; Python's
  also matches before a final newline, so ``"a\\n"`` would pass ``^a$``. Unescaped ``$``
  outside a character class becomes ``\\Z``, and Go's ``\\z`` becomes ``\\Z`` too.
* ``\\d``, ``\\w``, ``\\s`` are ASCII-only in Go, so patterns compile with ``re.ASCII``.
"""

from __future__ import annotations

import functools
import re

__all__ = ["go_regex"]


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append("\\Z" if nxt == "z" and not in_class else ch + nxt)
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
            # A ']' right after '[' or '[^' is a literal in both dialects.
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                out.append("\\]")
                i += 1
        elif ch == "$":
            out.append("\\Z")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=512)
def go_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Go RE2 pattern for use with ``.search`` (Go's ``MatchString``).

    >>> bool(go_regex("^a$").search("a")), bool(go_regex("^a$").search("a\\n"))
    (True, False)
    """
    return re.compile(_translate(pattern), re.ASCII)
