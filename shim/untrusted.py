"""Data from outside (a registry, an artifact, a file another user wrote):
parsed only within bounds, shown only in a form a terminal cannot act on.

:func:`loads_json` bounds JSON before :func:`json.loads` sees it: CPython's
decoder recurses once per nested array or object (``Modules/_json.c``
``scan_once_unicode``), so 1,000 levels in 2 KB end in ``RecursionError``; and
integers longer than ``sys.get_int_max_str_digits()`` (4,300 digits) raise a
bare ``ValueError`` (CPython gh-95778). Here nesting beyond
:data:`MAX_JSON_DEPTH` and numbers longer than :data:`MAX_NUMBER_CHARS` are
refused before or while parsing, with :class:`UntrustedDataError`, a
``ValueError`` whose message is one line.

:func:`terminal_safe` makes one string from outside safe to print: control
characters (C0, DEL, C1, and Unicode format/separator characters such as the
bidirectional overrides) are shown escaped (``\\x1b``, ``\\u202e``) and the
result is cut to a length. Every human output of a string a registry chose
(annotations, media types, platform fields, tags, NFD names) goes through it;
JSON output keeps the exact strings (``json.dumps`` escapes control
characters itself).

Standard library only; :mod:`json` and :mod:`re` are imported when JSON is
parsed (the cold path), never by :func:`terminal_safe`, so the shim's hot-path
messages (:func:`shim.main._say`) can use it at no import cost.
"""

from __future__ import annotations

#: Deepest nesting of arrays/objects accepted (an OCI index is 4 deep, an NFD
#: spec about 8).
MAX_JSON_DEPTH = 64
#: Longest number literal accepted (digits, sign, fraction, exponent).
MAX_NUMBER_CHARS = 40
#: Default cut of one string shown to a person.
MAX_SHOWN = 200


class UntrustedDataError(ValueError):
    """Data from outside is beyond the bounds this module parses (one line)."""


_STRING = None  # compiled on first use: a JSON string literal


def json_depth_bound(data: bytes) -> int:
    """An upper bound of the nesting depth of the JSON text `data`, computed
    without recursion: string literals removed, then empty ``[]`` pairs and
    empty ``{}`` pairs removed in turn (each removal step takes at most one
    level off: ``bytes.replace`` does not rescan what it produced), counting
    the steps that removed something; brackets left unmatched count one level
    each. The bound is at most twice the real depth (branches of both kinds
    may each cost a step), so any text nested up to ``MAX_JSON_DEPTH // 2``
    levels is accepted.

    Returns:
        A bound >= the real depth; ``MAX_JSON_DEPTH + 1`` or more when the
        text is, or may be, nested too deeply.
    """
    global _STRING
    if _STRING is None:
        import re

        _STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    steps = 0
    idle = 0
    pair = b"[]"
    while brackets and steps <= MAX_JSON_DEPTH and idle < 2:
        reduced = brackets.replace(pair, b"")
        if reduced == brackets:
            idle += 1
        else:
            brackets, steps, idle = reduced, steps + 1, 0
        pair = b"{}" if pair == b"[]" else b"[]"
    return steps + len(brackets)


_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def _number(text: str):
    if len(text) > MAX_NUMBER_CHARS:
        raise UntrustedDataError(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    if not any(c in text for c in ".eE"):
        return int(text)
    value = float(text)
    if value - value != 0:  # 1e999 overflows to inf: no JSON number is infinite
        raise UntrustedDataError(f"the number {text} is out of range")
    return value


def _constant(name: str):
    raise UntrustedDataError(f"{name} is not JSON")


def loads_json(data: bytes | str, what: str = "JSON"):
    """Parse untrusted JSON text within bounds.

    Args:
        data: the text (UTF-8 bytes, or str).
        what: what it is, for messages (``"image index"``).

    Returns:
        The decoded value (dict, list, str, int, float, bool, None).

    Raises:
        UntrustedDataError: nested deeper than :data:`MAX_JSON_DEPTH`, a number
            longer than :data:`MAX_NUMBER_CHARS` or beyond a float's range
            (``1e999``), ``NaN``/``Infinity``.
        ValueError: not valid JSON or not UTF-8 (``json.JSONDecodeError``,
            ``UnicodeDecodeError``), one line.
    """
    import json

    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    depth = json_depth_bound(raw)
    if depth > MAX_JSON_DEPTH:
        raise UntrustedDataError(f"{what} nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UntrustedDataError(f"{what} is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_int=_number, parse_float=_number, parse_constant=_constant)
    except RecursionError:  # pragma: no cover  (the depth bound prevents it)
        raise UntrustedDataError(f"{what} nested too deeply") from None


def terminal_safe(text: object, limit: int = MAX_SHOWN) -> str:
    """`text` as one line a terminal shows literally: every character that is
    not printable (``str.isprintable``: C0/C1 controls, DEL, Unicode
    format and separator characters, unassigned code points) written as its
    Python escape, then cut to `limit` characters with a note of how long the
    whole text was. Only the first `limit` characters are ever escaped, so a
    string of megabytes costs no more than a short one.

    Args:
        text: any object (``str()`` of it is shown).
        limit: characters kept at most (>= 1); 0 keeps everything.

    Returns:
        A printable str of at most `limit` + 40 characters (when `limit`).
    """
    text = text if isinstance(text, str) else str(text)
    shown = text[:limit] if limit else text
    if not shown.isprintable():
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
    if limit and (len(text) > limit or len(shown) > limit):
        shown = f"{shown[:limit]}...({len(text)} characters in all)"
    return shown


def terminal_lines(text: str, limit: int = 1000, max_lines: int = 0) -> str:
    """A multi-line message made safe line by line (:func:`terminal_safe`
    per line, `limit` characters each); with `max_lines`, lines beyond it
    replaced by one line counting them."""
    lines = text.split("\n")
    if max_lines and len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], f"... ({len(lines) - max_lines + 1} more lines)"]
    return "\n".join(terminal_safe(line, limit) for line in lines)


#: Largest config or credentials file read (registries.conf, auth.json).
MAX_CONFIG_FILE = 1024 * 1024


def read_bounded(path: str, limit: int = MAX_CONFIG_FILE) -> bytes:
    """The bytes of the regular file `path`, read the way a file in a
    directory another user may control must be read: never blocking on a
    FIFO (``O_NONBLOCK``: open(2) of a FIFO with no writer returns at once,
    and fstat then refuses it), checked with fstat on the open descriptor
    (what is checked is what is read: a regular file, not a device such as
    ``/dev/zero``), and at most `limit` bytes. Links are followed, as podman
    follows them for registries.conf and auth.json.

    Raises:
        FileNotFoundError: no such file.
        OSError: cannot be opened or read (one-line ``strerror``); not a
            regular file (``EINVAL``); larger than `limit` (``EFBIG``).
    """
    import os

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o170000 != 0o100000:
            raise OSError(22, "not a regular file", path)
        chunks, size = [], 0
        while chunk := os.read(fd, min(65536, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise OSError(27, f"larger than {limit} bytes", path)
        return b"".join(chunks)
    finally:
        os.close(fd)
