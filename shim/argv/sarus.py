"""Sarus's command-line grammar: find the command and the image operand.

A small scanner of its own (Sarus is C++ with boost::program_options, not
pflag), mirroring eth-cscs/sarus src/cli/Utility.cpp
``groupOptionsAndPositionalArguments`` word for word (see the docstring of
:mod:`shim.argv.sarus_table`), then what boost's ``unix_style`` parse of the
option words accepts (boostorg/program_options src/cmdline.cpp,
value_semantic.cpp, variables_map.cpp). The same split runs twice: over the
global options (``--debug --verbose --help --version``, long-only booleans)
up to the command word, then over the command's options up to its first
positional, the image.

Rules (a word "is an option" when it is ``-X...`` or ``--X...`` with X not a
dash; a lone ``-``, a bare ``--`` and ``---x`` are positionals):

* the first positional ends the options: for ``run`` it is the image, and
  every word after it is the container's (an option there goes to the
  container); ``pull`` takes exactly one positional, so any word after the
  image is an error ("Too many arguments"). **A bare ``--`` is the image.**
* ``--name=value`` keeps its value; the name may be an unambiguous prefix
  (boost ``allow_guessing``: ``--ent=/x``). An empty value (``--entrypoint=``)
  is an error (boost ``empty_adjacent_parameter``), and so is ``=value`` on a
  boolean.
* ``--name`` spelled in full: a value option takes the next word unless that
  word is a single-dash option word (``-x...``): ``--``, ``-``, ``--other``
  and ``""`` are all taken as values. A boolean takes nothing.
* ``--prefix`` (an abbreviation, no ``=``): Sarus's split does not know
  abbreviations and consumes nothing; boost then reads a boolean's prefix as
  that boolean (``--cent``), while a value option's prefix finds its value
  missing (or steals a later option word). The shim accepts the booleans and
  refuses the rest.
* ``-abc``: letters are read one by one; booleans may be bundled (``-tm``);
  the first value letter takes the rest of the word (``-w/dir``), else the
  next word under the rule above.
* an option Sarus stores once (every one except ``--annotation``,
  ``--device``, ``-e/--env`` and ``--mount``, which accumulate) given twice is
  boost's ``multiple_occurrences`` error: ``-tt`` and ``--tty -t`` included.

Every line Sarus itself would reject while reading its options (an unknown
or ambiguous option, a missing value, a repeated option, options or extra
words after ``pull``'s image) raises :class:`~shim.errors.ArgvError`: the
shim then runs it unchanged and Sarus reports the error. A global
``--help``/``--version`` overrides the rest of the line (Sarus prints help or
its version): not intercepted. Commands other than ``run`` and ``pull`` are
not read past their name. Sarus commands have no ``--help`` of their own
(``sarus help run`` prints it), so ``sarus run --help IMG`` is an unknown
option.

Standard library only.
"""

from __future__ import annotations

from shim.argv import sarus_table as T
from shim.argv.invocation import Invocation
from shim.errors import ArgvError

#: Options Sarus declares as ``value<std::vector<std::string>>``: they may repeat.
REPEATABLE = frozenset({"annotation", "device", "env", "mount"})


class _Table:
    """One command's options: long names (value / bool) and short letters."""

    __slots__ = ("value", "boolean", "short", "longs")

    def __init__(
        self, value: frozenset[str], boolean: frozenset[str], short: dict[str, str]
    ) -> None:
        self.value = frozenset(n for n in value if len(n) > 1)
        self.boolean = frozenset(n for n in boolean if len(n) > 1)
        self.short = short
        self.longs = tuple(sorted(self.value | self.boolean))

    def long_name(self, name: str, word: str) -> str:
        """boost's lookup of a long name: exact, else an unambiguous prefix."""
        if name in self.value or name in self.boolean:
            return name
        matches = [n for n in self.longs if n.startswith(name)] if name else []
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ArgvError(f"unknown option {word}")
        raise ArgvError(
            f"option {word} is ambiguous (" + ", ".join("--" + m for m in matches) + ")"
        )


GLOBAL = _Table(T.GLOBAL_VALUE, T.GLOBAL_BOOL, {})
RUN = _Table(
    T.RUN_VALUE,
    T.RUN_BOOL,
    {"e": "env", "m": "mpi", "n": "name", "t": "tty", "w": "workdir"},
)
PULL = _Table(T.PULL_VALUE, T.PULL_BOOL, {"u": "username"})
#: The commands the shim intercepts.
VERBS = {"run": RUN, "pull": PULL}


def _dash(word: str) -> bool:
    """Sarus's ``hasDashPrefix``: ``-X...`` with X not a dash."""
    return len(word) > 1 and word[0] == "-" and word[1] != "-"


def _dash_dash(word: str) -> bool:
    """Sarus's ``hasDashDashPrefix``: ``--X...`` with X not a dash."""
    return len(word) > 2 and word[:2] == "--" and word[2] != "-"


def is_option(word: str) -> bool:
    """Sarus's ``isOption``: everything else is a positional."""
    return _dash(word) or _dash_dash(word)


def _add(flags: dict[str, list[str | None]], name: str, value: str | None, word: str) -> None:
    values = flags.setdefault(name, [])
    if values and name not in REPEATABLE:
        raise ArgvError(f"option --{name} given more than once ({word})")
    values.append(value)


def _next_value(args: tuple[str, ...], i: int, name: str, word: str) -> str:
    """The next word as the value of `name`, where Sarus's split takes it."""
    if i + 1 >= len(args) or _dash(args[i + 1]):
        raise ArgvError(f"option {word} needs a value")
    return args[i + 1]


def scan(args: tuple[str, ...], start: int, table: _Table, flags: dict) -> int | None:
    """Read the options from ``args[start]`` on into `flags` (canonical long
    name -> values, None for a boolean). Returns the index of the first
    positional, or None when there is none.

    Raises:
        ArgvError: a word Sarus (boost) would reject.
    """
    i = start
    while i < len(args):
        word = args[i]
        if not is_option(word):
            return i
        if _dash_dash(word):
            body = word[2:]
            if "=" in body:
                name, _, value = body.partition("=")
                canonical = table.long_name(name, word)
                if canonical in table.boolean:
                    raise ArgvError(f"option --{canonical} takes no value ({word})")
                if not value:
                    raise ArgvError(f"option {word} has an empty value after '='")
                _add(flags, canonical, value, word)
            elif body in table.value:
                _add(flags, body, _next_value(args, i, body, word), word)
                i += 1
            elif body in table.boolean:
                _add(flags, body, None, word)
            else:
                canonical = table.long_name(body, word)
                if canonical in table.value:
                    raise ArgvError(
                        f"abbreviated option {word} takes a value: Sarus reads it only as "
                        f"{word}=VALUE"
                    )
                _add(flags, canonical, None, word)
            i += 1
            continue
        letters = word[1:]
        for k, letter in enumerate(letters):
            canonical = table.short.get(letter)
            if canonical is None:
                raise ArgvError(f"unknown option -{letter} in {word}")
            if canonical in table.boolean:
                _add(flags, canonical, None, word)
                continue
            rest = letters[k + 1 :]
            if rest:
                _add(flags, canonical, rest, word)
            else:
                _add(flags, canonical, _next_value(args, i, canonical, word), word)
                i += 1
            break
        i += 1
    return None


def parse(args: list[str] | tuple[str, ...]) -> Invocation:
    """Parse a Sarus command line (argv without argv[0]).

    Returns:
        An Invocation: ``verb`` is ``run`` or ``pull``, or None for every
        other command (then only the words up to the command were read),
        and for a global ``--help``/``--version``.

    Raises:
        ArgvError: a line Sarus would refuse while reading its options.
    """
    args = tuple(args)
    root: dict[str, list[str | None]] = {}
    at = scan(args, 0, GLOBAL, root)
    if at is None or "help" in root or "version" in root or args[at] not in VERBS:
        return Invocation(args=args, global_flags=root)
    verb = args[at]
    flags: dict[str, list[str | None]] = {}
    image = scan(args, at + 1, VERBS[verb], flags)
    common = {"args": args, "verb": verb, "insert_at": at + 1, "flags": flags, "global_flags": root}
    if image is None:
        return Invocation(**common)
    if verb == "pull":
        if image + 1 < len(args):
            raise ArgvError(
                f"sarus pull takes one image and no options after it ({args[image + 1]!r})"
            )
        return Invocation(images=(image,), **common)
    command_at = image + 1 if image + 1 < len(args) else None
    return Invocation(images=(image,), command_at=command_at, **common)
