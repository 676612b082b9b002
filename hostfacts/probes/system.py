"""Kernel, C library, OS release, container, kernel modules and PCI devices.

Sources, by fact:

- Kernel: ``/proc/sys/kernel/osrelease`` (what ``uname -r`` prints; NFD's
  ``kernel.version`` reads the same file). It is the host kernel even inside a
  container. The version is its leading dotted numbers
  (``5.14.0-362.24.1.el9_3.x86_64`` -> (5, 14, 0)), as NFD's
  ``kernel.version.{major,minor,revision}``.
- C library (host-facts reference, section 5): on the live root
  ``os.confstr("CS_GNU_LIBC_VERSION")`` (``'glibc 2.36'``), else
  ``gnu_get_libc_version()`` through ctypes (pypa/packaging
  ``_manylinux.py``). Both describe the libc this interpreter runs on, so in a
  container the container's glibc. On a copied tree (or when both calls fail)
  the tree's ``libc.so.6`` is read: an old glibc's file name (``libc.so.6 ->
  libc-2.31.so``), else the banner compiled into it by glibc's
  ``csu/version.c``: ``"GNU C Library " PKGVERSION RELEASE " release version "
  VERSION`` followed by ``"."`` (glibc >= 2.26) or ``", by Roland McGrath et
  al."`` (older), e.g. ``GNU C Library (Debian GLIBC 2.36-9+deb12u4) stable
  release version 2.36.``. Distribution ``VERSION`` suffixes (Linaro's
  ``2.20-2014.11``, development ``2.39.9000``) are cut to major.minor, as
  packaging's ``_parse_glibc_version`` does. musl has no version call; it is
  recognised by its dynamic loader ``/lib/ld-musl-<arch>.so.1`` or by ``ldd
  --version`` saying ``musl libc``.
- OS release: ``/etc/os-release``, else ``/usr/lib/os-release``, read with
  os-release(5)'s rules: ``KEY=VALUE`` lines, ``#`` comments, values in
  double or single quotes with shell-style backslash escapes of ``\\ $ " ```
  inside double quotes. ``ID_LIKE`` is a space-separated list.
- Container: ``/run/.containerenv`` (podman writes it, with
  ``engine="podman-<version>"`` for privileged containers), ``/.dockerenv``
  (docker), ``$APPTAINER_CONTAINER`` / ``$SINGULARITY_CONTAINER``,
  ``$CH_RUNNING`` (Charliecloud's ch-run), ``$container`` (podman, systemd,
  lxc), and cgroup v1 paths in ``/proc/1/cgroup`` (``kubepods``, ``libpod``,
  ``docker``). On a copied tree the tree's files and the context's environment
  are used.
- Kernel modules: first column of ``/proc/modules`` (NFD
  ``kernel.loadedmodule``).
- PCI: ``/sys/bus/pci/devices/<address>/{class,vendor,device,
  subsystem_vendor,subsystem_device}``, read as NFD's ``pci.device`` source
  does (kubernetes-sigs/node-feature-discovery ``source/pci/utils.go``): the
  ``0x`` prefix dropped, the class cut to its first 4 hex digits (class and
  subclass, the programming interface dropped).

Paths of a copied tree are resolved inside its root: an absolute symlink such
as ``/lib64/libc.so.6 -> /usr/lib64/libc.so.6`` points into the tree, never to
this machine's files.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from hostfacts.context import ProbeContext, file_evidence
from hostfacts.model import Evidence, OsRelease, PciDevice, Probe, SystemFacts

OSRELEASE = "/proc/sys/kernel/osrelease"
OS_RELEASE_FILES = ("/etc/os-release", "/usr/lib/os-release")
MODULES = "/proc/modules"
PCI_DEVICES = "/sys/bus/pci/devices"

#: Bytes of libc.so.6 searched for the banner (glibc's libc.so.6 is 2-3 MiB).
LIBC_READ_LIMIT = 8 << 20

#: Directories holding libc.so.6 (or a ``<triplet>/libc.so.6``) on common layouts.
_LIBC_DIRS = ("/lib64", "/lib", "/usr/lib64", "/usr/lib")

#: musl's dynamic loader, ``ld-musl-$(ARCH)$(SUBARCH).so.1`` (musl Makefile).
_MUSL_LOADER = re.compile(r"ld-musl-[A-Za-z0-9_]+\.so\.1")

#: The banner of glibc's csu/version.c; group 1 is VERSION.
_BANNER = re.compile(rb"GNU C Library [^\n\x00]{0,200}? release version ([0-9][^\s,\x00]*)")

#: An old glibc's real file name: libc-2.17.so.
_LIBC_FILE = re.compile(r"libc-(\d+\.\d+)(?:\.\d+)*\.so$")

#: cgroup path fragments of /proc/1/cgroup and the engine they name, checked in order.
_CGROUP_HINTS = (
    ("kubepods", "kubernetes"),
    ("libpod", "podman"),
    ("docker", "docker"),
    ("lxc", "lxc"),
)


def kernel_version(release: str) -> tuple[int, ...]:
    """The leading dotted numbers of a kernel release.

    Example: '6.1.0-18-amd64' -> (6, 1, 0); '5.14.0-362.24.1.el9_3.x86_64' ->
    (5, 14, 0); '4.18.0' -> (4, 18, 0); '' -> (). Never raises.
    """
    found = re.match(r"\d+(?:\.\d+)*", release.strip())
    return tuple(int(part) for part in found.group(0).split(".")) if found else ()


def glibc_major_minor(version: str) -> str | None:
    """'major.minor' of a glibc VERSION string, or None if it has none.

    Example: '2.36' -> '2.36'; '2.20-2014.11' (Linaro) -> '2.20';
    '2.39.9000' (development) -> '2.39'. Never raises.
    """
    found = re.match(r"(\d+)\.(\d+)", version.strip())
    return f"{int(found.group(1))}.{found.group(2)}" if found else None


def glibc_banner(data: bytes) -> tuple[str, str] | None:
    """Find glibc's version banner in the bytes of a ``libc.so.6``.

    Returns:
        (the banner line, its VERSION string with no trailing '.'), e.g.
        ('GNU C Library (Ubuntu GLIBC 2.35-0ubuntu3.6) stable release version
        2.35.', '2.35'), or None when there is no banner. Never raises.
    """
    found = _BANNER.search(data)
    if not found:
        return None
    line = data[found.start() :].split(b"\n", 1)[0].split(b"\x00", 1)[0]
    version = found.group(1).decode("ascii", errors="replace").rstrip(".")
    return line.decode("utf-8", errors="replace").strip(), version


def parse_os_release(text: str) -> dict[str, str]:
    """Every ``KEY=VALUE`` assignment of an os-release(5) file.

    Values are unquoted as the shell would: single quotes literally, double
    quotes with backslash escapes of backslash, '$', '"' and '`', unquoted
    text with any backslash escape; unquoted whitespace ends the value.
    Comment, blank and malformed lines are skipped. Never raises.
    """
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            fields[key] = _shell_word(value)
    return fields


def _shell_word(value: str) -> str:
    """One shell word, unquoted (see :func:`parse_os_release`)."""
    out: list[str] = []
    quote = ""
    i = 0
    while i < len(value):
        char = value[i]
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                out.append(char)
        elif quote == '"':
            if char == '"':
                quote = ""
            elif char == "\\" and i + 1 < len(value) and value[i + 1] in '\\$"`':
                i += 1
                out.append(value[i])
            else:
                out.append(char)
        elif char in "'\"":
            quote = char
        elif char == "\\" and i + 1 < len(value):
            i += 1
            out.append(value[i])
        elif char.isspace():
            break
        else:
            out.append(char)
        i += 1
    return "".join(out)


def read_pci_devices(ctx: ProbeContext) -> tuple[PciDevice, ...]:
    """PCI functions of ``/sys/bus/pci/devices`` under ``ctx.root``, sorted by address.

    A function whose class, vendor or device cannot be read is left out (NFD
    skips it too). Never raises.
    """
    devices: list[PciDevice] = []
    for address in ctx.listdir(PCI_DEVICES):
        attrs: dict[str, str | None] = {}
        for name in ("class", "vendor", "device", "subsystem_vendor", "subsystem_device"):
            text = ctx.read_text(f"{PCI_DEVICES}/{address}/{name}", limit=64)
            value = text.strip().lower().removeprefix("0x") if text else ""
            attrs[name] = value or None
        if not (attrs["class"] and attrs["vendor"] and attrs["device"]):
            continue
        devices.append(
            PciDevice(
                address=address,
                class_id=attrs["class"][:4],
                vendor=attrs["vendor"],
                device=attrs["device"],
                subsystem_vendor=attrs["subsystem_vendor"],
                subsystem_device=attrs["subsystem_device"],
            )
        )
    return tuple(devices)


def probe(ctx: ProbeContext) -> SystemFacts:
    """Kernel, libc, OS release, container, loaded modules and PCI devices.

    Args:
        ctx: probe inputs. Files are read under ``ctx.root``; the libc calls
            (confstr, ctypes) are made only on the live root, ``ldd`` runs only
            when ``ctx`` allows commands.

    Returns:
        SystemFacts whose probe is ``ok`` when the kernel release was read,
        ``unknown`` otherwise, ``error`` if the probe itself failed. Never raises.
    """
    evidence: list[Evidence] = []
    start = time.monotonic()
    try:
        release = _kernel_release(ctx, evidence)
        libc, glibc = _libc(ctx, evidence, start)
        facts = SystemFacts(
            kernel_release=release,
            kernel_version=kernel_version(release or ""),
            libc=libc,
            glibc_version=glibc,
            os_release=_os_release(ctx, evidence),
            container=_container(ctx, evidence),
            loaded_modules=_modules(ctx, evidence),
            pci_devices=_pci(ctx, evidence),
        )
    except Exception as exc:  # never raise: report the failure instead
        reason = f"system probe failed: {type(exc).__name__}: {exc}"
        return SystemFacts(
            probe=Probe(status="error", reason=reason[:200], evidence=tuple(evidence))
        )
    if release:
        result = Probe(status="ok", reason="", evidence=tuple(evidence))
    else:
        result = Probe(
            status="unknown", reason=f"cannot read {OSRELEASE}", evidence=tuple(evidence)
        )
    return facts.model_copy(update={"probe": result})


def _kernel_release(ctx: ProbeContext, evidence: list[Evidence]) -> str | None:
    """``/proc/sys/kernel/osrelease``; on the live root ``os.uname()`` if unreadable."""
    text = ctx.read_text(OSRELEASE, limit=256)
    release = text.strip() if text else ""
    if release:
        evidence.append(file_evidence(ctx, OSRELEASE, release))
        return release
    evidence.append(file_evidence(ctx, OSRELEASE, "unreadable"))
    if ctx.live:
        release = os.uname().release
        evidence.append(Evidence(kind="call", source="os.uname().release", detail=release))
        return release or None
    return None


def _libc(ctx: ProbeContext, evidence: list[Evidence], start: float) -> tuple[str, str | None]:
    """('glibc', 'X.Y'), ('musl', None) or ('unknown', None)."""
    if ctx.live:
        version = _confstr_glibc(evidence) or _ctypes_glibc(evidence)
        if version:
            return "glibc", version
    version = _tree_glibc(ctx, evidence)
    if version:
        return "glibc", version
    loader = _musl_loader(ctx)
    if loader:
        evidence.append(file_evidence(ctx, loader, "musl dynamic loader"))
        return "musl", None
    return _ldd_libc(ctx, evidence, ctx.timeout - (time.monotonic() - start))


def _confstr_glibc(evidence: list[Evidence]) -> str | None:
    """glibc major.minor from ``os.confstr('CS_GNU_LIBC_VERSION')``, or None."""
    source = "os.confstr(CS_GNU_LIBC_VERSION)"
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, OSError, ValueError) as exc:
        evidence.append(Evidence(kind="call", source=source, detail=f"unavailable: {exc}"))
        return None
    evidence.append(Evidence(kind="call", source=source, detail=repr(value)))
    name, _, version = (value or "").partition(" ")
    return glibc_major_minor(version) if name == "glibc" else None


def _gnu_get_libc_version() -> str | None:
    """``gnu_get_libc_version()`` of this process through ctypes, or None (musl)."""
    try:
        import ctypes

        function = ctypes.CDLL(None).gnu_get_libc_version
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_char_p
    value = function()
    return value.decode("ascii", errors="replace") if isinstance(value, bytes) else None


def _ctypes_glibc(evidence: list[Evidence]) -> str | None:
    """glibc major.minor from ``gnu_get_libc_version()``, or None."""
    value = _gnu_get_libc_version()
    evidence.append(
        Evidence(
            kind="call", source="gnu_get_libc_version()", detail=value or "not found (not glibc)"
        )
    )
    return glibc_major_minor(value) if value else None


def _libc_candidates(ctx: ProbeContext) -> list[str]:
    """Host paths of ``libc.so.6`` under the root, first the usual ones, no duplicates."""
    paths: list[str] = []
    seen: set[Path] = set()
    for directory in _LIBC_DIRS:
        names = [f"{directory}/libc.so.6"]
        where = ctx.resolve(directory)
        if where is not None and where.is_dir():
            try:
                entries = sorted(os.listdir(where))
            except OSError:
                entries = []
            names += [
                f"{directory}/{entry}/libc.so.6" for entry in entries if "-linux-gnu" in entry
            ]
        for name in names:
            real = ctx.resolve(name)
            if real is not None and real.is_file() and real not in seen:
                seen.add(real)
                paths.append(name)
    return paths


def _tree_glibc(ctx: ProbeContext, evidence: list[Evidence]) -> str | None:
    """glibc major.minor from the tree's ``libc.so.6`` (file name or banner), or None."""
    for name in _libc_candidates(ctx):
        real = ctx.resolve(name)
        if real is None:
            continue
        old = _LIBC_FILE.search(real.name)
        if old:
            evidence.append(file_evidence(ctx, name, f"-> {real.name}"))
            return glibc_major_minor(old.group(1))
        try:
            with open(real, "rb") as fh:
                data = fh.read(LIBC_READ_LIMIT)
        except OSError as exc:
            evidence.append(file_evidence(ctx, name, f"unreadable: {exc.strerror or exc}"))
            continue
        banner = glibc_banner(data)
        if banner:
            evidence.append(file_evidence(ctx, name, banner[0][:160]))
            version = glibc_major_minor(banner[1])
            if version:
                return version
        else:
            evidence.append(file_evidence(ctx, name, "no glibc banner"))
    return None


def _musl_loader(ctx: ProbeContext) -> str | None:
    """Host path of musl's dynamic loader under the root, or None."""
    for directory in ("/lib", "/usr/lib"):
        where = ctx.resolve(directory)
        if where is None or not where.is_dir():
            continue
        try:
            entries = sorted(os.listdir(where))
        except OSError:
            continue
        for entry in entries:
            if _MUSL_LOADER.fullmatch(entry):
                return f"{directory}/{entry}"
    return None


def _ldd_libc(ctx: ProbeContext, evidence: list[Evidence], left: float) -> tuple[str, str | None]:
    """What ``ldd --version`` says (glibc prints to stdout, musl to stderr, exit 1),
    given the time the probe has `left`, less a margin to report in."""
    ldd = ctx.which("ldd")
    if not ldd:
        return "unknown", None
    done, shown = ctx.run([ldd, "--version"], timeout=max(0.1, left - 0.2))
    evidence.append(shown)
    if done is None:
        return "unknown", None
    output = f"{done.stdout}\n{done.stderr}"
    if "musl" in output:
        return "musl", None
    first = output.strip().splitlines()[0] if output.strip() else ""
    if "GLIBC" in first or "GNU libc" in first:
        version = glibc_major_minor(first.split()[-1]) if first.split() else None
        return ("glibc", version) if version else ("unknown", None)
    return "unknown", None


def _read_in_root(ctx: ProbeContext, absolute: str, limit: int = 1 << 16) -> str | None:
    """Text of host file `absolute`, symlinks resolved inside the root, or None."""
    real = ctx.resolve(absolute)
    if real is None:
        return None
    try:
        with open(real, "rb") as fh:
            return fh.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return None


def _os_release(ctx: ProbeContext, evidence: list[Evidence]) -> OsRelease:
    """ID, VERSION_ID, ID_LIKE, PRETTY_NAME of the first os-release file found."""
    for name in OS_RELEASE_FILES:
        text = _read_in_root(ctx, name)
        if text is None:
            continue
        fields = parse_os_release(text)
        evidence.append(
            file_evidence(
                ctx, name, f"ID={fields.get('ID', '')} VERSION_ID={fields.get('VERSION_ID', '')}"
            )
        )
        return OsRelease(
            id=fields.get("ID") or None,
            version_id=fields.get("VERSION_ID") or None,
            id_like=tuple(fields.get("ID_LIKE", "").split()),
            pretty_name=fields.get("PRETTY_NAME") or None,
        )
    evidence.append(
        file_evidence(ctx, OS_RELEASE_FILES[0], "missing, as is " + OS_RELEASE_FILES[1])
    )
    return OsRelease()


def _container(ctx: ProbeContext, evidence: list[Evidence]) -> str | None:
    """The container engine we run inside, or None (see the module docstring)."""
    env = ctx.environ
    for variable, engine in (
        ("APPTAINER_CONTAINER", "apptainer"),
        ("SINGULARITY_CONTAINER", "singularity"),
        ("CH_RUNNING", "charliecloud"),
    ):
        if env.get(variable):
            evidence.append(Evidence(kind="env", source=variable, detail=env[variable][:160]))
            return engine
    containerenv = _read_in_root(ctx, "/run/.containerenv")
    if containerenv is not None:
        engine = parse_os_release(containerenv).get("engine", "")
        evidence.append(file_evidence(ctx, "/run/.containerenv", engine or "present"))
        return (engine.split("-", 1)[0] or "podman").lower()
    if ctx.resolve("/.dockerenv") is not None:
        evidence.append(file_evidence(ctx, "/.dockerenv", "present"))
        return "docker"
    value = env.get("container", "").strip().lower()
    if re.fullmatch(r"[a-z0-9][a-z0-9._-]*", value):
        evidence.append(Evidence(kind="env", source="container", detail=value))
        return value
    cgroup = ctx.read_text("/proc/1/cgroup", limit=1 << 16) or ""
    paths = [line.split(":", 2)[2] for line in cgroup.splitlines() if line.count(":") >= 2]
    for fragment, engine in _CGROUP_HINTS:
        for path in paths:
            if fragment in path:
                evidence.append(file_evidence(ctx, "/proc/1/cgroup", path[:160]))
                return engine
    return None


def _modules(ctx: ProbeContext, evidence: list[Evidence]) -> tuple[str, ...]:
    """Names of the loaded kernel modules, sorted."""
    text = ctx.read_text(MODULES, limit=4 << 20)
    if text is None:
        evidence.append(file_evidence(ctx, MODULES, "unreadable"))
        return ()
    names = sorted({line.split()[0] for line in text.splitlines() if line.strip()})
    evidence.append(file_evidence(ctx, MODULES, f"{len(names)} modules"))
    return tuple(names)


def _pci(ctx: ProbeContext, evidence: list[Evidence]) -> tuple[PciDevice, ...]:
    """PCI devices, with one evidence line for the directory."""
    devices = read_pci_devices(ctx)
    evidence.append(file_evidence(ctx, PCI_DEVICES, f"{len(devices)} devices"))
    return devices
