"""MPI probe: real shared libraries built with gcc that export
``MPI_Get_library_version`` returning the implementations' exact strings
(and ``MPI_Abi_get_version`` where the real ones do), one that segfaults, one
that hangs, one without the symbol; fake ``mpichversion`` / ``ompi_info`` /
``mpirun`` / ``ldconfig`` scripts printing their real formats.

Where each string comes from (verbatim unless marked *composed*):

- MPICH 3.3.2 (tabs), MVAPICH2 2.3.5, Cray MPICH 7.7.14, Intel MPI 2019 Update 6,
  Open MPI 4.1.1: E4S-Project/e4s-cl ``tests/test_detect_name.py``.
- MPICH 3.4.2, MPICH2 1.5, MPICH 4.3.0 with ``--enable-mpi-abi``, mpi_abi_wrapper,
  Open MPI 4.1.1 conda, 5.0.0rc12, Spectrum 3.1.0/10.03.01.00, Intel 2019 Update 4 /
  2021.6 / 2018, MVAPICH2 2.3.6, Cray 7.7.10 / 8.1.21, Fujitsu 4.0.0, MPIwrapper,
  HPE MPT / HMPT 2.23: JuliaParallel/MPI.jl MPIPreferences (``MPIPreferences.jl``
  comments and its version-string test table).
- MPICH 4.3.0 with space padding: MPI.jl ``MPI.versioninfo()`` transcript.
- Spectrum MPI 10.3.1.03rtm0, Cray MPICH 8.1.27.20, MVAPICH2 2.3.7: LLNL/Adiak
  ``src/adksys_mpi.c`` comments.
- MPICH 4.2.1 and 5.0.0 library strings: *composed* in the format of pmodels/mpich
  ``MPI_Get_library_version`` ("MPICH Version:\\t%s\\nMPICH Release date:\\t%s\\nMPICH
  ABI:\\t%s\\n...") with the 4.2.1 release date from a Hydra transcript and the 5.0.0
  ABI/configure values from an ``mpichversion`` transcript of an ``--enable-mpi-abi`` build.
- Cray MPICH 8.1.28.2, Intel MPI 2021.11, Open MPI v1.10.7, MVAPICH 3.0: first lines as
  in the issue / the implementations' formats (MVAPICH 3 ``MVAPICH Version:`` as mpi4py's
  ``pympivendor.h`` and spack's ``mvapich/package.py`` parse it); the rest *composed*.
- Tool output: ``mpichversion`` ("MPICH Version:    \\t%s", pmodels/mpich
  ``src/env/mpichversion.c``), ``ompi_info --version`` ("Open MPI v4.1.6" first line),
  ``mpirun --version`` ("mpirun (Open MPI) 2.1.1\\nReport bugs to ...", "HYDRA build
  details:\\n    Version: ..."), ``ldconfig -p`` (glibc's cache listing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hostfacts.context import ProbeContext
from hostfacts.model import MpiFacts
from hostfacts.probes import mpi
from hostfacts.probes.mpi import identify, parse_library_version

# --------------------------------------------------------------------------
# Exact strings

MPICH_332 = """MPICH Version:\t3.3.2
MPICH Release date:\tTue Nov 12 21:23:16 CST 2019
MPICH ABI:\t13:8:1
MPICH Device:\tch3:nemesis
MPICH configure:\t--prefix=/storage/packages/hackathon-spack/padded-path-length-for-binaries/linux-centos8-x86_64/gcc-8.3.1/mpich-3.3.2-p3cgu65l6tfwgcz2di4c2as3xegyvqwq --disable-silent-rules --enable-shared --with-hwloc-prefix=/storage/packages/hackathon-spack/padded-path-length-for-binaries/linux-centos8-x86_64/gcc-8.3.1/hwloc-2.4.0-t5gpp6x6bw6blyx25ujx4bk5if5iywjt --with-pm=hydra -"""
MPICH_342 = "MPICH Version:\t3.4.2\nMPICH Release date:\tWed May 26 15:51:40 CDT 2021\nMPICH Device:\tch3:nemesis\nMPICH configure:\t--prefix=/usr\n"
MPICH_421 = (  # composed: pmodels/mpich format, real 4.2.1 release date
    "MPICH Version:\t4.2.1\nMPICH Release date:\tWed Apr 17 15:30:02 CDT 2024\nMPICH ABI:\t16:1:4\n"
    "MPICH Device:\tch4:ofi\nMPICH configure:\t--prefix=/opt/mpich\nMPICH CC:\tgcc    -O2\n"
    "MPICH CXX:\tg++   -O2\nMPICH F77:\tgfortran   -O2\nMPICH FC:\tgfortran   -O2\n"
)
MPICH_430_PADDED = """MPICH Version:      4.3.0
MPICH Release date: Mon Feb  3 09:09:47 AM CST 2025
MPICH ABI:          17:0:5
MPICH Device:       ch3:nemesis
MPICH configure:    --build=x86_64-linux-musl --disable-dependency-tracking --disable-doc --enable-fast=ndebug,O3 --enable-static=no --host=x86_64-linux-gnu --prefix=/workspace/destdir --with-device=ch3 --with-hwloc=/workspace/destdir
MPICH CC:           cc     -DNDEBUG -DNVALGRIND -O3
MPICH CXX:          c++   -DNDEBUG -DNVALGRIND -O3
MPICH F77:          gfortran   -O3
MPICH FC:           gfortran   -O3
MPICH features:
"""
MPICH_430_ABI_DRAFT = "MPICH Version:\t4.3.0\nMPICH Release date:\tMon Feb 3 09:00:00 CST 2025\nMPICH configure:\t--prefix=/usr --enable-mpi-abi\n"
MPICH_500_ABI = (  # composed: pmodels/mpich format, values of an --enable-mpi-abi 5.0.0 build
    "MPICH Version:\t5.0.0\nMPICH Release date:\tunreleased development copy\nMPICH ABI:\t18:0:6\n"
    "MPICH Device:\tch4:ucx\nMPICH configure:\t--prefix=/tmp/mpich-5.0.0-abi-fort-install "
    "--with-device=ch4:ucx --with-ucx=/usr --enable-shared --disable-static --enable-mpi-abi\n"
    "MPICH CC:\tgcc    -O2\nMPICH F77:\tgfortran   -O2\nMPICH FC:\tgfortran   -O2\n"
)
MPICH2_15 = "MPICH2 Version:\t1.5\nMPICH2 Release date:\tUnreleased development copy\n"
MVAPICH2_235 = """MVAPICH2 Version      :\t2.3.5
MVAPICH2 Release date :\tMon November 30 22:00:00 EST 2020
MVAPICH2 Device       :\tch3:mrail
MVAPICH2 configure    :\t--prefix=/storage/packages/hackathon-spack/padded-path-length-for-binaries/linux-centos8-x86_64/gcc-8.3.1/mvapich2-2.3.5-7ad2fvw2udf4zchllbq5csvdt437mpw4 --enable-shared --enable-romio --disable-silent-rules --disable-new-dtags --enable-fortran=all --enable-threads=multiple --with-ch3-rank-bits=32 --enable-wrapper-rpath=yes --disable-alloca --enable-fa"""
MVAPICH2_236 = (
    "MVAPICH2 Version      :\t2.3.6\nMVAPICH2 Release date :\tMon March 29 22:00:00 EST 2021\n"
)
MVAPICH2_237 = "MVAPICH2 Version      :\t2.3.7\n"
MVAPICH_30 = "MVAPICH Version:\t3.0\nMVAPICH Release date:\tSat Feb 24 22:00:00 EST 2024\nMVAPICH ABI:\t16:0:4\nMVAPICH Device:\tch4:ofi\n"
CRAY_7714 = "MPI VERSION    : CRAY MPICH version 7.7.14 (ANL base 3.2)\nMPI BUILD INFO : Built Tue May 19 13:54:36 2020 (git hash e25eab9) MT-G\n\n"
CRAY_7710 = "MPI VERSION    : CRAY MPICH version 7.7.10 (ANL base 3.2)\nMPI BUILD INFO : Built Fri Oct 18 12:00:00 2019\n"
CRAY_8121 = "MPI VERSION    : CRAY MPICH version 8.1.21 (ANL base 3.4a2)\n"
CRAY_81282 = "MPI VERSION    : CRAY MPICH version 8.1.28.2 (ANL base 3.4a2)\nMPI BUILD INFO : Built Tue Oct 24 21:46:04 2023 (git hash 1ba2cd8) (CH4)\n"
INTEL_2019U6 = "Intel(R) MPI Library 2019 Update 6 for Linux* OS\n\n"
INTEL_2019U4 = "Intel(R) MPI Library 2019 Update 4 for Linux* OS\n"
INTEL_20216 = "Intel(R) MPI Library 2021.6 for Linux* OS\n"
INTEL_2018 = "Intel(R) MPI Library 2018 for Linux* OS\n"
INTEL_202111 = "Intel(R) MPI Library 2021.11 for Linux* OS\n"
OMPI_411 = "Open MPI v4.1.1, package: Open MPI user@host Distribution, ident: 4.1.1, repo rev: v4.1.1, Apr 24, 2021"
OMPI_411_CONDA = "Open MPI v4.1.1, package: Open MPI conda@8a2bcd3b1b46 Distribution, ident: 4.1.1, repo rev: v4.1.1, Apr 24, 2021\n"
OMPI_500RC12 = "Open MPI v5.0.0rc12, package: Open MPI root@builder Distribution, ident: 5.0.0rc12, repo rev: v5.0.0rc12, Unreleased developer copy\n"
OMPI_5010_DEBIAN = (
    "Open MPI v5.0.10, package: Debian OpenMPI, ident: 5.0.10, repo rev: v5.0.10, Feb 23, 2026"
)
OMPI_1107 = "Open MPI v1.10.7, package: Open MPI buildd@lgw01-amd64-016 Distribution, ident: 1.10.7, repo rev: v1.10.6-48-g5e373bf, May 16, 2017"
SPECTRUM_310 = "Open MPI v3.1.0, package: IBM Spectrum MPI, ident: 10.03.01.00rtm0, repo rev: IBM_SPECTRUM_MPI_10.03.01.00_2019.04.02, Apr 02, 2019\n"
SPECTRUM_1031 = "Open MPI v10.3.1.03rtm0, package: IBM Spectrum MPI, ident: IBM Spectrum MPI 10.3.1.03rtm0, repo rev: IBM_SPECTRUM_MPI_10.03.01.03, Jul 09, 2019"
FUJITSU_400 = "FUJITSU MPI Library 4.0.0 (4.0.1fj4.0.0)"
ABI_WRAPPER = (
    "mpi_abi_wrapper 1.2.0 (MPI 5.0 standard ABI, MPI_ABI_VERSION 1.0)\nwrapping:\n"
    "Open MPI v5.0.10, package: Debian OpenMPI, ident: 5.0.10, repo rev: v5.0.10, Feb 23, 2026"
)
MPIWRAPPER = "MPIwrapper Version:\t2.2.2\nMPIwrapper Release date:\t2021-11-01\n"
HPE_MPT = "HPE MPT 2.23  08/26/20 02:54:49-root"
HPE_HMPT = "HPE HMPT 2.23  08/26/20 02:59:48-root"
UNKNOWN = "Some Other MPI 1.0\n"


# --------------------------------------------------------------------------
# The parser on the exact strings

PARSED = [
    (MPICH_332, ("mpich", "3.3.2", "mpich")),
    (MPICH_342, ("mpich", "3.4.2", "mpich")),
    (MPICH_421, ("mpich", "4.2.1", "mpich")),
    (MPICH_430_PADDED, ("mpich", "4.3.0", "mpich")),
    (
        "MPICH Version:\t3.0.4\nMPICH Release date:\tWed Apr 24 10:08:10 CDT 2013\n",
        ("mpich", "3.0.4", "unknown"),
    ),
    (MPICH2_15, ("mpich", "1.5", "unknown")),
    # the configure line alone does not make a library standard-ABI: libmpi.so of
    # an --enable-mpi-abi build is MPICH ABI (see identify for libmpi_abi)
    (MPICH_500_ABI, ("mpich", "5.0.0", "mpich")),
    (MVAPICH2_235, ("mvapich", "2.3.5", "mpich")),
    (MVAPICH2_236, ("mvapich", "2.3.6", "mpich")),
    (MVAPICH2_237, ("mvapich", "2.3.7", "mpich")),
    (MVAPICH_30, ("mvapich", "3.0", "mpich")),
    (CRAY_7714, ("craympich", "7.7.14", "mpich")),
    (CRAY_7710, ("craympich", "7.7.10", "mpich")),
    (CRAY_8121, ("craympich", "8.1.21", "mpich")),
    (CRAY_81282, ("craympich", "8.1.28.2", "mpich")),
    (
        "MPI VERSION    : CRAY MPICH version 8.1.27.20 (ANL base 3.4a2)\n",
        ("craympich", "8.1.27.20", "mpich"),
    ),
    (INTEL_2019U6, ("intelmpi", "2019.6", "mpich")),
    (INTEL_2019U4, ("intelmpi", "2019.4", "mpich")),
    (INTEL_20216, ("intelmpi", "2021.6", "mpich")),
    (INTEL_2018, ("intelmpi", "2018", "mpich")),
    (INTEL_202111, ("intelmpi", "2021.11", "mpich")),
    (OMPI_411, ("openmpi", "4.1.1", "openmpi")),
    (OMPI_411_CONDA, ("openmpi", "4.1.1", "openmpi")),
    (OMPI_500RC12, ("openmpi", "5.0.0rc12", "openmpi")),
    (OMPI_5010_DEBIAN, ("openmpi", "5.0.10", "openmpi")),
    (OMPI_1107, ("openmpi", "1.10.7", "openmpi")),
    (SPECTRUM_310, ("spectrum", "10.03.01.00", "openmpi")),
    (SPECTRUM_1031, ("spectrum", "10.3.1.03rtm0", "openmpi")),
    (FUJITSU_400, ("fujitsu", "4.0.0", "openmpi")),
    (ABI_WRAPPER, ("openmpi", "5.0.10", "mpi-abi")),
    (MPIWRAPPER, ("mpiwrapper", "2.2.2", "unknown")),
    (HPE_MPT, ("mpt", "2.23", "unknown")),
    (HPE_HMPT, ("mpt", "2.23", "mpich")),
    (UNKNOWN, (None, None, "unknown")),
    ("", (None, None, "unknown")),
]


@pytest.mark.parametrize(
    ("text", "expected"), PARSED, ids=[repr(t.split("\n")[0][:40]) for t, _ in PARSED]
)
def test_parse_library_version(text, expected):
    got = parse_library_version(text)
    assert (got.implementation, got.version, got.abi) == expected


def test_soname_never_decides():
    """Open MPI 1.10 shipped libmpi.so.12, the MPICH-ABI soname: the string decides."""
    got = identify(OMPI_1107, None, "/usr/lib/openmpi/lib/libmpi.so.12")
    assert (got.implementation, got.abi) == ("openmpi", "openmpi")
    # and an MPICH string is MPICH whatever the file is called
    assert identify(MPICH_421, None, "/opt/x/libmpi.so.40").abi == "mpich"


def test_identify_standard_abi_from_the_query():
    # MPICH's libmpi_abi answers MPI_ABI_VERSION.MPI_ABI_SUBVERSION (1.0 for MPI-5.0) ...
    assert identify(MPICH_500_ABI, (1, 0), "/opt/mpich/lib/libmpi_abi.so.0").abi == "mpi-abi"
    # ... its libmpi.so answers -1, -1: MPICH ABI although the configure line says --enable-mpi-abi
    assert identify(MPICH_500_ABI, (-1, -1), "/opt/mpich/lib/libmpi.so.12").abi == "mpich"
    # pre-standard drafts: Open MPI's MPI_Abi_version 0.1, MPICH 4.3's libmpi_abi without the query
    assert identify(OMPI_5010_DEBIAN, (0, 1), "libmpi_abi.so").abi == "unknown"
    draft = identify(MPICH_430_ABI_DRAFT, None, "/usr/lib/libmpi_abi.so.0")
    assert (draft.implementation, draft.version, draft.abi) == ("mpich", "4.3.0", "unknown")
    assert "draft" in draft.note


# --------------------------------------------------------------------------
# Real libraries

GCC = shutil.which("gcc") or shutil.which("cc")
needs_cc = pytest.mark.skipif(GCC is None, reason="no C compiler to build the fake MPI libraries")

C_TEMPLATE = """\
#include <string.h>
#include <unistd.h>
#define MPI_MAX_LIBRARY_VERSION_STRING 8192
static const char V[] = %(text)s;
int MPI_Get_library_version(char *version, int *resultlen)
{
%(before)s
    size_t n = sizeof(V) - 1;
    if (n > MPI_MAX_LIBRARY_VERSION_STRING - 1)
        n = MPI_MAX_LIBRARY_VERSION_STRING - 1;
    memcpy(version, V, n);
    version[n] = '\\0';
    *resultlen = (int) n;
    return 0;
}
%(extra)s
"""
CRASH = "    *(volatile int *) 0 = 42;  /* SIGSEGV */"
HANG = "    sleep(60);"
NO_SYMBOL = "int MPI_Init(int *argc, char ***argv) { (void) argc; (void) argv; return 0; }\n"


def _c_string(text: str) -> str:
    out = []
    for byte in text.encode():
        ch = chr(byte)
        out.append(ch if 32 <= byte < 127 and ch not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _abi_function(major: int, minor: int) -> str:
    return f"int MPI_Abi_get_version(int *major, int *minor) {{ *major = {major}; *minor = {minor}; return 0; }}\n"


def _build(
    directory: Path,
    name: str,
    text: str = "",
    before: str = "",
    extra: str = "",
    symbol: bool = True,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    src = directory / f"{name}.c"
    if symbol:
        src.write_text(C_TEMPLATE % {"text": _c_string(text), "before": before, "extra": extra})
    else:
        src.write_text(NO_SYMBOL)
    out = directory / name
    subprocess.run(
        [GCC, "-shared", "-fPIC", "-O0", f"-Wl,-soname,{name}", "-o", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    src.unlink()
    return out


def _script(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _printf(text: str) -> str:
    """A shell line printing `text` exactly (single-quoted printf %s)."""
    return "printf '%s' '" + text.replace("'", "'\\''") + "'\n"


# (directory, file name, string, C before the copy, extra C)
LIBRARIES = {
    "mpich": ("libmpi.so.12", MPICH_421, "", ""),
    "mpich5": ("libmpi.so.12", MPICH_500_ABI, "", _abi_function(-1, -1)),
    "mpich5abi": ("libmpi_abi.so.0", MPICH_500_ABI, "", _abi_function(1, 0)),
    "mpich43draft": ("libmpi_abi.so.0", MPICH_430_ABI_DRAFT, "", ""),
    "cray": ("libmpi_cray.so.12", CRAY_81282, "", ""),
    "intel": ("libmpi.so.12", INTEL_202111, "", ""),
    "mvapich2": ("libmpi.so.12", MVAPICH2_235, "", ""),
    "mvapich3": ("libmpi.so.12", MVAPICH_30, "", ""),
    "ompi4/lib": ("libmpi.so.40", OMPI_411_CONDA, "", ""),
    "ompi5": ("libmpi.so.40", OMPI_5010_DEBIAN, "", ""),
    "ompi110": ("libmpi.so.12", OMPI_1107, "", ""),
    "spectrum": ("libmpi_ibm.so.3", SPECTRUM_310, "", ""),
    "mpt": ("libmpi.so", HPE_MPT, "", ""),
    "crash": ("libmpi.so.12", MPICH_421, CRASH, ""),
    "hang": ("libmpi.so.12", MPICH_421, HANG, ""),
    "unrecognised": ("libmpi.so.12", UNKNOWN, "", ""),
    "abicrash": (
        "libmpi_abi.so.0",
        MPICH_500_ABI,
        "",
        "int MPI_Abi_get_version(int *major, int *minor) { (void) major; (void) minor; *(volatile int *) 0 = 1; return 0; }\n",
    ),
}


@pytest.fixture(scope="session")
def libs(tmp_path_factory) -> Path:
    """A tree of directories, each holding one fake MPI library named as the real one."""
    if GCC is None:
        pytest.skip("no C compiler")
    root = tmp_path_factory.mktemp("mpi")
    for where, (name, text, before, extra) in LIBRARIES.items():
        _build(root / where, name, text, before, extra)
    # MPICH 5 with --enable-mpi-abi installs both next to each other
    shutil.copy(root / "mpich5abi" / "libmpi_abi.so.0", root / "mpich5" / "libmpi_abi.so.0")
    # the development symlink next to the soname: one candidate, not two
    (root / "mpich" / "libmpi.so").symlink_to("libmpi.so.12")
    _build(root / "nosymbol", "libmpi.so.12", symbol=False)
    # an Open MPI prefix: bin/mpirun, bin/ompi_info next to lib/libmpi.so.40
    _script(
        root / "ompi4" / "bin",
        "mpirun",
        _printf(
            "mpirun (Open MPI) 4.1.1\n\nReport bugs to http://www.open-mpi.org/community/help/\n"
        ),
    )
    _script(
        root / "ompi4" / "bin",
        "ompi_info",
        _printf("Open MPI v4.1.1\n\nhttp://www.open-mpi.org/community/help/\n"),
    )
    # MPICH's tools
    _script(
        root / "mpich-bin",
        "mpichversion",
        _printf(
            "MPICH Version:    \t4.2.1\nMPICH Release date:\tWed Apr 17 15:30:02 CDT 2024\nMPICH Device:    \tch4:ofi\n"
        ),
    )
    _script(
        root / "mpich-bin",
        "mpiexec",
        _printf(
            "HYDRA build details:\n    Version:                                 4.2.1\n    Release Date:                            Wed Apr 17 15:30:02 CDT 2024\n"
        ),
    )
    (root / "empty").mkdir()
    (root / "empty-bin").mkdir()
    return root


@pytest.fixture(autouse=True)
def no_host_ldconfig(monkeypatch):
    """Keep this host's own ldconfig cache (and any system MPI in it) out of the tests."""
    monkeypatch.setattr(mpi, "LDCONFIG_FALLBACKS", ())


def _ctx(
    path: list[Path] | None = None, ld: list[Path] | None = None, timeout: float = 5.0, **env: str
) -> ProbeContext:
    environ = {"PATH": ":".join(str(p) for p in path or []), **env}
    if ld is not None:
        environ["LD_LIBRARY_PATH"] = ":".join(str(p) for p in ld)
    return ProbeContext(environ=environ, timeout=timeout)


def _details(facts: MpiFacts, source: str | None = None, kind: str | None = None) -> list[str]:
    return [
        f"{e.source} | {e.detail}"
        for e in facts.probe.evidence
        if (source is None or e.source == source or e.source.endswith("/" + source))
        and (kind is None or e.kind == kind)
    ]


# --------------------------------------------------------------------------
# Identification through the library

EXPECTED = [
    ("mpich", "libmpi.so.12", "mpich", "4.2.1", "mpich", "MPICH Version:\t4.2.1"),
    (
        "cray",
        "libmpi_cray.so.12",
        "craympich",
        "8.1.28.2",
        "mpich",
        "MPI VERSION    : CRAY MPICH version 8.1.28.2 (ANL base 3.4a2)",
    ),
    (
        "intel",
        "libmpi.so.12",
        "intelmpi",
        "2021.11",
        "mpich",
        "Intel(R) MPI Library 2021.11 for Linux* OS",
    ),
    ("mvapich2", "libmpi.so.12", "mvapich", "2.3.5", "mpich", "MVAPICH2 Version      :\t2.3.5"),
    ("mvapich3", "libmpi.so.12", "mvapich", "3.0", "mpich", "MVAPICH Version:\t3.0"),
    ("ompi4/lib", "libmpi.so.40", "openmpi", "4.1.1", "openmpi", OMPI_411_CONDA.strip()),
    ("ompi5", "libmpi.so.40", "openmpi", "5.0.10", "openmpi", OMPI_5010_DEBIAN),
    ("ompi110", "libmpi.so.12", "openmpi", "1.10.7", "openmpi", OMPI_1107),
    ("spectrum", "libmpi_ibm.so.3", "spectrum", "10.03.01.00", "openmpi", SPECTRUM_310.strip()),
    ("mpt", "libmpi.so", "mpt", "2.23", "unknown", HPE_MPT),
    ("mpich5abi", "libmpi_abi.so.0", "mpich", "5.0.0", "mpi-abi", "MPICH Version:\t5.0.0"),
    ("mpich43draft", "libmpi_abi.so.0", "mpich", "4.3.0", "unknown", "MPICH Version:\t4.3.0"),
]


@needs_cc
@pytest.mark.parametrize(
    ("where", "name", "impl", "version", "abi", "first"), EXPECTED, ids=[e[0] for e in EXPECTED]
)
def test_identifies_the_library_on_ld_library_path(libs, where, name, impl, version, abi, first):
    facts = mpi.probe(_ctx(path=[libs / "empty-bin"], ld=[libs / "empty", libs / where]))
    assert facts.probe.status == "ok", facts.probe.reason
    assert (facts.implementation, facts.version, facts.abi) == (impl, version, abi)
    assert facts.library == str(libs / where / name)
    assert facts.library_version == first
    calls = _details(facts, "MPI_Get_library_version", kind="call")
    assert calls and calls[0].startswith(f"MPI_Get_library_version | {libs / where / name}: ")
    assert _details(facts, str(libs / where / name), kind="file")


@needs_cc
def test_standard_abi_query_is_called_and_recorded(libs):
    facts = mpi.probe(_ctx(ld=[libs / "mpich5abi"]))
    assert facts.abi == "mpi-abi"
    assert _details(facts, "MPI_Abi_get_version") == [
        f"MPI_Abi_get_version | {libs / 'mpich5abi' / 'libmpi_abi.so.0'}: 1.0"
    ]


@needs_cc
def test_mpich_abi_build_with_both_libraries(libs):
    """An --enable-mpi-abi MPICH: libmpi.so (tried first) answers -1.-1, so the ABI is MPICH's."""
    facts = mpi.probe(_ctx(ld=[libs / "mpich5"]))
    assert (facts.implementation, facts.version, facts.abi) == ("mpich", "5.0.0", "mpich")
    assert facts.library == str(libs / "mpich5" / "libmpi.so.12")
    assert _details(facts, "MPI_Abi_get_version") == [
        f"MPI_Abi_get_version | {libs / 'mpich5' / 'libmpi.so.12'}: -1.-1"
    ]


@needs_cc
def test_draft_abi_library_is_not_the_standard(libs):
    facts = mpi.probe(_ctx(ld=[libs / "mpich43draft"]))
    assert facts.probe.status == "ok"
    assert facts.abi == "unknown"
    assert any("no such symbol" in d for d in _details(facts, "MPI_Abi_get_version"))
    assert any("draft" in d for d in _details(facts, "MPI_Get_library_version"))


@needs_cc
def test_explicit_library_comes_first(libs):
    chosen = libs / "mpich5" / "libmpi_abi.so.0"
    facts = mpi.probe(_ctx(ld=[libs / "mpich"], IMAGEFIT_MPI_LIBRARY=str(chosen)))
    assert (facts.library, facts.abi, facts.version) == (str(chosen), "mpi-abi", "5.0.0")
    assert _details(facts, "IMAGEFIT_MPI_LIBRARY", kind="env") == [
        f"IMAGEFIT_MPI_LIBRARY | {chosen}"
    ]


@needs_cc
def test_explicit_library_missing_falls_back(libs):
    facts = mpi.probe(
        _ctx(ld=[libs / "intel"], IMAGEFIT_MPI_LIBRARY=str(libs / "nowhere" / "libmpi.so.12"))
    )
    assert facts.implementation == "intelmpi"
    assert "(does not exist)" in _details(facts, "IMAGEFIT_MPI_LIBRARY", kind="env")[0]


@needs_cc
def test_symlinked_names_are_one_candidate(libs):
    facts = mpi.probe(_ctx(ld=[libs / "mpich"]))
    assert len(_details(facts, "MPI_Get_library_version")) == 1
    assert facts.library == str(libs / "mpich" / "libmpi.so.12")  # the soname, not the dev symlink


# --------------------------------------------------------------------------
# Crashes, hangs, missing symbols, strange strings


@needs_cc
def test_segfault_is_evidence_and_the_next_candidate_answers(libs):
    facts = mpi.probe(_ctx(ld=[libs / "crash", libs / "intel"]))
    assert facts.probe.status == "ok"
    assert facts.implementation == "intelmpi"
    assert (
        f"MPI_Get_library_version | {libs / 'crash' / 'libmpi.so.12'}: killed by SIGSEGV in MPI_Get_library_version"
        in _details(facts)
    )


@needs_cc
def test_segfault_alone_is_unknown(libs):
    facts = mpi.probe(_ctx(ld=[libs / "crash"]))
    assert facts.probe.status == "unknown"
    assert "SIGSEGV" in facts.probe.reason
    assert facts.implementation is None and facts.abi == "unknown"


@needs_cc
def test_hang_is_killed_within_the_time_limit(libs):
    start = time.monotonic()
    facts = mpi.probe(_ctx(ld=[libs / "hang", libs / "mpich"], timeout=1.0))
    elapsed = time.monotonic() - start
    assert elapsed < 3.0
    assert facts.probe.status == "unknown"
    assert "timed out after 1 s in MPI_Get_library_version" in facts.probe.reason


@needs_cc
def test_hang_leaves_time_for_the_next_candidate(libs):
    start = time.monotonic()
    facts = mpi.probe(_ctx(ld=[libs / "hang", libs / "mpich"], timeout=2.0))
    assert time.monotonic() - start < 3.0
    assert (facts.probe.status, facts.implementation) == ("ok", "mpich")
    assert any("timed out after 1 s" in d for d in _details(facts, "MPI_Get_library_version"))


@needs_cc
def test_crash_in_the_abi_query_keeps_the_version_string(libs):
    facts = mpi.probe(_ctx(ld=[libs / "abicrash"]))
    assert (facts.probe.status, facts.implementation, facts.version, facts.abi) == (
        "ok",
        "mpich",
        "5.0.0",
        "unknown",
    )
    assert _details(facts, "MPI_Abi_get_version") == [
        f"MPI_Abi_get_version | {libs / 'abicrash' / 'libmpi_abi.so.0'}: killed by SIGSEGV in MPI_Abi_get_version"
    ]
    assert any(
        "MPI_Abi_get_version failed" in d for d in _details(facts, "MPI_Get_library_version")
    )


@needs_cc
def test_no_symbol_is_unknown(libs):
    facts = mpi.probe(_ctx(ld=[libs / "nosymbol"]))
    assert facts.probe.status == "unknown"
    assert "no symbol MPI_Get_library_version" in facts.probe.reason


@needs_cc
def test_unrecognised_string_keeps_it(libs):
    facts = mpi.probe(_ctx(ld=[libs / "unrecognised"]))
    assert facts.probe.status == "unknown"
    assert (facts.library, facts.library_version) == (
        str(libs / "unrecognised" / "libmpi.so.12"),
        "Some Other MPI 1.0",
    )
    assert "unrecognised" in facts.probe.reason


# --------------------------------------------------------------------------
# Discovery beyond LD_LIBRARY_PATH, corroboration


@needs_cc
def test_found_next_to_mpirun_and_corroborated(libs):
    facts = mpi.probe(_ctx(path=[libs / "ompi4" / "bin"]))
    assert (facts.implementation, facts.version, facts.abi) == ("openmpi", "4.1.1", "openmpi")
    assert facts.library == str(libs / "ompi4" / "lib" / "libmpi.so.40")
    found = _details(facts, str(facts.library), kind="file")[0]
    assert f"next to {libs / 'ompi4' / 'bin' / 'mpirun'}" in found
    assert _details(facts, "ompi_info --version", kind="command") == [
        f"{libs / 'ompi4' / 'bin' / 'ompi_info'} --version | exit 0: Open MPI v4.1.1 (says openmpi 4.1.1: agrees with the library)"
    ]
    assert _details(facts, "mpirun --version", kind="command") == [
        f"{libs / 'ompi4' / 'bin' / 'mpirun'} --version | exit 0: mpirun (Open MPI) 4.1.1 (says openmpi 4.1.1: agrees with the library)"
    ]


@needs_cc
def test_mpich_tools_corroborate(libs):
    facts = mpi.probe(_ctx(path=[libs / "mpich-bin"], ld=[libs / "mpich"]))
    commands = _details(facts, kind="command")
    assert any(
        "mpichversion" in c and "says mpich 4.2.1: agrees with the library" in c for c in commands
    )
    assert any(
        "mpiexec --version" in c and "says hydra 4.2.1: agrees with the library" in c
        for c in commands
    )


@needs_cc
def test_disagreeing_tool_is_recorded_not_believed(libs):
    facts = mpi.probe(_ctx(path=[libs / "mpich-bin"], ld=[libs / "ompi5"]))
    assert facts.implementation == "openmpi"
    assert any(
        "differs from the library (openmpi 5.0.10)" in c for c in _details(facts, "mpichversion")
    )


@needs_cc
def test_ldconfig_cache_is_the_last_resort(libs, tmp_path):
    cache = (
        "3 libs found in cache `/etc/ld.so.cache'\n"
        "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n"
        f"\tlibmpi_cray.so.12 (libc6,x86-64) => {libs / 'cray' / 'libmpi_cray.so.12'}\n"
        "\tlibm.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libm.so.6\n"
    )
    _script(tmp_path / "bin", "ldconfig", f'[ "$1" = "-p" ] || exit 1\n{_printf(cache)}')
    facts = mpi.probe(_ctx(path=[tmp_path / "bin"], ld=[libs / "empty"]))
    assert (facts.implementation, facts.library) == (
        "craympich",
        str(libs / "cray" / "libmpi_cray.so.12"),
    )
    assert _details(facts, "ldconfig -p", kind="command")
    # not consulted when an earlier place already answers
    facts = mpi.probe(_ctx(path=[tmp_path / "bin"], ld=[libs / "mpich"]))
    assert facts.implementation == "mpich"
    assert not _details(facts, "ldconfig -p", kind="command")


@needs_cc
def test_nothing_anywhere_is_none(libs):
    facts = mpi.probe(_ctx(path=[libs / "empty-bin"], ld=[libs / "empty"]))
    assert facts.probe.status == "none"
    assert facts.probe.reason == (
        "no MPI library found; looked in LD_LIBRARY_PATH (1 dir), "
        "lib dirs next to mpirun/mpiexec/mpicc (none on PATH), ldconfig cache (no ldconfig)"
    )
    assert (facts.implementation, facts.library, facts.abi) == (None, None, "unknown")


def test_not_live_loads_nothing(tmp_path):
    facts = mpi.probe(ProbeContext(root=tmp_path, environ={"LD_LIBRARY_PATH": "/usr/lib"}))
    assert facts.probe.status == "unknown"
    assert facts.probe.reason == "not probed: MPI is identified by loading the live library"
    assert facts.probe.evidence == ()


def test_facts_round_trip(libs):
    if GCC is None:
        pytest.skip("no C compiler")
    facts = mpi.probe(_ctx(ld=[libs / "cray"]))
    assert MpiFacts.model_validate_json(facts.model_dump_json()) == facts


def test_loader_reports_a_file_that_is_not_a_library(tmp_path):
    """call_library on a path that is not a library: a load failure, no exception."""
    bogus = tmp_path / "libmpi.so.12"
    bogus.write_text("not an ELF file")
    call = mpi.call_library(str(bogus), dict(os.environ), 5.0)
    assert call.text is None and call.failure.startswith("cannot load: ")
