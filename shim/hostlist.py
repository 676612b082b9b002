"""Slurm hostlists (``SLURM_JOB_NODELIST``) expanded to node names, as Slurm does.

``expand("a[001-003,010],b07")`` is ``["a001", "a002", "a003", "a010", "b07"]``.
The grammar and every quirk follow Slurm's own parser, read (not copied) in
``src/common/hostlist.c`` of github.com/SchedMD/slurm (master at 284c3b95f08a,
2026-08; the suffix after a bracket, ``node[1-3]-ib``, since commit 0994b5f198,
Slurm 23.02.5), for a one-dimensional cluster (``dims == 1``, every cluster
that is not a BlueGene/Cray torus):

- ``_next_tok``: tokens are split at tab, comma, space and newline, except
  inside a ``[...]`` pair; runs of separators are one separator; leading and
  trailing ones are ignored.
- ``_hostlist_create_bracketed``: a token without ``[`` is one name. Else the
  *last* ``[`` and the first ``]`` after it hold the final range list; what
  follows that ``]`` is a suffix appended to every name; a ``[`` without a
  ``]`` is an error.
- ``_parse_range_list`` / ``_parse_single_range``: a range list is
  comma-separated ``N`` or ``LO-HI``; numbers are read as C's ``strtoul``
  reads them (leading white space and a ``+`` are accepted, a value past
  2**64-1 saturates); zero padding is the *text width of LO* (``[09-11]`` ->
  09 10 11, ``[1-010]`` -> 1..10, ``[ 1-2]`` -> 01 02); ``LO-`` is ``LO``;
  an ``x``, an empty item, ``LO > HI``, a missing number or trailing text after
  HI is an error, and so is a range of more than 65536 names (``MAX_RANGE``).
  Items keep their order and duplicates are kept (``[1-3,2]`` -> 1 2 3 2).
- ``_push_range_list``: brackets earlier in the token are expanded too
  (``rack[1-2]-node[01-02]``); each holds at most 65536 values
  (``MAX_PREFIX_CNT``). The order is Slurm's: the bracket just left of the
  final one varies slowest, then the ones further left, and the final bracket
  fastest (``a[1-2]b[1-2]c[1-2]`` -> a1b1c1 a1b1c2 a2b1c1 a2b1c2 a1b2c1 ...).
- ``hostname_create_dims``: a plain name ending in digits is re-printed from
  its number, so a digit run past 2**64-1 saturates
  (``a99999999999999999999`` -> ``a18446744073709551615``).

Where Slurm is lenient and the result cannot be a node list, this raises
:class:`ValueError` (one short line) instead:

- a name holding ``[`` or ``]`` (Slurm passes ``a]``, ``a[[1-2]]`` and
  ``a[1-2[3-4]`` through as names with brackets; no node name has one);
- a malformed bracket left of the final two (Slurm drops those names without
  an error, ``a[x]b[1]c[1]`` gives nothing);
- a non-empty hostlist that names no node (``,`` or blanks; Slurm: empty);
- a range whose size wraps around in C's unsigned arithmetic
  (``a[0- -1]``: Slurm prints nothing);
- more than `limit` names in all, or a name longer than 255 characters (the
  expansion is sized before anything is built, so the work and memory stay
  bounded by `limit`), or a NUL character.

``{...}`` (controller-side node-set expansion in ``hostlist_create_client``)
and multi-dimensional box syntax (``dims > 1``) are not supported: the first
is taken literally, the second does not occur on a one-dimensional cluster.

Standard library only (``itertools``), no ``re``: this runs on the shim's hot
path.
"""

from __future__ import annotations

from itertools import product

__all__ = ["MAX_NAME", "MAX_PREFIX_COUNT", "MAX_RANGE", "expand"]

MAX_RANGE = 65536  # hostlist.h: MAX_RANGE (MAX_SLURM_NODES), names in one LO-HI
MAX_PREFIX_COUNT = 65536  # hostlist.h: MAX_PREFIX_CNT, values in one earlier bracket
MAX_RANGES = 256 * 1024  # hostlist.c: MAX_RANGES, items in one bracket
MAX_NAME = 255  # longest name accepted (a DNS name has at most 253 characters)

_SEPARATORS = frozenset("\t, \n")
_C_SPACE = frozenset(" \t\n\v\f\r")  # isspace() in the C locale
_DIGITS = frozenset("0123456789")  # isdigit() in the C locale (str.isdigit takes more)
_ULONG_MAX = 2**64 - 1


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _strtoul(text: str) -> tuple[int, int]:
    """C's ``strtoul(text, &end, 10)`` on an LP64 host: (value, characters
    consumed); 0 consumed when nothing converts."""
    i, n = 0, len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    negative = i < n and text[i] == "-"
    if i < n and text[i] in "+-":
        i += 1
    start = i
    while i < n and text[i] in _DIGITS:
        i += 1
    if i == start:
        return 0, 0
    significant = text[start:i].lstrip("0")
    if len(significant) > 20:  # past 2**64-1 however it reads: ERANGE
        return _ULONG_MAX, i
    value = int(significant or "0")
    if value > _ULONG_MAX:
        return _ULONG_MAX, i
    return ((-value) & _ULONG_MAX if negative else value), i


def _range(item: str, whole: str) -> tuple[int, int, int]:
    """One ``N`` or ``LO-HI`` of a bracket: (lo, hi, width)."""
    if "x" in item:  # Slurm refuses box syntax here
        raise ValueError(f"invalid hostlist {_shown(whole)}: bad range {item!r}")
    dash = item.find("-")
    low, high = (item, None) if dash < 0 else (item[:dash], item[dash + 1 :])
    if high is not None and high.startswith("-"):
        raise ValueError(f"invalid hostlist {_shown(whole)}: bad range {item!r}")
    lo, used = _strtoul(low)
    if used == 0:
        raise ValueError(f"invalid hostlist {_shown(whole)}: bad range {item!r}")
    if high:  # text after LO's digits is not looked at (Slurm reads "1a-3" as 1-3)
        hi, used = _strtoul(high)
        if used == 0 or used != len(high):
            raise ValueError(f"invalid hostlist {_shown(whole)}: bad range {item!r}")
    else:  # "N" or "N-": all of it must be the number
        hi = lo
        if used != len(low):
            raise ValueError(f"invalid hostlist {_shown(whole)}: bad range {item!r}")
    if lo > hi:
        raise ValueError(f"invalid hostlist {_shown(whole)}: bad range {item!r}")
    if hi - lo + 1 > MAX_RANGE:
        raise ValueError(f"invalid hostlist {_shown(whole)}: range {item!r} is too large")
    return lo, hi, len(low)


def _ranges(spec: str, whole: str) -> list[tuple[int, int, int]]:
    """The comma-separated items of one bracket."""
    if spec.count(",") >= MAX_RANGES:
        raise ValueError(f"invalid hostlist {_shown(whole)}: too many ranges in one bracket")
    return [_range(item, whole) for item in spec.split(",")]


def _size(ranges: list[tuple[int, int, int]]) -> int:
    return sum(hi - lo + 1 for lo, hi, _ in ranges)


def _widest(ranges: list[tuple[int, int, int]]) -> int:
    return max(max(width, len(str(hi))) for _, hi, width in ranges)


def _values(ranges: list[tuple[int, int, int]], after: str) -> list[str]:
    return [f"{v:0{width}d}{after}" for lo, hi, width in ranges for v in range(lo, hi + 1)]


def _tokens(text: str):
    """Slurm's ``_next_tok``: tokens split at separators outside ``[...]``.

    The first ``[`` and ``]`` at or after the scan point are cached: the scan
    point only moves forward, so the whole walk is linear in ``len(text)``.
    """
    n = len(text)
    i = 0
    open_at = close_at = -1  # first '[' / ']' at or after `parse`; n: none
    while True:
        while i < n and text[i] in _SEPARATORS:
            i += 1
        if i >= n:
            return
        start = parse = i
        while True:
            while i < n and text[i] not in _SEPARATORS:
                i += 1
            extended = False
            while True:  # step over complete bracket pairs
                if open_at < parse:
                    found = text.find("[", parse)
                    open_at = n if found < 0 else found
                if open_at >= n or open_at > i:
                    break
                if close_at < parse:
                    found = text.find("]", parse)
                    close_at = n if found < 0 else found
                if close_at >= n or close_at < open_at:
                    break
                if close_at < i:
                    parse = close_at + 1
                    continue
                i = close_at  # a separator inside brackets: go on from the ']'
                extended = True
                break
            if not extended:
                break
        yield text[start:i]


def _plain(token: str) -> str:
    """A token without brackets, re-printed as ``hostname_create_dims`` and
    ``hostrange_shift`` do: only a digit run past 2**64-1 changes."""
    end = len(token)
    start = end
    while start > 0 and token[start - 1] in _DIGITS:
        start -= 1
    if start == end:
        return token
    digits = token[start:]
    significant = digits.lstrip("0")
    if len(significant) > 20 or int(significant or "0") > _ULONG_MAX:
        return f"{token[:start]}{_ULONG_MAX:0{len(digits)}d}"
    return token


def _token_parts(token: str, whole: str):
    """A bracketed token as (base, levels, final, suffix): the name is
    ``base + v[m-1] + ... + v[0] + final + suffix``, where levels[k] =
    (ranges, tail) is the k-th bracket counted leftwards from the final one."""
    lb = token.rfind("[")
    rb = token.find("]", lb + 1)
    if rb < 0:
        raise ValueError(f"invalid hostlist {_shown(whole)}: '[' without ']'")
    after = token[rb + 1 :]
    suffix = "" if after[:1] in ("", ",") else after  # Slurm drops text after "],"
    final = _ranges(token[lb + 1 : rb], whole)
    levels = []
    rest = token[:lb]
    while True:
        left = rest.rfind("[")
        if left < 0:
            break
        right = rest.rfind("]", left)
        if right < 0:  # Slurm keeps "a[b" as text
            break
        ranges = _ranges(rest[left + 1 : right], whole)
        if _size(ranges) > MAX_PREFIX_COUNT:
            raise ValueError(f"invalid hostlist {_shown(whole)}: too many names in one bracket")
        levels.append((ranges, rest[right + 1 :]))
        rest = rest[:left]
    return rest, levels, final, suffix


def expand(hostlist: str, limit: int = 65536) -> list[str]:
    """The node names of a Slurm hostlist, in Slurm's order, duplicates kept.

    Args:
        hostlist: e.g. ``SLURM_JOB_NODELIST`` (``"a[001-004,010],b07"``,
            ``"nid[00001-00003]"``, ``"node[1-3]-ib"``,
            ``"rack[1-2]-node[01-02]"``); ``""`` gives ``[]``.
        limit: the most names accepted; the expansion is counted before it is
            built.

    Raises:
        ValueError: one short line, for a malformed hostlist or one naming more
            than `limit` names (see the module docstring for the rules).
    """
    if not isinstance(hostlist, str):
        raise TypeError(f"hostlist must be a str, not {type(hostlist).__name__}")
    if "\0" in hostlist:
        raise ValueError("invalid hostlist: NUL character")
    names: list[str] = []
    for token in _tokens(hostlist):
        if "[" not in token:
            parts = [_plain(token)]
            count, longest, text = 1, len(parts[0]), token
        else:
            base, levels, final, suffix = _token_parts(token, hostlist)
            count = _size(final)
            longest = len(base) + _widest(final) + len(suffix)
            text = base + suffix
            for ranges, tail in levels:
                count *= _size(ranges)
                longest += _widest(ranges) + len(tail)
                text += tail
        if "[" in text or "]" in text:
            raise ValueError(
                f"invalid hostlist {_shown(hostlist)}: stray bracket in {_shown(token)}"
            )
        if len(names) + count > limit:
            raise ValueError(f"hostlist {_shown(hostlist)} names more than {limit} nodes")
        if longest > MAX_NAME:
            raise ValueError(
                f"invalid hostlist {_shown(hostlist)}: a name over {MAX_NAME} characters"
            )
        if "[" not in token:
            names.extend(parts)
            continue
        columns = [_values(ranges, tail) for ranges, tail in levels]
        columns.append(_values(final, suffix))
        if len(columns) == 1:
            names.extend(base + v for v in columns[0])
        else:
            names.extend(base + "".join(reversed(t[:-1])) + t[-1] for t in product(*columns))
    if not names and hostlist:
        raise ValueError(f"invalid hostlist {_shown(hostlist)}: names no node")
    return names
