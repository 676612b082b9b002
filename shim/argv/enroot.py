"""enroot's command-line grammar: the command word, its options, the URI.

Mirrors NVIDIA/enroot ``enroot.in`` (enroot 3.1 to 4.1): the first word is
the command (``command="$1"; shift``; enroot has no global options), and
each command reads its options with a ``while``/``case`` loop of its own
(``enroot::import``, ``enroot::load``, ``enroot::digest``):

* ``-a|--arch VALUE``, ``--arch=VALUE`` (import, load, digest),
  ``-o|--output VALUE``, ``--output=VALUE`` (import), ``-n|--name VALUE``,
  ``--name=VALUE`` and the boolean ``-f|--force`` (load). A value option
  takes the next word whatever it is (``--``, ``-x``), but not an empty or
  missing one (``[ -z "${2-}" ] && enroot::usage ... 1``), and ``--arch=``
  with nothing after ``=`` is the same usage error. Given twice, the last
  one wins (a plain assignment).
* ``-h|--help``: the command's usage, exit 0 (recorded as ``help``).
* ``--`` ends the options; any other word ``-?*`` (``-fa``, ``--nope``,
  ``-ax86_64``: enroot bundles nothing) is a usage error (exit 1); the first
  other word (``-`` alone included) ends the options too.
* exactly one URI must follow (``[ $# -ne 1 ] && enroot::usage ... 1``).

Every line enroot itself refuses raises :class:`~shim.errors.ArgvError`:
the shim runs it unchanged and enroot prints its usage. The commands the
shim reads are ``import``, ``load`` and ``digest`` (their URI is a registry
image); every other command (``create``, ``start``, ``batch``, ``export``,
``bundle``, ``exec``, ``list``, ``remove``, ``info``, ``version``, ``help``)
is not read past its name.

Standard library only.
"""

from __future__ import annotations

from shim.argv.invocation import Invocation
from shim.errors import ArgvError

#: Per command: value options (short letter -> long name) and booleans.
VALUE = {
    "import": {"a": "arch", "o": "output"},
    "load": {"a": "arch", "n": "name"},
    "digest": {"a": "arch"},
}
BOOLEAN = {"import": {}, "load": {"f": "force"}, "digest": {}}
#: The commands the shim reads.
VERBS = frozenset(VALUE)


def _names(verb: str) -> tuple[dict[str, str], dict[str, str]]:
    """(word -> long name) for the value options and for the booleans of `verb`."""
    value = {}
    for letter, name in VALUE[verb].items():
        value["-" + letter] = value["--" + name] = name
    boolean = {"-h": "help", "--help": "help"}
    for letter, name in BOOLEAN[verb].items():
        boolean["-" + letter] = boolean["--" + name] = name
    return value, boolean


def parse(args: list[str] | tuple[str, ...]) -> Invocation:
    """Parse an enroot command line (argv without argv[0]).

    Returns:
        An Invocation: ``verb`` is ``import``, ``load`` or ``digest`` with
        ``images`` the position of the URI and ``insert_at`` 1 (after the
        command word), or None for every other command. ``flags`` maps long
        names to the values given (None for a boolean), ``help`` included.

    Raises:
        ArgvError: a line enroot would answer with its usage and exit 1.
    """
    args = tuple(args)
    if not args or args[0] not in VERBS:
        return Invocation(args=args)
    verb = args[0]
    value, boolean = _names(verb)
    flags: dict[str, list[str | None]] = {}
    i = 1
    while i < len(args):
        word = args[i]
        if word in boolean:
            flags.setdefault(boolean[word], []).append(None)
            if boolean[word] == "help":  # enroot::usage CMD 0: nothing after it is read
                return Invocation(args=args, verb=verb, insert_at=1, flags=flags)
            i += 1
            continue
        if word in value:
            if i + 1 >= len(args) or not args[i + 1]:
                raise ArgvError(f"enroot {verb}: option {word} needs a value")
            flags.setdefault(value[word], []).append(args[i + 1])
            i += 2
            continue
        name, eq, given = word.partition("=")
        if eq and name.startswith("--") and value.get(name) == name[2:]:
            if not given:
                raise ArgvError(f"enroot {verb}: option {word} has an empty value")
            flags.setdefault(name[2:], []).append(given)
            i += 1
            continue
        if word == "--":
            i += 1
            break
        if len(word) > 1 and word[0] == "-":
            raise ArgvError(f"enroot {verb}: unknown option {word}")
        break
    if len(args) - i != 1:
        raise ArgvError(f"enroot {verb} takes exactly one URI ({len(args) - i} given)")
    return Invocation(args=args, verb=verb, images=(i,), insert_at=1, flags=flags)
