"""Shell-style wildcards (``fnmatch.fnmatchcase``) without importing ``re``.

``fnmatch`` compiles every pattern to a regular expression, and importing
``re`` costs the shim's hot path ~10 ms on every command of a site that
configures node classes or policies. :func:`match` matches the patterns such
configs use (``a*``, ``nid00[0-3]*``, ``gpu-?``, ``[!x]*``) by hand, with
``fnmatchcase``'s semantics (Python's Lib/fnmatch.py: ``*``, ``?``, ``[seq]``,
``[!seq]``, ranges ``a-z``, an unclosed ``[`` is literal, case-sensitive);
a bracket expression of another shape (a ``-`` or ``]`` at an edge, an empty
or reversed range) is handed to ``fnmatch`` itself, so the result is always
``fnmatchcase``'s. Standard library only.
"""

from __future__ import annotations


def _bracket(pattern: str, i: int) -> tuple[bool, frozenset[str], tuple, int] | None:
    """The simple bracket expression starting at ``pattern[i] == "["``:
    (negated, characters, ranges, index after ``]``), or None when it is not
    one :func:`match` handles (then ``fnmatch`` decides)."""
    j = pattern.find("]", i + 1)
    if j < 0:
        return None
    body = pattern[i + 1 : j]
    negated = body.startswith("!")
    if negated:
        body = body[1:]
    if not body or body[0] in "-]!" or body[-1] == "-" or "[" in body or "\\" in body:
        return None
    chars, ranges, k = set(), [], 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            low, high = body[k], body[k + 2]
            if low > high or high == "-":
                return None
            ranges.append((low, high))
            k += 3
        elif body[k] == "-":
            return None
        else:
            chars.add(body[k])
            k += 1
    return negated, frozenset(chars), tuple(ranges), j + 1


def _simple(pattern: str) -> list | None:
    """`pattern` as a list of tokens (``"*"``, ``"?"``, a literal character,
    or a bracket tuple), or None when a bracket needs ``fnmatch``."""
    tokens: list = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            if pattern.find("]", i + 1) < 0:
                tokens.append("[")  # an unclosed bracket is a literal
                i += 1
                continue
            found = _bracket(pattern, i)
            if found is None:
                return None
            tokens.append(found[:3])
            i = found[3]
        else:
            tokens.append(c if c in "*?" else ("=", c))
            i += 1
    return tokens


def _one(token, c: str) -> bool:
    if token == "?":
        return True
    if token[0] == "=":
        return token[1] == c
    if token == "[":
        return c == "["
    negated, chars, ranges = token
    inside = c in chars or any(low <= c <= high for low, high in ranges)
    return inside != negated


def match(name: str, pattern: str) -> bool:
    """``fnmatch.fnmatchcase(name, pattern)``, without ``re`` for the patterns
    node-class and policy globs use."""
    tokens = _simple(pattern)
    if tokens is None:
        from fnmatch import fnmatchcase

        return fnmatchcase(name, pattern)
    # iterative wildcard matching with backtracking to the last "*"
    n, t = 0, 0
    star, star_n = -1, 0
    while n < len(name):
        if t < len(tokens) and tokens[t] == "*":
            star, star_n = t, n
            t += 1
        elif t < len(tokens) and _one(tokens[t], name[n]):
            n += 1
            t += 1
        elif star >= 0:
            star_n += 1
            n, t = star_n, star + 1
        else:
            return False
    while t < len(tokens) and tokens[t] == "*":
        t += 1
    return t == len(tokens)
