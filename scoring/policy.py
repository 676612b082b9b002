"""Site and user policy: pin, prefer and avoid builds of an image.

A policy entry names builds by their digest, their build label
(:mod:`scoring.labels`: ``zen4``, ``x86_64_v3+cuda12.2+sm90``), the CPU
target alone where no build's label is that target (``x86_64_v3`` for the
only ``x86_64_v3+...`` build), ``LABEL@XXXXXXXX`` (8 hex digits of the
digest), or the tag of an NFD compatibility set (``preferred``). ``pin``
keeps only the build it names (it is refused if it does not fit; a pin that
names several builds is an error, :meth:`Policy.pin_error`); ``prefer``
ranks matching builds first, an earlier entry stronger; ``avoid`` ranks them
last. Policy comes before the image's own weights.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict


class Policy(BaseModel):
    """Policy for one image (the shim picks the entry whose glob matches)."""

    model_config = ConfigDict(frozen=True)

    pin: str | None = None
    prefer: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    #: who set it: "site", "user" or "environment" (IMAGEFIT_PIN); "" unknown
    source: str = ""

    @staticmethod
    def names(
        digest: str, build: str, tags: tuple[str, ...], aliases: frozenset[str] = frozenset()
    ) -> frozenset[str]:
        """The names a build answers to: digest, label, NFD set tags and the
        label's aliases (:class:`scoring.labels.BuildName`)."""
        return frozenset((digest, build, *tags, *aliases))

    def who(self) -> str:
        """Who set the policy, for messages: ``site policy``, ``user policy``
        or ``IMAGEFIT_PIN``."""
        return {"user": "user policy", "environment": "IMAGEFIT_PIN"}.get(
            self.source, "site policy"
        )

    def pin_error(self, builds: Sequence[tuple[str, str, frozenset[str]]]) -> str | None:
        """One line when the pin names more than one build of the index, else None.

        Args:
            builds: ``(label, digest, names)`` of every build of the index
                (names: :func:`scoring.labels.policy_names`, with every NFD
                set tag attached, whichever host it matches). Entries with
                one digest (a manifest listed twice) are one build.

        Returns:
            e.g. ``site policy pin "x86_64_v3" names 2 builds:
            x86_64_v3+cuda12.2+sm90, x86_64_v3+mpich-abi; pin one label or digest``.
        """
        if self.pin is None:
            return None
        found: dict[str, str] = {}
        for label, digest, names in builds:
            if self.pin in names:
                found.setdefault(digest, label)
        if len(found) < 2:
            return None
        return (
            f'{self.who()} pin "{self.pin}" names {len(found)} builds: '
            f"{', '.join(found.values())}; pin one label or digest"
        )

    def pinned_out(self, names: frozenset[str]) -> bool:
        """True when a pin exists and names another build."""
        return self.pin is not None and self.pin not in names

    def rank(self, names: frozenset[str]) -> int:
        """Policy component of the score: len(prefer)-i for the i-th preferred
        entry that matches, -1 for an avoided build, 0 otherwise."""
        for i, item in enumerate(self.prefer):
            if item in names:
                return len(self.prefer) - i
        return -1 if any(item in names for item in self.avoid) else 0
