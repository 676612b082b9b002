"""Site and user policy: pin, prefer and avoid builds of an image.

A policy entry names builds by their digest, their build label (the CPU
target, e.g. ``zen4``) or the tag of an NFD compatibility set
(``preferred``). ``pin`` keeps only that build (it is refused if it does not
fit); ``prefer`` ranks matching builds first, an earlier entry stronger;
``avoid`` ranks them last. Policy comes before the image's own weights.
"""

from __future__ import annotations

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
    def names(digest: str, build: str, tags: tuple[str, ...]) -> frozenset[str]:
        """The names a build answers to."""
        return frozenset((digest, build, *tags))

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
