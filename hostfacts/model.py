"""The host facts model: one frozen, versioned value with a JSON round trip.

The JSON form (``HostFacts.model_dump_json()``) is what ``imagefit facts --json``
prints and what ``IMAGEFIT_FACTS=FILE`` reads back, so a node class can be
described once and its decisions reproduced anywhere. ``schema_version`` is
bumped on any incompatible change; readers refuse versions they do not know.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class CpuFacts(BaseModel):
    """The host CPU as archspec sees it.

    Names are archspec target names (archspec-json ``microarchitectures.json``),
    the same names image authors put in the CPU target annotation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    architecture: str = Field(
        description="Kernel machine name as `uname -m` prints it: x86_64, aarch64, ppc64le, riscv64."
    )
    target: str = Field(description="archspec's most specific target for this host, e.g. 'zen4'.")
    vendor: str = Field(
        description="Vendor string: GenuineIntel, AuthenticAMD, ARM, IBM, generic..."
    )
    generic: str = Field(
        description="The generic level of `target`: x86_64_v3, armv9.0a, ppc64le... "
        "More robust than `target` on VMs that mask an optional flag."
    )
    ancestors: tuple[str, ...] = Field(
        description="Every other target this host can run, most specific (deepest in "
        "archspec's DAG) first; ties in archspec's own order."
    )
    flags: tuple[str, ...] = Field(
        description="Raw feature flags of the first processor in /proc/cpuinfo "
        "('flags' on x86, 'Features' on Arm), sorted."
    )
    source: str = Field(description="Where the CPU facts came from, e.g. '/proc/cpuinfo'.")

    def can_run(self, target: str) -> bool:
        """True if code built for archspec target `target` runs on this host
        (it is the host target or one of its ancestors)."""
        return target == self.target or target in self.ancestors


class HostFacts(BaseModel):
    """Everything imagefit knows about one host (or one node class).

    Shapes: see the field descriptions; all names are strings, all lists are
    tuples (the value is immutable and hashable by its JSON form).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    hostname: str = Field(default="", description="Node name the facts were probed on, or ''.")
    os: str = Field(default="linux", description="GOOS-style operating system name.")
    cpu: CpuFacts
