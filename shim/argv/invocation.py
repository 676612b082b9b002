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
        flags: every flag of the subcommand (after its word, before the
            image), by canonical long name, each with the list of values
            given (None for a bare boolean).
        global_flags: the flags before the subcommand word (root-local and
            persistent), in the same form.
        command_at: position in ``args`` where the container's own command
            starts (after the image), or None when there is none.
        output_at: position in ``args`` of an output-file operand the user
            gave (``apptainer pull OUTPUT URI``), or None.
    """

    __slots__ = (
        "args", "verb", "images", "insert_at", "flags", "global_flags", "command_at", "output_at",
    )  # fmt: skip

    def __init__(
        self,
        args: tuple[str, ...],
        verb: str | None = None,
        images: tuple[int, ...] = (),
        insert_at: int | None = None,
        flags: dict[str, list[str | None]] | None = None,
        command_at: int | None = None,
        global_flags: dict[str, list[str | None]] | None = None,
        output_at: int | None = None,
    ) -> None:
        self.args = args
        self.verb = verb
        self.images = images
        self.insert_at = insert_at
        self.flags = {} if flags is None else flags
        self.global_flags = {} if global_flags is None else global_flags
        self.command_at = command_at
        self.output_at = output_at

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Invocation({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Invocation):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def has(self, *names: str) -> bool:
        """True if any of the canonical long subcommand flags `names` was given."""
        return any(n in self.flags for n in names)

    def enabled(self, name: str, *, global_level: bool = False) -> bool:
        """True if boolean flag `name` is on: given, and its last value is not
        false (pflag's strconv.ParseBool: ``--rm=false`` turns it off)."""
        values = (self.global_flags if global_level else self.flags).get(name)
        if not values:
            return False
        last = values[-1]
        return last is None or last.lower() in ("1", "t", "true")

    def last(self, name: str) -> str | None:
        """The last value given for flag `name` (pflag: the last one wins), or None."""
        values = self.flags.get(name)
        return values[-1] if values else None
