"""The platform a command line asks for, split as the runtime's own parser
splits it: syntax only. Names are normalised in one place,
:func:`scoring.platform.normalize` (``x86_64`` -> ``amd64``, ``armhf`` ->
``arm``/``v7``...), on the cold path; this module is on the hot path
(standard library only, no ``re``) and leaves every name as written.

A request is ``(os, architecture, variant)``: the os as written (``linux``
when the command line gives none), the architecture as written or "" (the
host's), the variant as written or None. :data:`UNREADABLE` stands for a
specifier the runtime itself refuses: the shim then stands aside and the
runtime says what is wrong, exactly as without imagefit.
"""

from __future__ import annotations

#: A request the runtime refuses (too many parts, an empty part, a character
#: containerd does not allow...): no OS is "", so no build and no host match it.
UNREADABLE: tuple[str, str, str | None] = ("", "", None)

#: containerd/platforms platforms.go ``specifierRe``: ``^[A-Za-z0-9_.-]+$``
_PART = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

#: GOOS names (containerd/platforms database.go ``isKnownOS``) plus ``macos``
#: (``normalizeOS``), any case: one word that is one of these is an OS.
OS_WORDS = frozenset(
    "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd"
    " plan9 solaris windows zos macos".split()
)

#: GOARCH names (containerd/platforms database.go ``isKnownArch``): an
#: architecture written so needs no normalising (the hot path's test in
#: :func:`shim.intercept._emulated`; tests/test_requested_platform.py checks
#: it is scoring.platform.KNOWN_ARCH).
KNOWN_ARCH = frozenset(
    "386 amd64 amd64p32 arm armbe arm64 arm64be ppc64 ppc64le loong64 mips mipsle mips64"
    " mips64le mips64p32 mips64p32le ppc riscv riscv64 s390 s390x sparc sparc64 wasm".split()
)


def _part(text: str) -> bool:
    return bool(text) and all(c in _PART for c in text)


def split_specifier(text: str, *, one_word_arch: bool = True) -> tuple[str, str, str | None]:
    """A ``--platform`` value as containerd/platforms platforms.go ``Parse``
    splits it: ``os``, ``arch``, ``os/arch`` or ``os/arch/variant``; each
    part non-empty and of ``[A-Za-z0-9_.-]`` (the OS part without ``.``,
    and without containerd's ``os(version+features)`` form, which no runtime
    here takes); no ``*``.

    Args:
        text: the value as given.
        one_word_arch: a word that is not an OS is an architecture (docker,
            containerd); False: it is refused, as podman's
            containers/common ``parse.Platform`` refuses it.

    Returns:
        (os, architecture, variant) as written: one OS word gives
        architecture "" (the host's), one architecture word the OS ``linux``;
        :data:`UNREADABLE` for what ``Parse`` refuses (containerd
        platforms_test.go ``TestParseSelectorInvalid``: "", ``/linux/arm``,
        ``linux/arm/``, ``linux /arm``, ``linux/&arm``, ``linux/arm/foo/bar``).
    """
    parts = text.split("/")
    if "*" in text or len(parts) > 3 or not all(_part(p) for p in parts) or "." in parts[0]:
        return UNREADABLE
    if len(parts) == 1:
        if parts[0].lower() in OS_WORDS:
            return parts[0], "", None
        return ("linux", parts[0], None) if one_word_arch else UNREADABLE
    return parts[0], parts[1], (parts[2] if len(parts) == 3 else None)


def from_flags(
    os_: str | None, arch: str | None, variant: str | None
) -> tuple[str, str, str | None] | None:
    """A request from separate ``--os``/``--arch``/``--variant`` values (None:
    not given; "" given empty, which the runtime reads as not given): None
    when none has a value, :data:`UNREADABLE` when a value is not one
    ``Parse`` part (``--arch amd64/v3``)."""
    if not (os_ or arch or variant):
        return None
    if any(v and not _part(v) for v in (os_, arch, variant)):
        return UNREADABLE
    return (os_ or "linux"), (arch or ""), (variant or None)
