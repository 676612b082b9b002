"""A scanner with spf13/pflag's rules, driven by option tables.

Rules (spf13/pflag flag.go ``parseArgs``, ``parseLongArg``,
``parseSingleShortArg``; cobra command.go ``stripFlags``):

- ``--name=value`` or ``--name value`` for a value flag; a boolean flag (and a
  flag with an optional value, ``NoOptDefVal``) never takes the next token,
  only ``--name=value``.
- Short flags bundle: ``-itv/a:/b`` is ``-i -t -v /a:/b``; the first
  value-taking letter takes the rest of the token (``-v=x`` drops the ``=``)
  or else the next token.
- ``--`` ends flag parsing; a lone ``-`` is a positional.
- Non-interspersed commands (``SetInterspersed(false)``) stop at the first
  positional; interspersed ones keep reading flags after positionals.
- pflag has no abbreviations of long flags; an unknown flag is an error, so
  here it raises :class:`~shim.errors.ArgvError` (the shim then passes the
  command through untouched, never guessing).

Standard library only.
"""

from __future__ import annotations

from shim.errors import ArgvError


class FlagTable:
    """Which flags a command accepts. Names have no dashes; one-letter names are shorts.

    Attributes:
        value: flags that take a value (``--name v``, ``--name=v``, ``-n v``, ``-nv``).
        boolean: flags that take no value (only ``--name=false`` form sets one).
        optional: flags with an optional value (pflag ``NoOptDefVal``): like
            booleans, they never consume the next token.
        aliases: spelling -> canonical long name (``net`` -> ``network``, ``u`` -> ``user``).
    """

    __slots__ = ("value", "boolean", "optional", "aliases")

    def __init__(
        self,
        value: frozenset[str],
        boolean: frozenset[str],
        optional: frozenset[str] = frozenset(),
        aliases: dict[str, str] | None = None,
    ) -> None:
        self.value = value
        self.boolean = boolean
        self.optional = optional
        self.aliases = aliases or {}

    def __or__(self, other: FlagTable) -> FlagTable:
        return FlagTable(
            self.value | other.value,
            self.boolean | other.boolean,
            self.optional | other.optional,
            {**self.aliases, **other.aliases},
        )

    def takes_value(self, name: str) -> bool | None:
        """True: value flag; False: boolean or optional-value; None: unknown."""
        if name in self.value:
            return True
        if name in self.boolean or name in self.optional:
            return False
        return None

    def canonical(self, name: str) -> str:
        return self.aliases.get(name, name)


class Scan:
    """Result of scanning one stretch of argv.

    Attributes:
        positionals: positions of positional tokens seen (for a
            non-interspersed scan, only the one that stopped it).
        stop: position where scanning stopped (the first positional of a
            non-interspersed scan, the first token after ``--``, or len(args)).
        dashdash: position of a ``--`` that ended flag parsing, or None.
    """

    __slots__ = ("positionals", "stop", "dashdash")

    def __init__(self, stop: int = 0) -> None:
        self.positionals: list[int] = []
        self.stop = stop
        self.dashdash: int | None = None


def scan(
    args: tuple[str, ...] | list[str],
    start: int,
    table: FlagTable,
    flags: dict[str, list[str | None]],
    *,
    interspersed: bool,
) -> Scan:
    """Scan ``args[start:]`` as pflag would, recording flags into `flags`.

    Args:
        args: the whole command line (without argv[0]).
        start: where to begin.
        table: the flags this command accepts.
        flags: filled in place: canonical long name -> list of values.
        interspersed: keep reading flags after positionals.

    Returns:
        A Scan (see there).

    Raises:
        ArgvError: an unknown flag, or a value flag with no value.
    """
    result = Scan(stop=len(args))
    i = start
    n = len(args)
    while i < n:
        token = args[i]
        if token == "--":
            result.dashdash = i
            result.positionals.extend(range(i + 1, n))
            result.stop = i + 1
            return result
        if len(token) < 2 or token[0] != "-":
            result.positionals.append(i)
            if not interspersed:
                result.stop = i
                return result
            i += 1
            continue
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            kind = table.takes_value(name)
            if kind is None:
                raise ArgvError(f"unknown flag: --{name}")
            if kind and not eq:
                if i + 1 >= n:
                    raise ArgvError(f"flag needs an argument: --{name}")
                i += 1
                value = args[i]
            flags.setdefault(table.canonical(name), []).append(value if (eq or kind) else None)
            i += 1
            continue
        # a bundle of short flags
        shorts = token[1:]
        while shorts:
            letter = shorts[0]
            kind = table.takes_value(letter)
            if kind is None:
                raise ArgvError(f"unknown shorthand flag: {letter!r} in {token}")
            rest = shorts[1:]
            if kind:
                if rest:
                    value = rest[1:] if rest.startswith("=") else rest
                elif i + 1 < n:
                    i += 1
                    value = args[i]
                else:
                    raise ArgvError(f"flag needs an argument: {letter!r} in {token}")
                flags.setdefault(table.canonical(letter), []).append(value)
                break
            if rest.startswith("="):
                flags.setdefault(table.canonical(letter), []).append(rest[1:])
                break
            flags.setdefault(table.canonical(letter), []).append(None)
            shorts = rest
        i += 1
    return result


def find_subcommand(
    args: tuple[str, ...] | list[str],
    start: int,
    table: FlagTable,
    flags: dict[str, list[str | None]],
) -> int | None:
    """Position of the first non-flag token from `start` (cobra's ``Find`` after
    ``stripFlags``), recording the flags before it; None if there is none."""
    found = scan(args, start, table, flags, interspersed=False)
    if found.dashdash is not None or found.stop >= len(args):
        return None
    return found.stop


def cobra_invocation(
    args: tuple[str, ...],
    at: int | None,
    root: dict[str, list[str | None]],
    *,
    aliases: dict[tuple[str, ...], str],
    group_table: FlagTable,
    run: FlagTable,
    create: FlagTable,
    pull: FlagTable,
    one_pull_image: bool,
):
    """The rest of a cobra command line (podman, docker) from its command
    word at `at`: a group word (``container``, ``image``) and its verb, then
    ``pull`` (interspersed: flags may follow images) or ``run``/``create``
    (the first positional is IMAGE; everything after it is the container's).

    Args:
        args: the whole command line (without argv[0]).
        at: position of the command word, or None when there is none.
        root: the flags read before the command word (updated in place).
        aliases: command path -> canonical verb (``("container", "run")`` -> ``run``).
        group_table: flags allowed between a group word and its verb.
        run, create, pull: each verb's flags.
        one_pull_image: the runtime's pull takes exactly one image (docker);
            with several, the shim leaves the line to the runtime's own error.

    Returns:
        An Invocation (``verb`` None when the command is not intercepted).

    Raises:
        ArgvError: an unknown flag or a value flag with no value.
    """
    from shim.argv.invocation import Invocation

    if at is None:
        return Invocation(args=args, global_flags=root)
    path = (args[at],)
    groups = {p[0] for p in aliases if len(p) > 1}
    if args[at] in groups:
        second = find_subcommand(args, at + 1, group_table, root)
        if second is None:
            return Invocation(args=args, global_flags=root)
        path, at = (args[at], args[second]), second
    verb = aliases.get(path)
    if verb is None:
        return Invocation(args=args, global_flags=root)
    if verb != "pull":
        # run/create have their own --help, which hides the root's: `podman --help run IMG`
        # runs IMG; pull reads it (`podman --help pull IMG` prints help); docker alike.
        root.pop("help", None)
    flags: dict[str, list[str | None]] = {}
    if verb == "pull":
        found = scan(args, at + 1, pull, flags, interspersed=True)
        images = tuple(found.positionals)
        if one_pull_image and len(images) != 1:
            images = ()
        return Invocation(
            args=args, verb=verb, images=images, insert_at=at + 1, flags=flags, global_flags=root
        )
    found = scan(args, at + 1, run if verb == "run" else create, flags, interspersed=False)
    if not found.positionals:
        return Invocation(args=args, verb=verb, insert_at=at + 1, flags=flags, global_flags=root)
    image = found.positionals[0]
    return Invocation(
        args=args,
        verb=verb,
        images=(image,),
        insert_at=at + 1,
        flags=flags,
        global_flags=root,
        command_at=image + 1 if image + 1 < len(args) else None,
    )
