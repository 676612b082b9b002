"""Annotation keys for authors: short names, typos, wrong prefixes.

``imagefit index create`` accepts the vocabulary of docs/compatibility.md by
its full key (``org.supercontainers.hardware.gpu.vendor``) or a short name:
any tail of the key after ``org.supercontainers.`` that no other key ends
with (``hardware.gpu.vendor``, ``gpu.vendor``, ``cuda.version``,
``compute_capabilities``, ``kernel.version``, ``fabric``, ``weight``), and a
few aliases (``target``, ``cuda``, ``glibc``, ``kernel``). Keys of other
namespaces (``org.opencontainers.image.description``, ``com.example.x``) are
kept as given. ``imagefit lint`` uses :func:`key_findings` on every key of an
index.
"""

from __future__ import annotations

import difflib

from scoring import vocabulary

P = vocabulary.P
#: Every key of imagefit's vocabulary (docs/compatibility.md).
KNOWN = frozenset({*vocabulary.REQUIREMENT_KEYS, vocabulary.CONTAINER_KIND})
OCI_PREFIX = "org.opencontainers."
#: image-spec annotations.md, "Pre-Defined Annotation Keys".
OCI_KNOWN = frozenset(
    "org.opencontainers.image." + k
    for k in (
        "created", "authors", "url", "documentation", "source", "version", "revision", "vendor",
        "licenses", "ref.name", "title", "description", "base.digest", "base.name",
    )
)  # fmt: skip


def _short_names() -> dict[str, str]:
    tails: dict[str, set[str]] = {}
    for key in KNOWN:
        parts = key[len(P) :].split(".")
        for i in range(len(parts)):
            tails.setdefault(".".join(parts[i:]), set()).add(key)
    names = {tail: next(iter(keys)) for tail, keys in tails.items() if len(keys) == 1}
    names.update(
        {
            "target": vocabulary.CPU_TARGET,
            "cpu.target": vocabulary.CPU_TARGET,
            "microarch": vocabulary.CPU_TARGET,
            "kind": vocabulary.CONTAINER_KIND,
            "cuda": vocabulary.CUDA_VERSION,
            "glibc": vocabulary.GLIBC_VERSION,
            "kernel": vocabulary.KERNEL_VERSION,
        }
    )
    return names


SHORT = _short_names()


def suggest(word: str, choices, cutoff: float = 0.75) -> str | None:
    """The closest of `choices` to `word`, or None."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return found[0] if found else None


def expand(key: str) -> str:
    """The full annotation key for `key` (see the module docstring).

    Raises:
        ValueError: an unknown key of imagefit's vocabulary, or a short name
            that is none of the known ones (one line, with a suggestion).
    """
    key = key.strip()
    if key in SHORT:
        return SHORT[key]
    if key.startswith(P):
        if key not in KNOWN:
            hint = suggest(key, KNOWN)
            raise ValueError(
                f"unknown key {key!r}" + (f" (did you mean {hint}?)" if hint else "")
                + "; see docs/compatibility.md"
            )  # fmt: skip
        return key
    hint = suggest(key, [*SHORT, *KNOWN])
    if hint is not None or key.count(".") < 2:
        raise ValueError(
            f"unknown key {key!r}"
            + (f" (did you mean {SHORT.get(hint, hint)}?)" if hint else "")
            + "; give a vocabulary key (docs/compatibility.md) or a full reverse-DNS key"
        )
    return key


def key_findings(key: str) -> list[str]:
    """Why `key` is probably a mistake (one line each), or nothing.

    * a key under ``org.supercontainers.`` that is not in the vocabulary
      (``hardware.cpu.target.microarh``): imagefit ignores it;
    * a vocabulary key under another prefix (``io.supercontainers.mpi.abi``,
      ``org.supercontainer.weight``) or a misspelt ``org.opencontainers.``
      (``oci.opencontainers.image.created``);
    * an ``org.opencontainers.image.`` key image-spec does not define.
    """
    if key.startswith(P):
        if key in KNOWN:
            return []
        hint = suggest(key, KNOWN, cutoff=0.6)
        return [
            f"unknown key {key}" + (f" (did you mean {hint}?)" if hint else "")
            + ": imagefit ignores it"
        ]  # fmt: skip
    if key.startswith(OCI_PREFIX):
        if key.startswith(OCI_PREFIX + "image.") and key not in OCI_KNOWN:
            hint = suggest(key, OCI_KNOWN, cutoff=0.6)
            return [
                f"{key} is not an image-spec annotation"
                + (f" (did you mean {hint}?)" if hint else "")
            ]
        return []
    for suffix in (k[len(P) :] for k in KNOWN):
        if "." in suffix and key.endswith("." + suffix) or key == suffix:
            return [f"{key} has the wrong prefix (did you mean {P}{suffix}?): imagefit ignores it"]
    parts = key.split(".")
    if len(parts) >= 3:
        prefix, rest = ".".join(parts[:2]) + ".", ".".join(parts[2:])
        for right in (P, OCI_PREFIX):
            if difflib.SequenceMatcher(None, prefix, right).ratio() >= 0.8:
                candidate = right + rest
                if right == P and candidate not in KNOWN:
                    candidate = suggest(candidate, KNOWN, cutoff=0.6) or candidate
                if right == OCI_PREFIX and candidate not in OCI_KNOWN:
                    candidate = suggest(candidate, OCI_KNOWN, cutoff=0.6) or candidate
                return [f"{key} has the wrong prefix {prefix!r} (did you mean {candidate}?)"]
    return []
