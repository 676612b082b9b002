"""apptainer's (and singularity's) command-line grammar: find the command and
the image operand.

The option tables and every rule used here are in
:mod:`shim.argv.apptainer_table` (sources cited there). In short:

- ``apptainer [GLOBAL] COMMAND [FLAGS] ARGS``: global flags (``-d``, ``-q``,
  ``-s``/``--silent``, ``-c``/``--config FILE``...) are root-local, accepted
  only before the command word; the command's own flags follow it.
- Every command is ``SetInterspersed(false)``: the first positional ends
  option parsing and everything after it is an argument (for run/exec/shell/
  test/instance, the container's own). A ``--`` before it ends options too.
- ``-s`` is ``--silent`` globally but ``--shell PATH`` in ``shell`` (and
  ``--sandbox`` in ``build``); ``-c`` is ``--config FILE`` globally but
  ``--contain`` in the action commands.
- cobra's ``Traverse`` finds the command word with a cruder guess than pflag:
  a ``--`` before the command is read as a flag that takes the command word as
  its value, and a bundle ending in a value flag (``-qc FILE``) does not take
  the next word. apptainer rejects such lines; the shim raises ArgvError for
  them (the caller runs them unchanged, and apptainer reports its own error).

Image operand per verb: ``run``/``exec``/``shell``/``test``/``instance
start``/``instance run``: the first positional; ``pull [output] URI``
(1 or 2 positionals): the last, the first being the output file
(:attr:`Invocation.output_at`); ``build IMAGE-PATH SPEC`` (exactly 2): the
second. A wrong number of positionals leaves no image (apptainer prints its
usage error itself).

Standard library only.
"""

from __future__ import annotations

from shim.argv import apptainer_table as T
from shim.argv.invocation import Invocation
from shim.argv.pflag import FlagTable, scan
from shim.errors import ArgvError

_GLOBAL_ALIASES = {
    "c": "config",
    "d": "debug",
    "h": "help",
    "q": "quiet",
    "s": "silent",
    "v": "verbose",
}
#: Spellings the shim reads by another name, in every command. ``--nohttps``
#: (deprecated) sets the same variable as ``--no-https``.
_COMMON_ALIASES = {"h": "help", "nohttps": "no-https"}
_ACTION_ALIASES = {
    **_COMMON_ALIASES,
    "B": "bind", "C": "containall", "H": "home", "S": "scratch", "W": "workdir", "c": "contain",
    "e": "cleanenv", "f": "fakeroot", "i": "ipc", "n": "net", "o": "overlay", "p": "pid",
    "u": "userns", "w": "writable",
}  # fmt: skip
_SHELL_ALIASES = {**_ACTION_ALIASES, "s": "shell"}
_PULL_ALIASES = {**_COMMON_ALIASES, "F": "force", "U": "allow-unsigned"}
_BUILD_ALIASES = {
    **_COMMON_ALIASES,
    "B": "bind", "F": "force", "T": "notest", "d": "detached", "e": "encrypt", "f": "fakeroot",
    "r": "remote", "s": "sandbox", "u": "update",
}  # fmt: skip

GLOBAL = FlagTable(T.GLOBAL_VALUE, T.GLOBAL_BOOL, T.OPTIONAL_VALUE, _GLOBAL_ALIASES)

_VERB_ALIASES = {
    "build": _BUILD_ALIASES,
    "exec": _ACTION_ALIASES,
    "instance run": _ACTION_ALIASES,
    "instance start": _ACTION_ALIASES,
    "pull": _PULL_ALIASES,
    "run": _ACTION_ALIASES,
    "shell": _SHELL_ALIASES,
    "test": _ACTION_ALIASES,
}
#: The verbs the shim intercepts, with their flag tables.
TABLES: dict[str, FlagTable] = {
    verb: FlagTable(*T.VERB_FLAGS[verb], T.OPTIONAL_VALUE, aliases)
    for verb, aliases in _VERB_ALIASES.items()
}
#: Command paths -> verb (``inspect``/``run-help`` read local images only: not intercepted).
VERBS: dict[tuple[str, ...], str] = {
    path: verb for path, verb in T.IMAGE_COMMANDS.items() if verb in TABLES
}
#: Verbs whose image is followed by the container's own arguments.
_ACTION_VERBS = frozenset({"run", "exec", "shell", "test"})
_INSTANCE_VERBS = frozenset({"instance start", "instance run"})


def _traverse_guess(args: tuple[str, ...]) -> int | None:
    """Where cobra's ``Command.Traverse`` (the root has ``TraverseChildren``)
    takes the command word to be (cobra command.go ``Traverse``): ``--name``
    takes the next word unless it is a known boolean, ``-x`` likewise, any
    other ``-...`` token stands alone, and a word after a value-taking flag is
    its value, whatever it looks like."""
    in_flag = False
    for i, token in enumerate(args):
        if token.startswith("--") and "=" not in token:
            in_flag = not _is_bool(token[2:], long=True)  # "--" alone: a flag named ""
            continue
        if (
            token.startswith("-")
            and "=" not in token
            and len(token) == 2
            and not _is_bool(token[1])
        ):
            in_flag = True
            continue
        if in_flag:
            in_flag = False
            continue
        if (len(token) >= 3 and token.startswith("--")) or (
            len(token) >= 2 and token[0] == "-" and token[1] != "-"
        ):
            continue
        return i
    return None


def _is_bool(name: str, *, long: bool = False) -> bool:
    """cobra's ``hasNoOptDefVal``/``shortHasNoOptDefVal`` on the root's flags:
    only a known boolean has a NoOptDefVal; an unknown name has none."""
    if long and len(name) < 2:
        return False
    return GLOBAL.takes_value(name) is False


def _command_word(args: tuple[str, ...], root: dict[str, list[str | None]]) -> int | None:
    """Position of the command word, recording the global flags before it in
    `root`; None when there is no command word.

    Raises:
        ArgvError: an unknown global flag, a value flag without its value, or
            a line where cobra's Traverse and pflag disagree on the command
            word (apptainer rejects it).
    """
    guess = _traverse_guess(args)
    end = len(args) if guess is None else guess
    found = scan(args[:end], 0, GLOBAL, root, interspersed=False)
    if found.dashdash is not None:
        raise ArgvError("a `--` before the command word takes the command as its value")
    if found.positionals:
        where = args[found.positionals[0]]
        raise ArgvError(f"apptainer would not take {where!r} as the command word")
    return guess


def parse(args: list[str] | tuple[str, ...]) -> Invocation:
    """Parse an apptainer/singularity command line (argv without argv[0]).

    Returns:
        An Invocation. ``verb`` is one of run, exec, shell, test, pull, build,
        ``instance start``, ``instance run``, or None for every other command
        (then only the words up to the command were read). ``images`` holds the
        image operand's position (empty when the command has none or the wrong
        number of positionals); ``output_at`` the output file of ``pull``.

    Raises:
        ArgvError: a flag unknown to the tables, a value flag with no value,
            or a root-level line apptainer itself rejects, anywhere the shim
            had to read.
    """
    args = tuple(args)
    root: dict[str, list[str | None]] = {}
    at = _command_word(args, root)
    if at is None:
        return Invocation(args=args, global_flags=root)
    path: tuple[str, ...] = (args[at],)
    if args[at] == "instance" and at + 1 < len(args):
        path, at = (args[at], args[at + 1]), at + 1
    verb = VERBS.get(path)
    if verb is None:
        return Invocation(args=args, global_flags=root)
    flags: dict[str, list[str | None]] = {}
    found = scan(args, at + 1, TABLES[verb], flags, interspersed=False)
    positionals = list(range(found.stop, len(args)))
    image = output = command = None
    if verb == "pull":
        if len(positionals) in (1, 2):
            image = positionals[-1]
            output = positionals[0] if len(positionals) == 2 else None
    elif verb == "build":
        if len(positionals) == 2:
            image = positionals[1]
    elif positionals:
        image = positionals[0]
        first = image + (2 if verb in _INSTANCE_VERBS else 1)
        command = first if first < len(args) else None
    return Invocation(
        args=args,
        verb=verb,
        images=() if image is None else (image,),
        insert_at=at + 1,
        flags=flags,
        command_at=command,
        global_flags=root,
        output_at=output,
    )
