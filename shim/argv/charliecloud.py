"""Charliecloud's ``ch-image`` command line: find ``pull``, its source image
and its destination.

``ch-image`` (Charliecloud 0.31; /usr/bin/ch-image ``main``) is Python
``argparse`` (Debian bookworm: Python 3.11 ``Lib/argparse.py``) with one
parser per subcommand. The *common options* (:data:`COMMON_VALUE`,
:data:`COMMON_BOOL`) are declared on the main parser **and** on every
subcommand's (``add_opts``), so they may stand before or after the
subcommand word; a value given after it wins over one given before
(subcommand defaults are ``argparse.SUPPRESS``). ``pull`` adds
``--last-layer N`` and ``--parse-only`` and takes ``IMAGE_REF [DEST_REF]``.

How argparse reads each parser's words (``_parse_known_args``,
``_parse_optional``, ``_get_option_tuples``, ``consume_optional``,
``consume_positionals``), mirrored here word for word:

* a word is an *option* when it starts with ``-``, is not ``-`` alone, and
  is a known option, ``--name=value`` of one, an unambiguous prefix of a
  long option (``--tls-no`` is ``--tls-no-verify``; ``--no-`` is ambiguous:
  an error) or a short option followed by more letters (``-vv``,
  ``-aamd64``, ``-sDIR``); a negative number or a word with a space is a
  positional; any other ``-word`` is an unknown option (an error);
* a value option takes ``=value``, the rest of its short word, or the next
  word, which must not be an option word or ``--`` (else: an error);
  booleans bundle (``-vv``, ``-va amd64``);
* the first ``--`` ends the options: every later word is a positional;
* positionals are matched by the first *run* of consecutive positional
  words: ``pull SRC DEST`` or ``pull SRC``; a positional after an option
  that follows ``SRC`` (``pull SRC -v DEST``) is an "unrecognized
  argument" (argparse's optional ``DEST_REF`` was already matched empty);
* in the main parser the first positional is the subcommand word, and it
  and every word after it go to the subcommand's parser (exact names only);
* ``-h/--help``, ``--version`` and ``--dependencies`` print and exit where
  they are read; the build-cache options (``--cache``, ``--no-cache``,
  ``--rebuild``) are mutually exclusive within one parser.

Every line ``ch-image`` would refuse while parsing raises
:class:`~shim.errors.ArgvError` (the shim runs it unchanged and ch-image
says what is wrong); a help, version or dependencies line and every
subcommand other than ``pull`` give an Invocation without a verb.

Standard library only; no imports beyond the Invocation.
"""

from __future__ import annotations

from shim.argv.invocation import Invocation
from shim.errors import ArgvError

#: common options (/usr/bin/ch-image ``common_opts``) that take a value
COMMON_VALUE = frozenset({"arch", "cache-large", "storage"})
#: common options that take none (store_true, store_const, count, or an
#: action that prints and exits: dependencies, help, version)
COMMON_BOOL = frozenset(
    {
        "always-download", "auth", "cache", "debug", "dependencies", "help", "no-cache",
        "no-lock", "password-many", "profile", "rebuild", "tls-no-verify", "verbose", "version",
    }
)  # fmt: skip
COMMON_SHORT = {"a": "arch", "s": "storage", "v": "verbose", "h": "help"}
#: ``ch-image pull``'s own options
PULL_VALUE = frozenset({"last-layer"})
PULL_BOOL = frozenset({"parse-only"})
#: the mutually exclusive build-cache group (``bucache``)
BUILD_CACHE = frozenset({"cache", "no-cache", "rebuild"})
#: options whose action prints something and exits while parsing
EXITING = frozenset({"help", "version", "dependencies"})
#: ch-image's subcommands (0.31); only ``pull`` is intercepted
SUBCOMMANDS = frozenset(
    {"build", "build-cache", "delete", "gestalt", "import", "list", "pull", "push", "reset",
     "undelete"}
)  # fmt: skip


class _Parser:
    """One argparse parser's options: long names (value / boolean), short letters."""

    __slots__ = ("value", "boolean", "longs")

    def __init__(self, value: frozenset[str], boolean: frozenset[str]) -> None:
        self.value = value
        self.boolean = boolean
        self.longs = tuple(sorted(value | boolean))

    def takes_value(self, name: str) -> bool:
        return name in self.value


MAIN = _Parser(COMMON_VALUE, COMMON_BOOL)
PULL = _Parser(COMMON_VALUE | PULL_VALUE, COMMON_BOOL | PULL_BOOL)


def _negative_number(word: str) -> bool:
    """argparse's ``_negative_number_matcher``: ``^-\\d+$|^-\\d*\\.\\d+$``."""
    body = word[1:]
    if body.isdigit() and body.isascii():
        return True
    whole, dot, frac = body.partition(".")
    return (
        bool(dot)
        and (not whole or (whole.isdigit() and whole.isascii()))
        and (frac.isdigit() and frac.isascii())
    )


def _classify(word: str, parser: _Parser) -> tuple[str, str | None] | None:
    """argparse's ``_parse_optional``: (canonical long name, explicit value
    or None) for an option word, None for a positional.

    Raises:
        ArgvError: an ambiguous prefix or an unknown option.
    """
    if not word.startswith("-") or word == "-":
        return None
    if word.startswith("--"):
        if word == "--":
            return None  # the caller handles the terminator
        body = word[2:]
        name, eq, value = body.partition("=")
        if name in parser.value or name in parser.boolean:
            return name, (value if eq else None)
        matches = [n for n in parser.longs if n.startswith(name)]
        if len(matches) > 1:
            raise ArgvError(f"ambiguous option: {word} could match " + ", ".join(matches))
        if len(matches) == 1:
            return matches[0], (value if eq else None)
    else:
        letter = word[1]
        if letter in COMMON_SHORT:
            rest = word[2:]
            if rest.startswith("="):
                return COMMON_SHORT[letter], rest[1:]
            return COMMON_SHORT[letter], ("\0" + rest if rest else None)
    if _negative_number(word) or " " in word:
        return None
    raise ArgvError(f"unrecognized option {word}")


def scan(
    args: tuple[str, ...],
    start: int,
    parser: _Parser,
    flags: dict,
    stop_at_first: bool,
    ends: dict | None = None,
):
    """Read ``args[start:]`` as one argparse parser does into `flags`
    (canonical name -> values, None for a boolean). Returns the positions of
    the positional words argparse matches (for the main parser: only the
    first, the subcommand word, when `stop_at_first`; none when a ``--``
    comes first there) and the position of the ``--`` terminator or None.
    `ends`, when given, gets for each option name the position just after
    its last occurrence (its value included).

    Raises:
        ArgvError: a word argparse would refuse.
    """
    positions: list[int] = []
    runs = 0  # runs of positionals seen
    in_run = False
    terminator = None
    i = start
    while i < len(args):
        word = args[i]
        if terminator is None and word == "--":
            if stop_at_first:  # the subcommand after "--": not a line to read
                return [], i
            terminator = i
            i += 1
            continue
        found = None if terminator is not None else _classify(word, parser)
        if found is None:
            if stop_at_first:
                return [i], terminator
            if not in_run:
                runs += 1
                in_run = True
            if runs > 1:
                raise ArgvError(
                    f"unrecognized argument {word!r} (after an option that follows the image)"
                )
            positions.append(i)
            i += 1
            continue
        in_run = False
        name, value = found
        if name in EXITING:
            flags.setdefault(name, []).append(None)
            return positions, terminator
        if parser.takes_value(name):
            if value is not None and value.startswith("\0"):
                value = value[1:]
            elif value is None:
                if i + 1 >= len(args):
                    raise ArgvError(f"option {word} expects one argument")
                nxt = args[i + 1]
                if nxt == "--" or _classify(nxt, parser) is not None:
                    raise ArgvError(f"option {word} expects one argument")
                value = nxt
                i += 1
            flags.setdefault(name, []).append(value)
            if ends is not None:
                ends[name] = i + 1
        else:
            if value is not None and not value.startswith("\0"):
                raise ArgvError(f"option {word} takes no value")
            flags.setdefault(name, []).append(None)
            if value is not None:  # a bundle: -vv, -va amd64
                rest = value[1:]
                letter = rest[0]
                if letter not in COMMON_SHORT:
                    raise ArgvError(f"unrecognized option -{letter} in {word}")
                args = (*args[:i], "-" + rest, *args[i + 1 :])
                continue
        i += 1
    return positions, terminator


def _check_build_cache(flags: dict) -> None:
    given = [n for n in BUILD_CACHE if n in flags]
    if len(given) > 1:
        raise ArgvError(
            "options " + " and ".join("--" + n for n in sorted(given)) + " are exclusive"
        )


def parse(args: list[str] | tuple[str, ...]) -> Invocation:
    """Parse a ``ch-image`` command line (argv without argv[0]).

    Returns:
        An Invocation: ``verb`` ``pull`` with ``images`` the source operand,
        ``output_at`` the destination operand (None when not given),
        ``insert_at`` just after the word ``pull``, ``flags`` the options
        after it and ``global_flags`` those before it; ``verb`` None for
        every other subcommand, a missing one, and a help, version or
        dependencies request (nothing after the subcommand word is read).

    Raises:
        ArgvError: a line ch-image's argparse would refuse (an unknown or
            ambiguous option, a missing value, an extra or missing operand,
            two build-cache modes in one parser).
    """
    args = tuple(args)
    root: dict[str, list[str | None]] = {}
    found, _ = scan(args, 0, MAIN, root, stop_at_first=True)
    if any(n in root for n in EXITING) or not found:
        return Invocation(args=args, global_flags=root)
    _check_build_cache(root)
    at = found[0]
    if args[at] != "pull":
        return Invocation(args=args, global_flags=root)
    flags: dict[str, list[str | None]] = {}
    positions, _ = scan(args, at + 1, PULL, flags, stop_at_first=False)
    common = {
        "args": args,
        "verb": "pull",
        "insert_at": at + 1,
        "flags": flags,
        "global_flags": root,
    }
    if any(n in flags for n in EXITING):
        return Invocation(args=args, global_flags=root, flags=flags)
    _check_build_cache(flags)
    if not positions:
        raise ArgvError("ch-image pull needs an image reference")
    if len(positions) > 2:
        raise ArgvError(f"unrecognized argument {args[positions[2]]!r}")
    output_at = positions[1] if len(positions) == 2 else None
    return Invocation(images=(positions[0],), output_at=output_at, **common)


def arch_position(inv: Invocation) -> int:
    """Where an ``--arch`` option added to a parsed ``pull`` wins over the
    user's: just after the user's last ``-a/--arch`` after the word ``pull``
    (argparse: the last one wins), else just before the source operand, or
    before the ``--`` that precedes it. Inserted there it changes how no
    other word is read."""
    ends: dict[str, int] = {}
    _, term = scan(inv.args, inv.insert_at, PULL, {}, stop_at_first=False, ends=ends)
    if "arch" in ends:
        return ends["arch"]
    source = inv.images[0]
    return term if term is not None and term < source else source
