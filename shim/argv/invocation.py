"""The parsed shape of one runtime command line."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Invocation:
    """Where the interesting parts of a runtime command line are.

    Attributes:
        args: the command line without argv[0], exactly as given.
        verb: canonical intercepted subcommand (``run``, ``create``, ``pull``),
            or None when the command is not intercepted (pass through).
        images: positions in ``args`` of the image operands, in order.
        insert_at: position in ``args`` where the shim may insert its own
            subcommand flags (just after the subcommand word), or None.
        flags: every flag seen before the image, by canonical long name,
            each with the list of values given (None for a bare boolean).
        command_at: position in ``args`` where the container's own command
            starts (after the image), or None when there is none.
    """

    args: tuple[str, ...]
    verb: str | None = None
    images: tuple[int, ...] = ()
    insert_at: int | None = None
    flags: dict[str, list[str | None]] = field(default_factory=dict)
    command_at: int | None = None

    def has(self, *names: str) -> bool:
        """True if any of the canonical long flag `names` was given."""
        return any(n in self.flags for n in names)

    def last(self, name: str) -> str | None:
        """The last value given for flag `name` (pflag: the last one wins), or None."""
        values = self.flags.get(name)
        return values[-1] if values else None
