"""The parsed shape of one runtime command line. (Plain classes, not
dataclasses: ``dataclasses`` costs the hot path ~10 ms of imports.)"""

from __future__ import annotations


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

    __slots__ = ("args", "verb", "images", "insert_at", "flags", "command_at")

    def __init__(
        self,
        args: tuple[str, ...],
        verb: str | None = None,
        images: tuple[int, ...] = (),
        insert_at: int | None = None,
        flags: dict[str, list[str | None]] | None = None,
        command_at: int | None = None,
    ) -> None:
        self.args = args
        self.verb = verb
        self.images = images
        self.insert_at = insert_at
        self.flags = {} if flags is None else flags
        self.command_at = command_at

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Invocation({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Invocation):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def has(self, *names: str) -> bool:
        """True if any of the canonical long flag `names` was given."""
        return any(n in self.flags for n in names)

    def last(self, name: str) -> str | None:
        """The last value given for flag `name` (pflag: the last one wins), or None."""
        values = self.flags.get(name)
        return values[-1] if values else None
