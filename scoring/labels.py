"""Build labels: one short name per build of an index, unique within it,
that says what the build is. Pure.

A label is the build's CPU target, then what else it needs, joined by ``+``:

- CPU target: the annotation (``hardware.cpu.target.microarch``, or
  compspec's key), else a ``platform.features`` token (``cpu:zen4`` or a bare
  archspec name), else the ``variant``'s generic level (amd64 ``v3`` ->
  ``x86_64_v3``). A build with none of these is named by the tag of its
  first NFD set, else by its platform (``linux/amd64``).
- GPU: ``cuda12.2`` (the CUDA version; a range other than one lower bound is
  kept as written without spaces: ``cuda>=12,<13``), ``sm80,90`` (compute
  capabilities; ``ptx`` after one given as ``X.Y+``, which newer GPUs
  JIT-compile: ``sm70ptx``), ``nvidia`` (vendor alone), ``gfx90a,gfx942`` or
  ``amd`` (AMD); from tokens, ``sm90`` (``nv-compute-capability-9-0``) and
  ``nvidia535.104`` (``nvidia-535-104``: a driver version).
- MPI: the implementation (``openmpi``, ``craympich``), else the ABI
  (``mpich-abi``, ``openmpi-abi``, ``mpi-abi``).
- Fabric: ``cxi``, ``verbs``... (none when ``tcp`` is among them: it runs
  anywhere).

Examples: ``zen4``, ``x86_64_v3+cuda12.2+sm80,90``, ``zen4+mpich-abi``,
``x86_64_v3+cxi``, ``linux/amd64``.

Builds whose labels are still equal (they differ only in versions, flags,
kernel, glibc, weight or NFD sets) all get ``@`` and the first 8 hex digits of
their manifest digest (``zen4@1a2b3c4d``); entries that also share the digest
(the same manifest listed twice) then get ``#POSITION``. The result depends
on the index alone, never on the host.

Policy names (:func:`names`): a build answers to its digest, its label, the
tags of the NFD sets attached to it or to the index, ``BASE@XXXXXXXX`` (its
label before any suffix, ``@``, 8 hex digits of its digest) and its CPU
target alone when no build's label is that target (so ``pin = "x86_64_v3"``
names the CPU build on an index with a ``x86_64_v3`` and a
``x86_64_v3+cuda12.2+sm90`` build, and both builds on an index with only
``x86_64_v3+mpich-abi`` and ``x86_64_v3+openmpi-abi``: a pin that names
several builds is an error, :meth:`scoring.policy.Policy.pin_error`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from scoring import vocabulary
from scoring.index import Candidate

_CC_TOKEN = re.compile(r"^nv-compute-capability-(\d+)-(\d+)$")
_DRIVER_TOKEN = re.compile(r"^nvidia-(\d+)-(\d+)$")
_LOWER_BOUND = re.compile(r"^\s*(?:>=)?\s*v?([0-9][0-9A-Za-z.+_-]*)\s*$")


@dataclass(frozen=True)
class BuildName:
    """One build's names.

    Attributes:
        label: unique within the index (``x86_64_v3+cuda12.2+sm90``).
        cpu: the CPU target part (``x86_64_v3``), or None when the build names none.
        aliases: the other names a policy may use for it (see the module docstring).
    """

    label: str
    cpu: str | None
    aliases: frozenset[str]


def _list(value: str) -> list[str]:
    return [v for v in re.split(r"[\s,]+", value.strip()) if v]


def _version(value: str) -> str:
    """``>=12.2`` and ``12.2`` as ``12.2``; any other range without spaces."""
    match = _LOWER_BOUND.match(value)
    return match[1] if match and "," not in value else re.sub(r"\s+", "", value)


def cpu_part(candidate: Candidate) -> str | None:
    """The build's CPU target: annotation, else ``platform.features`` token,
    else the variant's generic level; None when it names none."""
    from scoring.cpu import annotated_target
    from scoring.platform import variant_target
    from scoring.tokens import token_target

    target = annotated_target(candidate.annotations)
    if target:
        return target
    plat = candidate.platform
    if plat is None:
        return None
    # the token ranking uses (the deepest target named), so label and rank agree
    return token_target(tuple(plat.features)) or variant_target(plat)


def _gpu_parts(candidate: Candidate) -> list[str]:
    a = candidate.annotations
    get = lambda key: a.get(key, "").strip()  # noqa: E731
    vendor = get(vocabulary.GPU_VENDOR).lower()
    parts = []
    if get(vocabulary.CUDA_VERSION):
        parts.append("cuda" + _version(get(vocabulary.CUDA_VERSION)))
    if get(vocabulary.COMPUTE_CAPABILITIES):
        codes = []
        for cc in _list(get(vocabulary.COMPUTE_CAPABILITIES)):
            ptx = cc.endswith("+")
            codes.append(cc.rstrip("+").replace(".", "") + ("ptx" if ptx else ""))  # sm90a, sm100f
        if codes:
            parts.append("sm" + ",".join(codes))
    if vendor == "nvidia" and not parts:
        parts.append("nvidia")
    if _list(get(vocabulary.AMD_GFX)):
        parts.append(",".join(_list(get(vocabulary.AMD_GFX))).lower())
    elif vendor == "amd":
        parts.append("amd")
    if candidate.platform is not None:
        for token in candidate.platform.features:
            if match := _CC_TOKEN.match(token):
                parts.append(f"sm{match[1]}{match[2]}")
            elif match := _DRIVER_TOKEN.match(token):
                parts.append(f"nvidia{match[1]}.{match[2]}")
    return parts


def _mpi_part(annotations: dict[str, str]) -> list[str]:
    implementation = _list(annotations.get(vocabulary.MPI_IMPLEMENTATION, ""))
    if implementation:
        return [",".join(implementation).lower()]
    abi = [v.lower() for v in _list(annotations.get(vocabulary.MPI_ABI, ""))]
    if abi:
        return [",".join(v if v == "mpi-abi" else f"{v}-abi" for v in abi)]
    return []


def _fabric_part(annotations: dict[str, str]) -> list[str]:
    fabrics = [f.lower() for f in _list(annotations.get(vocabulary.FABRIC, ""))]
    return [",".join(fabrics)] if fabrics and "tcp" not in fabrics else []


def base_label(candidate: Candidate, tags: Sequence[str] = (), cpu: str | None = "") -> str:
    """The label of one build before it is made unique within its index
    (the module docstring says how): e.g. ``x86_64_v3+cuda12.2+sm90``.
    `tags`: the tags of the NFD sets attached to the build or to the index;
    `cpu`: its :func:`cpu_part` when already known."""
    cpu = cpu_part(candidate) if cpu == "" else cpu
    if cpu:
        head = cpu
    elif tags:
        head = tags[0]
    elif candidate.platform is not None:
        head = str(candidate.platform)
    else:
        return candidate.digest[:19]
    a = candidate.annotations
    label = "+".join([head, *_gpu_parts(candidate), *_mpi_part(a), *_fabric_part(a)])
    # "@" and "#" start the suffixes that make labels unique (name_builds): an
    # index's own words (a CPU target "zen4@1a2b3c4d#1") must not imitate one
    return label.replace("@", "-").replace("#", "-")


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:8]


def name_builds(
    candidates: Sequence[Candidate], tags: Sequence[Sequence[str]] | None = None
) -> tuple[BuildName, ...]:
    """The names of every build of an index, in index order.

    Args:
        candidates: the index's descriptors (:func:`scoring.parse_index`).
        tags: for each candidate, the tags of the NFD sets attached to it or
            to the index (none when omitted).

    Returns:
        One :class:`BuildName` per candidate; labels unique within the index
        (``@XXXXXXXX`` from the digest, then ``#POSITION``, where base labels
        are equal).
    """
    tags = tags if tags is not None else [()] * len(candidates)
    cpus = [cpu_part(c) for c in candidates]
    bases = [base_label(c, t, u) for c, t, u in zip(candidates, tags, cpus, strict=True)]
    counts = Counter(bases)  # linear: an index may hold thousands of builds
    labels = [
        f"{b}@{_short(c.digest)}" if counts[b] > 1 else b
        for c, b in zip(candidates, bases, strict=True)
    ]
    counts = Counter(labels)
    labels = [
        f"{label}#{c.position}" if counts[label] > 1 else label
        for c, label in zip(candidates, labels, strict=True)
    ]
    taken = set(labels)
    out = []
    for c, base, label, cpu in zip(candidates, bases, labels, cpus, strict=True):
        aliases = {f"{base}@{_short(c.digest)}"}
        if cpu and cpu not in taken:
            aliases.add(cpu)
        aliases.discard(label)
        out.append(BuildName(label=label, cpu=cpu, aliases=frozenset(aliases)))
    return tuple(out)


def policy_names(candidate: Candidate, name: BuildName, tags: Sequence[str] = ()) -> frozenset[str]:
    """Every name a policy's ``pin``, ``prefer`` and ``avoid`` may use for a
    build: its digest, label, aliases and `tags`."""
    return frozenset((candidate.digest, name.label, *name.aliases, *tags))
