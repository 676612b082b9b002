"""The MPI library this environment resolves: implementation, version, ABI family.

How it knows: it loads the library and asks it. ``MPI_Get_library_version``
may be called before ``MPI_Init`` (MPI-3.0 §8.1.1 "Version Inquiries", MPI-4.0
§9.1.1; open-mpi/ompi ``docs/man-openmpi/man3/MPI_Get_library_version.3.rst``:
"one of the few functions that can be called before MPI_Init"). The call runs
in a child interpreter (``sys.executable -I -c <loader>``, ctypes, the
candidate path as argument, JSON back on stdout), in its own session and
under a time limit, so a library that crashes, aborts or hangs while loading
cannot take the shim down: a crash is a negative return code (the signal),
a hang is killed with its process group; both are recorded as evidence and
the next candidate is tried. E4S-Project/e4s-cl (``e4s_cl/cf/detect_name.py``)
and JuliaParallel/MPI.jl (``lib/MPIPreferences/src/MPIPreferences.jl``,
``identify_abi``) load the library with ctypes/dlopen the same way, in
process.

Where it looks, in this order (all through ``ctx``):

1. ``$IMAGEFIT_MPI_LIBRARY`` (:data:`LIBRARY_ENV`): a path (or a soname for
   the dynamic loader) set by the site;
2. ``libmpi.so*``, ``libmpich.so*``, ``libmpi_cray.so*``, ``libmpi_ibm.so*``
   and ``libmpi_abi.so*`` in each ``$LD_LIBRARY_PATH`` directory (the names
   MPI.jl's ``use_system_binary`` searches for);
3. ``../lib`` and ``../lib64`` next to ``mpirun``, ``mpiexec`` and ``mpicc``
   found on ``$PATH`` (and next to their resolved targets);
4. the ldconfig cache (``ldconfig -p``; ``ldconfig`` on ``$PATH`` or
   :data:`LDCONFIG_FALLBACKS`), only when nothing before it identified.

The first library that answers with a string we recognise wins.

Classification reads the version string, never the soname: Open MPI 1.10.x
shipped ``libmpi.so.12`` like the MPICH ABI initiative (spack/spack-packages
``repos/spack_repo/builtin/packages/openmpi/package.py`` version comments:
``1.10.7 # libmpi.so.12.0.7``; ``3.0-5.0 # libmpi.so.40``). Formats:

- MPICH: ``"MPICH Version:\\t%s\\nMPICH Release date:\\t%s\\nMPICH ABI:\\t%s\\n
  MPICH Device:..."`` (pmodels/mpich ``MPI_Get_library_version``: 3.x
  ``src/mpi/init``, 4.x the generated C binding; 4.3 transcripts of MPI.jl's
  ``versioninfo`` show the values padded with spaces instead of a tab);
  MPICH2 printed ``MPICH2 Version:``. ABI family ``mpich`` from 3.1 on (https://www.mpich.org/abi/).
- MPICH built with ``--enable-mpi-abi`` prints the same string for its
  ``libmpi.so`` (MPICH ABI) and its ``libmpi_abi.so`` (standard ABI); only
  the configure line shows the option. What tells them apart is
  ``MPI_Abi_get_version``: pmodels/mpich ``src/binding/c/abi_api.txt``
  returns ``-1, -1`` from the MPICH-ABI library and ``MPI_ABI_VERSION,
  MPI_ABI_SUBVERSION`` (1, 0 for MPI-5.0) from the standard-ABI build; the
  MPI-5.0 standard (chapter 20, "Application Binary Interface") fixes the
  library name ``libmpi_abi`` and says the call returns -1 when the ABI is
  not supported and may be made before ``MPI_Init`` (open-mpi/ompi
  ``docs/man-openmpi/man3/MPI_Abi_get_version.3.rst``). The loader calls it
  when the symbol exists. ABI ``mpi-abi`` needs major >= 1; a major of 0
  (Open MPI's 2023 draft ``MPI_Abi_version`` 0.1) or a ``libmpi_abi`` with no
  ``MPI_Abi_get_version`` (MPICH 4.3's pre-ratification draft ABI, binary
  incompatible with MPI-5) reads as ABI ``unknown``.
- ``mpi_abi_wrapper 1.2.0 (MPI 5.0 standard ABI, MPI_ABI_VERSION 1.0)\\n
  wrapping:\\nOpen MPI v5.0.10, ...`` (MPIPreferences.jl): ABI ``mpi-abi``,
  implementation and version of the wrapped library.
- Cray MPICH: ``MPI VERSION    : CRAY MPICH version 8.1.21 (ANL base 3.4a2)``
  (MPIPreferences.jl; e4s-cl ``tests/test_detect_name.py`` for 7.7.14;
  LLNL/Adiak ``src/adksys_mpi.c`` for 8.1.27.20). ``mpich`` from 7.0 on.
- Intel MPI: ``Intel(R) MPI Library 2021.6 for Linux* OS`` and the older
  ``Intel(R) MPI Library 2019 Update 4 for Linux* OS`` (MPIPreferences.jl,
  e4s-cl); version "2019.4" for the latter. ``mpich`` from 5.0 on (Intel MPI
  5.0 joined the ABI initiative, pmodels/mpich
  ``doc/wiki/testing/ABI_Compatibility_Initiative.md``).
- MVAPICH2: ``MVAPICH2 Version      :\\t2.3.7`` (MPIPreferences.jl comment,
  e4s-cl test, LLNL/Adiak); MVAPICH 3 and 4: ``MVAPICH Version:`` (mpi4py
  ``pympivendor.h``; spack ``mvapich/package.py`` parses ``mpichversion``
  with ``^MVAPICH Version:\\s*(\\S+)``). ``mpich`` from 2.0 on.
- Open MPI: ``Open MPI v%d.%d.%d%s, package: %s, ident: %s, repo rev: %s, %s``
  (open-mpi/ompi ``ompi/mpi/c/get_library_version.c``), e.g.
  ``Open MPI v4.1.1, package: Open MPI ... Distribution, ident: 4.1.1, ...``.
  IBM Spectrum MPI is Open MPI with ``IBM Spectrum MPI`` in the package/ident
  (``Open MPI v10.3.1.03rtm0, package: IBM Spectrum MPI, ...`` in LLNL/Adiak;
  ``Open MPI v3.1.0, package: IBM Spectrum MPI, ident: 10.03.01.00rtm0, repo
  rev: IBM_SPECTRUM_MPI_10.03.01.00_2019.04.02`` in MPI.jl's tests): its
  version is the Spectrum release. Fujitsu MPI (``FUJITSU MPI Library
  4.0.0``) is Open MPI based. All ``openmpi``.
- HPE MPT ``HPE MPT 2.23  08/26/20 ...`` has its own ABI (``unknown`` here);
  ``HPE HMPT 2.23`` is MPICH ABI (MPIPreferences.jl).

Corroboration, recorded as ``command`` evidence with a verdict, never
overriding the library: ``mpichversion`` (``MPICH Version:\\s+(\\S+)``,
spack ``mpich/package.py``; ``MVAPICH2? Version:``, ``mvapich/package.py``),
``ompi_info --version`` (``-V, --version: Show version of Open MPI``, open-mpi/ompi
``docs/man-openmpi/man1/ompi_info.1.rst``; prints ``Open MPI v4.1.6``; spack
reads ``Open MPI: (\\S+)`` from the full listing) and ``mpirun --version``
(or ``mpiexec``): ``mpirun (Open MPI) 4.1.6`` / ``(OpenRTE)``, Hydra's
``HYDRA build details:`` (MPICH, MVAPICH), ``Intel(R) MPI Library for
Linux* OS, Version 2021.11 Build ...`` (keisukefukuda/mpienv ``mpienv/mpi.py``).

Outcome: ``ok`` when a library was identified; ``none`` when no candidate
library exists (the reason says where it looked); ``unknown`` when one was
found but could not be identified (crash, hang, no symbol, unrecognised
string, which ``library_version`` keeps), and when ``ctx.allow_commands`` is
false (a copied ``--root`` tree: nothing is loaded). Never raises.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Literal, NamedTuple

from hostfacts.context import ProbeContext
from hostfacts.model import Evidence, MpiFacts, Probe

Abi = Literal["mpich", "openmpi", "mpi-abi", "unknown"]

#: Site override: the MPI library to identify first (a path, or a soname).
LIBRARY_ENV = "IMAGEFIT_MPI_LIBRARY"
#: Reason when commands may not run (a copied --root tree).
NOT_LIVE = "not probed: MPI is identified by loading the live library"
#: Where ``ldconfig`` is looked for when it is not on the context's PATH
#: (tests set this to () so that the host's own cache stays out).
LDCONFIG_FALLBACKS: tuple[str, ...] = ("/sbin/ldconfig", "/usr/sbin/ldconfig")
#: Launchers and wrappers whose ../lib and ../lib64 are searched.
LAUNCHERS = ("mpirun", "mpiexec", "mpicc")
#: File names taken as MPI libraries, and the order tried within one directory.
LIBRARY_NAME = re.compile(r"^lib(mpi|mpich|mpi_cray|mpi_ibm|mpi_abi)\.so(\.\d+)*$")
_FAMILY_ORDER = {"mpi": 0, "mpich": 1, "mpi_cray": 2, "mpi_ibm": 3, "mpi_abi": 4}
#: Buffer handed to MPI_Get_library_version: MPI_MAX_LIBRARY_VERSION_STRING is
#: 8192 in the standard ABI (pmodels/mpich src/binding/abi/mpi_abi.h) and at
#: most that in known implementations (MPI.jl uses 8192); twice that for safety.
BUFFER_SIZE = 16384
#: Share of ctx.timeout one library load may take (at least 1 s), so that a
#: hanging candidate leaves time for the next one and for corroboration.
LOAD_SHARE = 0.5
#: Seconds a killed loader gets to hand back its output.
_REAP_SECONDS = 1.0
_MARK = "@@imagefit-mpi@@"

# The child: load, call, print a JSON state line after every step so that a
# crash still tells how far it got. Only the standard library; -I isolates it
# from PYTHONPATH and user site-packages.
_LOADER = r"""
import ctypes, json, os, sys
path, size, mark = sys.argv[1], int(sys.argv[2]), sys.argv[3]
state = {"stage": "dlopen"}
def emit(**kw):
    state.update(kw)
    sys.stdout.write("\n" + mark + json.dumps(state) + "\n")
    sys.stdout.flush()
emit()
try:
    lib = ctypes.CDLL(path, mode=os.RTLD_LAZY | os.RTLD_GLOBAL)
except OSError as exc:
    emit(error="cannot load: " + str(exc))
    sys.exit(0)
try:
    get = lib.MPI_Get_library_version
except AttributeError:
    emit(error="no symbol MPI_Get_library_version")
    sys.exit(0)
get.restype = ctypes.c_int
get.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
buf = ctypes.create_string_buffer(size)
n = ctypes.c_int(-1)
emit(stage="MPI_Get_library_version")
rc = get(buf, ctypes.byref(n))
raw = buf.raw[: n.value] if 0 < n.value <= size else buf.value
raw = raw.split(b"\0", 1)[0]
emit(rc=rc, text=raw.decode("utf-8", "replace"),
     abi_symbol=hasattr(lib, "MPI_Abi_get_version"),
     abi_info_symbol=hasattr(lib, "MPI_Abi_get_info"))
if state["abi_symbol"]:
    f = lib.MPI_Abi_get_version
    f.restype = ctypes.c_int
    f.argtypes = [ctypes.POINTER(ctypes.c_int)] * 2
    major, minor = ctypes.c_int(-1), ctypes.c_int(-1)
    emit(stage="MPI_Abi_get_version")
    arc = f(ctypes.byref(major), ctypes.byref(minor))
    emit(abi_rc=arc, abi_version=[major.value, minor.value])
emit(stage="done")
"""


class Identity(NamedTuple):
    """What a version string (and the ABI query) says.

    ``implementation`` is None when the string is not recognised; ``note``
    is one line of why the ABI is what it is, or ''.
    """

    implementation: str | None
    version: str | None
    abi: Abi
    note: str = ""


class LibraryCall(NamedTuple):
    """What the child interpreter reported for one library.

    ``text`` is the whole MPI_Get_library_version string, or None when the
    call did not complete (``failure`` then says why: ``cannot load: ...``,
    ``no symbol ...``, ``killed by SIGSEGV in MPI_Get_library_version``,
    ``timed out after 1 s in ...``). ``abi_version`` is (major, minor) from
    MPI_Abi_get_version, or None when the symbol is absent or the call failed.
    """

    text: str | None
    failure: str | None
    abi_symbol: bool = False
    abi_version: tuple[int, int] | None = None
    abi_failure: str | None = None


class _Candidate(NamedTuple):
    path: str  # host path (or soname) as reported
    load: str  # what the child opens (the host path under ctx.root)
    found: str  # how it was found, for evidence


# --------------------------------------------------------------------------
# Version strings


def _num(version: str | None) -> tuple[int, ...]:
    """Leading numeric parts of a version ('8.1.28.2' -> (8, 1, 28, 2), '3.4a2' -> (3, 4))."""
    if not version:
        return ()
    parts: list[int] = []
    for piece in version.split("."):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        parts.append(int(digits.group()))
        if digits.end() != len(piece):
            break
    return tuple(parts)


def _family(implementation: str, version: str | None) -> Abi:
    """ABI family of a native (non-standard-ABI) library, as MPI.jl maps them."""
    v = _num(version)
    if implementation == "mpich":
        return "mpich" if v >= (3, 1) else "unknown"
    if implementation == "craympich":
        return "mpich" if v >= (7,) else "unknown"
    if implementation == "intelmpi":
        return "mpich" if v >= (5,) else "unknown"
    if implementation == "mvapich":
        return "mpich" if v >= (2,) else "unknown"
    if implementation in ("openmpi", "spectrum", "fujitsu"):
        return "openmpi"
    return "unknown"


def parse_library_version(text: str) -> Identity:
    """Implementation, version and ABI family from an MPI_Get_library_version string.

    Args:
        text: the string as the library returned it (any line endings).

    Returns:
        :class:`Identity`; ``implementation`` is one of mpich, mvapich,
        craympich, intelmpi, openmpi, spectrum, fujitsu, mpt, mpiwrapper, or
        None (unrecognised: version None, abi 'unknown'). The ABI comes from
        the string alone: 'mpi-abi' only for ``mpi_abi_wrapper`` strings
        (see :func:`identify` for the library query). Never raises.
    """
    text = (text or "").replace("\r\n", "\n").strip("\0 \t\n")

    wrapper = re.match(r"mpi_abi_wrapper\s+(\S+).*?MPI_ABI_VERSION\s+(\d+)\.(\d+)", text)
    if wrapper:
        inner = text.split("wrapping:", 1)[1].strip() if "wrapping:" in text else ""
        wrapped = parse_library_version(inner) if inner else Identity(None, None, "unknown")
        major, minor = int(wrapper.group(2)), int(wrapper.group(3))
        abi: Abi = "mpi-abi" if major >= 1 else "unknown"
        return Identity(
            wrapped.implementation or "mpi_abi_wrapper",
            wrapped.version if wrapped.implementation else wrapper.group(1),
            abi,
            f"mpi_abi_wrapper {wrapper.group(1)}, MPI_ABI_VERSION {major}.{minor}",
        )

    cray = re.search(r"CRAY MPICH version (\d+(?:\.\d+)*)", text)
    if cray:
        version = cray.group(1)
        return Identity("craympich", version, _family("craympich", version))

    mvapich = re.match(r"MVAPICH2?\s+Version\s*:\s*(\S+)", text)
    if mvapich:
        version = mvapich.group(1)
        return Identity("mvapich", version, _family("mvapich", version))

    mpich = re.match(r"MPICH2?\s+Version\s*:\s*(\S+)", text)
    if mpich:
        version = mpich.group(1)
        note = "built with --enable-mpi-abi" if "--enable-mpi-abi" in text else ""
        return Identity("mpich", version, _family("mpich", version), note)

    intel = re.match(
        r"Intel\(R\) MPI Library (\d+)(?:\.(\d+))?(?:\.(\d+))?(?: Update (\d+))?", text
    )
    if intel:
        version = ".".join(p for p in intel.groups() if p is not None)
        return Identity("intelmpi", version, _family("intelmpi", version))

    ompi = re.match(r"Open MPI v(\d[\w.]*)", text)
    if ompi:
        version = ompi.group(1)
        if "Spectrum MPI" in text:
            release = re.search(r"IBM_SPECTRUM_MPI_(\d+(?:\.\d+)+)", text)
            if _num(version)[:1] < (10,) and release:
                version = release.group(1)
            return Identity("spectrum", version, "openmpi")
        return Identity("openmpi", version, "openmpi")

    fujitsu = re.match(r"FUJITSU MPI Library (\d+(?:\.\d+)*)", text)
    if fujitsu:
        return Identity("fujitsu", fujitsu.group(1), "openmpi")

    hmpt = re.match(r"HPE HMPT (\d+(?:\.\d+)*)", text)
    if hmpt:
        return Identity("mpt", hmpt.group(1), "mpich", "HPE HMPT: the MPICH-ABI build of MPT")
    mpt = re.match(r"(?:HPE|SGI) MPT (\d+(?:\.\d+)*)", text)
    if mpt:
        return Identity("mpt", mpt.group(1), "unknown", "HPE MPT has its own ABI")

    wrapper2 = re.match(r"MPIwrapper Version\s*:\s*(\S+)", text)
    if wrapper2:
        return Identity("mpiwrapper", wrapper2.group(1), "unknown", "MPItrampoline's own ABI")

    return Identity(None, None, "unknown")


def identify(
    text: str,
    abi_version: tuple[int, int] | None = None,
    library: str | None = None,
    abi_failure: str | None = None,
) -> Identity:
    """:func:`parse_library_version` combined with the library's ABI query.

    Args:
        text: MPI_Get_library_version string.
        abi_version: (major, minor) from MPI_Abi_get_version, or None when
            the library has no such symbol (or the call failed).
        library: path or name of the library (only its file name matters:
            ``libmpi_abi*`` without a usable ABI query is a pre-MPI-5 draft).
        abi_failure: why MPI_Abi_get_version, present, gave no answer
            (crash, time-out, error code), or None.

    Returns:
        :class:`Identity` with ``abi`` 'mpi-abi' when the library reports an
        ABI major >= 1 (or is an ``mpi_abi_wrapper`` saying so); 'unknown'
        for draft ABIs (major 0, or ``libmpi_abi`` without the query);
        otherwise the native family of the version string. A soname alone
        never decides anything. Never raises.
    """
    base = parse_library_version(text)
    if abi_version is not None and abi_version[0] >= 1:
        return base._replace(
            abi="mpi-abi", note=f"MPI_Abi_get_version {abi_version[0]}.{abi_version[1]}"
        )
    if abi_version is not None and abi_version[0] == 0:
        return base._replace(
            abi="unknown",
            note=f"pre-standard draft ABI (MPI_Abi_get_version {abi_version[0]}.{abi_version[1]})",
        )
    name = os.path.basename(library or "")
    if abi_failure:
        abi: Abi = "unknown" if name.startswith("libmpi_abi") else base.abi
        return base._replace(abi=abi, note=f"MPI_Abi_get_version failed: {abi_failure}")
    if abi_version is None and name.startswith("libmpi_abi") and base.abi != "mpi-abi":
        return base._replace(
            abi="unknown", note="libmpi_abi without MPI_Abi_get_version: a pre-MPI-5 draft ABI"
        )
    return base


# --------------------------------------------------------------------------
# Calling a library in a child interpreter


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the loader and anything it started (its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def call_library(load: str, environ: dict[str, str], timeout: float) -> LibraryCall:
    """Load `load` in ``sys.executable -I -c`` and call MPI_Get_library_version
    (and MPI_Abi_get_version when present).

    Args:
        load: path (or soname) handed to dlopen (RTLD_LAZY | RTLD_GLOBAL).
        environ: environment of the child (LD_LIBRARY_PATH resolves the
            library's own dependencies); ZES_ENABLE_SYSMAN=1 is added unless
            set (Level Zero workaround MPI.jl applies, open-mpi/ompi#10142).
        timeout: seconds before the child and its process group are killed.

    Returns:
        :class:`LibraryCall`. Never raises.
    """
    env = dict(environ)
    env.setdefault("ZES_ENABLE_SYSMAN", "1")
    argv = [sys.executable, "-I", "-c", _LOADER, load, str(BUFFER_SIZE), _MARK]
    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return LibraryCall(None, f"cannot start {sys.executable}: {exc.strerror or exc}")
    timed_out = False
    try:
        out, err = proc.communicate(timeout=max(timeout, 0.05))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        try:
            out, err = proc.communicate(timeout=_REAP_SECONDS)
        except subprocess.TimeoutExpired:
            out, err = b"", b""
    state: dict = {}
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith(_MARK):
            try:
                state = json.loads(line[len(_MARK) :])
            except ValueError:
                pass
    stage = state.get("stage", "startup")
    text = state.get("text") if state.get("rc") == 0 else None
    abi = state.get("abi_version") if state.get("abi_rc") == 0 else None
    abi_version = (int(abi[0]), int(abi[1])) if isinstance(abi, list) and len(abi) == 2 else None
    abi_symbol = bool(state.get("abi_symbol"))

    if timed_out:
        failure = f"timed out after {round(timeout, 1):g} s in {stage}"
    elif proc.returncode is not None and proc.returncode < 0:
        failure = f"killed by {_signal_name(-proc.returncode)} in {stage}"
    elif state.get("error"):
        failure = state["error"]
    elif "rc" in state and state["rc"] != 0:
        failure = f"MPI_Get_library_version returned error {state['rc']}"
    elif stage != "done":
        lines = err.decode("utf-8", "replace").strip().splitlines()
        failure = f"loader exited {proc.returncode} in {stage}" + (
            f": {lines[-1][:160]}" if lines else ""
        )
    else:
        failure = None

    if text is not None:
        # The version string came back; a later failure only concerns the ABI query.
        abi_failure = failure if stage == "MPI_Abi_get_version" else None
        if abi_failure is None and abi_symbol and "abi_rc" in state and state["abi_rc"] != 0:
            abi_failure = f"MPI_Abi_get_version returned error {state['abi_rc']}"
        return LibraryCall(text, None, abi_symbol, abi_version, abi_failure)
    return LibraryCall(None, failure or f"no answer ({stage})", abi_symbol)


# --------------------------------------------------------------------------
# Where libraries are


def _library_files(names: list[str]) -> list[str]:
    """MPI library file names among `names`, in the order to try them."""
    picked = []
    for name in names:
        m = LIBRARY_NAME.match(name)
        if m:
            soname_form = name.count(".so.") == 1 and name.rsplit(".so.", 1)[1].isdigit()
            picked.append(((_FAMILY_ORDER[m.group(1)], 0 if soname_form else 1, name), name))
    return [name for _key, name in sorted(picked)]


def _ldconfig(ctx: ProbeContext) -> str | None:
    found = ctx.which("ldconfig")
    if found:
        return found
    for path in LDCONFIG_FALLBACKS:
        if os.access(path, os.X_OK):
            return path
    return None


class _Search:
    """Yields candidate libraries in discovery order, once each (by real path),
    and remembers where it looked."""

    def __init__(self, ctx: ProbeContext, deadline: float, evidence: list[Evidence]) -> None:
        self.ctx = ctx
        self.deadline = deadline
        self.evidence = evidence
        self.looked: list[str] = []
        self._seen: set[str] = set()

    def _new(self, load: str) -> bool:
        key = os.path.realpath(load) if os.path.isabs(load) else load
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _in_host_dir(self, directory: str, found: str) -> Iterator[_Candidate]:
        for name in _library_files(self.ctx.listdir(directory)):
            host = os.path.join(directory, name)
            load = str(self.ctx.path(host))
            if self._new(load):
                yield _Candidate(host, load, found)

    def _in_real_dir(self, directory: str, found: str) -> Iterator[_Candidate]:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for name in _library_files(names):
            path = os.path.join(directory, name)
            if self._new(path):
                yield _Candidate(path, path, found)

    def __iter__(self) -> Iterator[_Candidate]:
        ctx = self.ctx
        explicit = ctx.environ.get(LIBRARY_ENV, "").strip()
        if explicit:
            self.looked.append(f"${LIBRARY_ENV}={explicit}")
            if os.path.isabs(explicit):
                load = str(ctx.path(explicit))
                exists = os.path.exists(load)
                self.evidence.append(
                    Evidence(
                        kind="env",
                        source=LIBRARY_ENV,
                        detail=explicit + ("" if exists else " (does not exist)"),
                    )
                )
                if exists and self._new(load):
                    yield _Candidate(explicit, load, f"${LIBRARY_ENV}")
            else:
                self.evidence.append(Evidence(kind="env", source=LIBRARY_ENV, detail=explicit))
                if self._new(explicit):
                    yield _Candidate(explicit, explicit, f"${LIBRARY_ENV} (dynamic loader search)")

        # relative entries (resolved against the caller's cwd by ld.so) are skipped
        dirs = [d for d in ctx.environ.get("LD_LIBRARY_PATH", "").split(":") if os.path.isabs(d)]
        count = f"{len(dirs)} dir{'' if len(dirs) == 1 else 's'}"
        self.looked.append(f"LD_LIBRARY_PATH ({count})" if dirs else "LD_LIBRARY_PATH (unset)")
        for directory in dirs:
            yield from self._in_host_dir(directory, "in LD_LIBRARY_PATH")

        tools = []
        for tool in LAUNCHERS:
            exe = ctx.which(tool)
            if not exe:
                continue
            tools.append(tool)
            bindirs = dict.fromkeys([os.path.dirname(exe), os.path.dirname(os.path.realpath(exe))])
            for bindir in bindirs:
                for sub in ("lib", "lib64"):
                    libdir = os.path.normpath(os.path.join(bindir, "..", sub))
                    yield from self._in_real_dir(libdir, f"next to {exe}")
        self.looked.append(
            f"lib dirs next to {'/'.join(tools)}"
            if tools
            else f"lib dirs next to {'/'.join(LAUNCHERS)} (none on PATH)"
        )

        ldconfig = _ldconfig(ctx)
        if ldconfig is None:
            self.looked.append("ldconfig cache (no ldconfig)")
            return
        self.looked.append("ldconfig cache")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.evidence.append(
                Evidence(kind="command", source=f"{ldconfig} -p", detail="not run: time limit")
            )
            return
        done, ev = ctx.run([ldconfig, "-p"], timeout=remaining)
        self.evidence.append(ev)
        if done is None or done.returncode != 0:
            return
        entries = []
        for line in done.stdout.splitlines():
            m = re.match(r"\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)", line)
            if m and LIBRARY_NAME.match(m.group(1)):
                entries.append(m.group(3))
        order = {
            name: i for i, name in enumerate(_library_files([os.path.basename(p) for p in entries]))
        }
        for path in sorted(entries, key=lambda p: order.get(os.path.basename(p), len(order))):
            if self._new(path):
                yield _Candidate(path, path, "in the ldconfig cache")


# --------------------------------------------------------------------------
# Corroboration by the implementations' own tools


def _tool_claim(tool: str, output: str) -> tuple[str, str | None] | None:
    """(implementation, version) that a tool's output states, or None."""
    if tool == "mpichversion":
        m = re.search(r"^\s*(MPICH2?|MVAPICH2?)\s+Version\s*:\s*(\S+)", output, re.M)
        if m:
            return ("mvapich" if m.group(1).startswith("MVAPICH") else "mpich"), m.group(2)
        return None
    if tool == "ompi_info":
        m = re.search(r"ompi:version:full:(\S+)", output) or re.search(
            r"^\s*Open MPI:?\s+v?(\d[\w.]*)", output, re.M
        )
        if m:
            return ("spectrum" if "Spectrum MPI" in output else "openmpi"), m.group(1)
        m = re.search(r"Spectrum MPI:?\s+v?(\d[\w.]*)", output)
        return ("spectrum", m.group(1)) if m else None
    # mpirun / mpiexec --version
    m = re.search(r"\((?:Open MPI|OpenRTE)\)\s+(\S+)", output)
    if m:
        return ("spectrum" if "Spectrum MPI" in output else "openmpi"), m.group(1)
    m = re.search(r"Intel\(R\) MPI Library for Linux\* OS, Version (\S+)", output)
    if m:
        return "intelmpi", m.group(1)
    if "HYDRA build details" in output:
        m = re.search(r"Version:\s+(\S+)", output)
        return "hydra", (m.group(1) if m else None)
    if "IBM Spectrum MPI" in output:
        m = re.search(r"(\d+(?:\.\d+)+\w*)", output)
        return "spectrum", (m.group(1) if m else None)
    return None


def _verdict(claim: tuple[str, str | None] | None, ident: Identity | None) -> str:
    if claim is None:
        return "not recognised"
    said = " ".join(p for p in claim if p)
    if ident is None or ident.implementation is None:
        return f"says {said}"
    impl, version = claim
    if impl == "hydra":
        same = ident.implementation in ("mpich", "mvapich")
        version_ok = ident.implementation != "mpich" or version in (None, ident.version)
    else:
        same = impl == ident.implementation
        version_ok = version in (None, ident.version)
    if same and version_ok:
        return f"says {said}: agrees with the library"
    return f"says {said}: differs from the library ({ident.implementation} {ident.version})"


def _corroborate(ctx: ProbeContext, deadline: float, ident: Identity | None) -> list[Evidence]:
    found = []
    launcher = next((t for t in ("mpirun", "mpiexec") if ctx.which(t)), None)
    plan = [("mpichversion", []), ("ompi_info", ["--version"])]
    if launcher:
        plan.append((launcher, ["--version"]))
    for tool, args in plan:
        exe = ctx.which(tool)
        if not exe:
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            found.append(
                Evidence(
                    kind="command", source=" ".join([exe, *args]), detail="not run: time limit"
                )
            )
            continue
        done, ev = ctx.run([exe, *args], timeout=remaining)
        if done is not None:
            claim = _tool_claim(tool, (done.stdout or "") + "\n" + (done.stderr or ""))
            ev = ev.model_copy(update={"detail": f"{ev.detail} ({_verdict(claim, ident)})"})
        found.append(ev)
    return found


# --------------------------------------------------------------------------
# The probe


def _first_line(text: str | None) -> str | None:
    if not text:
        return None
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    return line or None


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def probe(ctx: ProbeContext) -> MpiFacts:
    """Identify the MPI library this environment resolves by loading it.

    Args:
        ctx: probe inputs: ``ctx.environ`` (``IMAGEFIT_MPI_LIBRARY``,
            ``LD_LIBRARY_PATH``, ``PATH``), ``ctx.path`` for library files,
            ``ctx.timeout`` as the budget for all loads and commands
            together (one load gets at most half of it, and at least 1 s,
            so that a hanging library leaves time for the next candidate),
            ``ctx.allow_commands`` (nothing is loaded or run without it).

    Returns:
        :class:`MpiFacts`: ``implementation`` (mpich, mvapich, craympich,
        intelmpi, openmpi, spectrum, fujitsu, mpt, mpiwrapper, or None),
        ``version`` ('4.2.1', '2021.11', '8.1.28.2'), ``abi`` (mpich,
        openmpi, mpi-abi, unknown), ``library`` (the path that answered),
        ``library_version`` (first line of its string), and ``probe``:
        ``ok`` identified; ``none`` no candidate library (the reason lists
        where it looked); ``unknown`` a library was found but not identified
        (crash, time-out, no symbol, unrecognised string), or not probed
        (``ctx.allow_commands`` false); ``error`` for anything unexpected.
        Evidence: the env override, each candidate (``file``), each load
        (``call`` MPI_Get_library_version, MPI_Abi_get_version), ldconfig
        and the corroborating commands with their verdicts.

    Never raises.
    """
    if not ctx.allow_commands:
        return MpiFacts(probe=Probe(status="unknown", reason=NOT_LIVE))
    try:
        return _probe(ctx)
    except Exception as exc:  # never raise: report the failure instead
        return MpiFacts(
            probe=Probe(
                status="error", reason=_one_line(f"MPI probe failed: {type(exc).__name__}: {exc}")
            )
        )


def _probe(ctx: ProbeContext) -> MpiFacts:
    deadline = time.monotonic() + ctx.timeout
    evidence: list[Evidence] = []
    search = _Search(ctx, deadline, evidence)
    failures: list[str] = []
    unrecognised: tuple[_Candidate, LibraryCall] | None = None
    chosen: tuple[_Candidate, LibraryCall, Identity] | None = None
    tried = 0

    for cand in search:
        tried += 1
        evidence.append(
            Evidence(kind="file", source=cand.path, detail=f"candidate, found {cand.found}")
        )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            failures.append(f"{cand.path}: not tried, time limit reached")
            break
        call = call_library(
            cand.load, ctx.environ, min(remaining, max(ctx.timeout * LOAD_SHARE, 1.0))
        )
        if call.text is None:
            evidence.append(
                Evidence(
                    kind="call",
                    source="MPI_Get_library_version",
                    detail=f"{cand.path}: {call.failure}",
                )
            )
            failures.append(f"{cand.path}: {call.failure}")
            continue
        ident = identify(call.text, call.abi_version, cand.path, call.abi_failure)
        detail = f"{cand.path}: {_one_line(call.text, 200)}"
        if ident.note:
            detail += f" [ABI {ident.abi}: {ident.note}]"
        evidence.append(Evidence(kind="call", source="MPI_Get_library_version", detail=detail))
        if call.abi_symbol:
            shown = call.abi_failure or (
                f"{call.abi_version[0]}.{call.abi_version[1]}" if call.abi_version else "no answer"
            )
            evidence.append(
                Evidence(kind="call", source="MPI_Abi_get_version", detail=f"{cand.path}: {shown}")
            )
        elif os.path.basename(cand.path).startswith("libmpi_abi"):
            evidence.append(
                Evidence(
                    kind="call", source="MPI_Abi_get_version", detail=f"{cand.path}: no such symbol"
                )
            )
        if ident.implementation is None:
            failures.append(f"{cand.path}: unrecognised MPI_Get_library_version string")
            unrecognised = unrecognised or (cand, call)
            continue
        chosen = (cand, call, ident)
        break

    ident_for_tools = chosen[2] if chosen else None
    evidence.extend(_corroborate(ctx, deadline, ident_for_tools))

    if chosen:
        cand, call, ident = chosen
        return MpiFacts(
            probe=Probe(status="ok", reason="", evidence=tuple(evidence)),
            implementation=ident.implementation,
            version=ident.version,
            abi=ident.abi,
            library=cand.path,
            library_version=_first_line(call.text),
        )
    if tried == 0:
        reason = "no MPI library found; looked in " + ", ".join(search.looked)
        return MpiFacts(
            probe=Probe(status="none", reason=_one_line(reason), evidence=tuple(evidence))
        )
    reason = "MPI library found but not identified: " + "; ".join(failures)
    if unrecognised:
        cand, call = unrecognised
        return MpiFacts(
            probe=Probe(status="unknown", reason=_one_line(reason), evidence=tuple(evidence)),
            library=cand.path,
            library_version=_first_line(call.text),
        )
    return MpiFacts(
        probe=Probe(status="unknown", reason=_one_line(reason), evidence=tuple(evidence))
    )
