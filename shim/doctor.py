"""``imagefit doctor``: is the shim in front of the real runtimes, and can it work?

It reports, for a person (text) or a program (``--json``, ``schema_version`` 1):

- the shim script, and for each runtime name which file a plain ``podman``
  resolves to on PATH (the shim or the real one), the real runtime the shim
  would exec (:func:`shim.locate.find_runtime`) and its ``--version``;
- the config files considered, read or ignored (owner uid, mode, why), and
  the ``IMAGEFIT_*`` variables set;
- the cache directories (facts, decisions, parsed config) and whether they
  are writable, and the audit log destination;
- whether each registry named in the config (``insecure_registries``,
  ``[[policy]] image``) or with ``--registry HOST`` answers ``GET /v2/``
  (3 s): reachable, auth required, unreachable;
- the facts summary (CPU target, generic level, GPUs, MPI, probe statuses);
- the cluster (``cluster``): the configured node classes and whether each
  facts file reads, this node's class (by its hostname) and whether its live
  facts are the class's (a mislabelled node, or a stale class facts file,
  names the sections that differ), the shared cache directory
  (``decision_cache_dir``: absent or not a directory is a problem, its owner,
  mode and sticky bit), and with ``--image REF`` the config's policies for
  REF against REF's index (a pin that names no build is a problem).

Every finding is either a **problem** (one line under ``problems``; exit 1)
or a **note** (under ``notes``; exit unchanged), by one rule: a problem is
anything that makes a shimmed command behave other than the configuration
and this host's facts intend, or that someone has to fix (a runtime the shim
cannot run, a config file or entry ignored, a cache or audit log that cannot
be written, a registry that cannot be used, facts the shim cannot trust, an
insecure PATH); a note is a state someone chose on purpose that changes what
the shim does (``IMAGEFIT_DISABLE=1``, ``IMAGEFIT_DRY_RUN=1``). Nothing that
doctor reports as wrong leaves it "healthy".

Exit status: 0 healthy (no problem), 1 at least one problem, 2 a usage
error, 125 doctor itself failed (one line on stderr). ``--json`` prints the
same report as one object whose keys are stable within a
``schema_version``: ``healthy`` (bool), ``problems`` and ``notes`` (lists of
one-line strings), and the sections ``imagefit``, ``runtimes``, ``config``,
``caches``, ``audit_log``, ``registries``, ``facts``, ``cluster``. It is meant
for node health checks (docs/admin.md). Credentials are never printed, not
even user names.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

from shim import __version__
from shim.errors import ConfigError, ShimError
from shim.install import RUNTIME_NAMES, shim_script
from shim.locate import SHIM_NAME, find_runtime, is_shim

#: 2: ``warnings`` became ``notes`` (information only: every former warning
#: that needs fixing is a problem now)
SCHEMA_VERSION = 2
REGISTRY_TIMEOUT = 3.0
VERSION_TIMEOUT = 5.0


class _Report:
    """Findings: ``problems`` (exit 1) and ``notes`` (information)."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []


# -- runtimes ----------------------------------------------------------------
def _on_path(name: str, environ) -> tuple[list[str], list[str]]:
    """(executables named `name` on PATH in order, dangling links named `name`
    that point to an imagefit shim). Relative PATH entries are skipped, as
    the shim skips them."""
    found, dangling = [], []
    for directory in environ.get("PATH", "").split(os.pathsep):
        if not directory or not os.path.isabs(directory):
            continue
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            found.append(candidate)
        elif os.path.islink(candidate) and not os.path.exists(candidate):
            if os.path.basename(os.path.realpath(candidate)) == SHIM_NAME:
                dangling.append(candidate)
    return found, dangling


def _version(real: str, name: str, environ) -> tuple[str | None, str | None]:
    """(first line of `real --version`, or None; why not, or None)."""
    env = {**environ, "IMAGEFIT_ACTIVE": "1"}  # a shim behind it passes through
    try:
        done = subprocess.run(
            [real, "--version"],
            executable=real,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=VERSION_TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"`{real} --version` timed out after {VERSION_TIMEOUT:g} s"
    except OSError as exc:
        return None, f"cannot run {real}: {exc.strerror}"
    lines = (done.stdout or done.stderr).strip().splitlines()
    if done.returncode != 0:
        return None, f"`{real} --version` exited with {done.returncode}"
    return (lines[0].strip() if lines else ""), None


def _runtimes(shim: str | None, settings, environ, report: _Report) -> list[dict]:
    rows = []
    for name in RUNTIME_NAMES:
        found, dangling = _on_path(name, environ)
        for link in dangling:
            report.problems.append(
                f"{link} is a broken link to an imagefit shim ({os.readlink(link)}): "
                "reinstall (imagefit install) or remove it"
            )
        shims = [p for p in found if is_shim(p, None) or (shim and _same(p, shim))]
        first = found[0] if found else None
        first_is_shim = first is not None and first in shims
        real = error = version = None
        try:
            real = find_runtime(name, environ, shim or "", settings.runtimes.get(name))
        except ShimError as exc:
            error = str(exc)
        configured = settings.runtimes.get(name)
        if error and configured:  # an entry the shim cannot use, shimmed or not
            report.problems.append(
                f"[runtimes] {name} = {configured!r}: {error}: every shimmed `{name}` "
                "exits 125; point it at the real runtime or remove the entry"
            )
        if real:
            version, why = _version(real, name, environ)
            # a runtime no shim stands in front of is not imagefit's to run: its
            # row says so (version null), no finding
            if why and (shims or configured):
                report.problems.append(
                    f"{name}: {why}: the shim runs it for every `{name}` command"
                )
        if shims and first_is_shim and real:
            status = "ok"
        elif shims and not real:
            status = "no-runtime"
            if not configured:  # (a configured path that is not usable was named above)
                report.problems.append(
                    f"`{name}` on PATH is the imagefit shim ({shims[0]}) but there is no real "
                    f'{name} to run: install {name}, or set [runtimes] {name} = "/path" in the config'
                )
        elif shims:
            status = "shadowed"
            report.problems.append(
                f"a plain `{name}` runs {first}, not the shim: put {os.path.dirname(shims[0])} "
                f"before {os.path.dirname(first)} on PATH"
            )
        elif real:
            status = "not-shimmed"
        else:
            status = "absent"
        rows.append(
            {
                "name": name,
                "status": status,
                "resolves_to": first,
                "resolves_to_shim": first_is_shim,
                "shim_links": shims,
                "real": real,
                "real_configured": settings.runtimes.get(name),
                "real_error": error if status != "absent" or configured else None,
                "version": version,
            }
        )
    if not any(r["shim_links"] for r in rows):
        if any(r["real"] for r in rows):
            report.problems.append(
                "the shim is not on PATH for any runtime: run `imagefit install --user` "
                "and put the directory it names first on PATH"
            )
        else:
            report.problems.append(
                "no container runtime (" + ", ".join(RUNTIME_NAMES) + ") found on PATH, "
                "and the shim is not on PATH either"
            )
    return rows


def _same(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


# -- config ------------------------------------------------------------------
def _owner(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)


def _config(environ, report: _Report):
    """(Settings to use for the rest of the checks, the config section)."""
    from shim import config
    from shim.trust import untrusted_reason

    euid = os.geteuid()
    error = None
    try:
        settings = config.load(environ, euid)
    except ConfigError as exc:
        error = str(exc)
        report.problems.append(f"{error} (every shimmed command exits 125 until this is fixed)")
        settings = config.Settings()
    considered = [
        (p, "site" if i == 0 else "user") for i, p in enumerate(config.config_paths(environ, euid))
    ]
    if euid == 0:
        considered.append((config.config_paths(environ, 1)[1], "user"))
    files = []
    for path, role in considered:
        row: dict = {
            "path": path,
            "role": role,
            "state": "absent",
            "uid": None,
            "owner": None,
            "mode": None,
            "reason": None,
        }
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            row.update(state="unreadable", reason=exc.strerror)
            report.problems.append(f"cannot stat config {path}: {exc.strerror}")
            st = None
        if st is not None:
            row.update(
                uid=st.st_uid, owner=_owner(st.st_uid), mode=f"{stat.S_IMODE(st.st_mode):04o}"
            )
            reason = untrusted_reason(path, euid)
            if role == "user" and euid == 0:
                row.update(state="not read", reason="running as root: root reads no user config")
            elif error and path in error:
                row.update(state="invalid", reason=error)
            elif reason:
                row.update(state="ignored", reason=reason)
                report.problems.append(f"config {path} is ignored: {reason}")
            elif path in settings.sources:
                row["state"] = "read"
            else:
                row.update(state="not read", reason="an earlier file is invalid")
        files.append(row)
    variables = {k: v for k, v in sorted(environ.items()) if k.startswith("IMAGEFIT_")}
    for key, why in (
        ("IMAGEFIT_DISABLE", "IMAGEFIT_DISABLE=1: the shim passes every command through untouched"),
        ("IMAGEFIT_DRY_RUN", "IMAGEFIT_DRY_RUN=1: the shim prints the argv and runs nothing"),
    ):
        if environ.get(key) == "1":  # chosen on purpose: information
            report.notes.append(why)
    if environ.get("IMAGEFIT_ACTIVE"):  # leaked from a runtime the shim started
        report.problems.append(
            "IMAGEFIT_ACTIVE is set (the shim sets it only for the runtime it runs): "
            "every shim started from here passes through; unset it"
        )
    for warning in settings.warnings:  # what config.load skipped: a config warning
        if not warning.startswith("ignoring config "):  # (those are named per file above)
            report.problems.append(f"config: {warning}")
    section = {
        "files": files,
        "error": error,
        "environment": variables,
        "effective": {
            "on_error": settings.on_error,
            "login": settings.login,
            "registry_timeout": settings.registry_timeout,
            "insecure_registries": list(settings.insecure_registries),
            "nfd_artifacts": settings.nfd_artifacts,
            "decision_cache_ttl": settings.decision_cache_ttl,
            "policies": len(settings.policies),
        },
    }
    return settings, section


# -- caches and audit log ----------------------------------------------------
def _writable(path: str) -> tuple[bool, bool]:
    """(exists, writable by us: the directory itself, or the nearest existing
    parent that it would be created in)."""
    if os.path.exists(path):
        if os.path.isdir(path):
            return True, os.access(path, os.W_OK | os.X_OK)
        return True, os.access(path, os.W_OK)
    parent = os.path.dirname(path)
    while parent and not os.path.exists(parent):
        if os.path.dirname(parent) == parent:
            break
        parent = os.path.dirname(parent)
    return False, os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK)


def _caches(settings, environ, report: _Report) -> tuple[list[dict], dict]:
    from hostfacts import cache as facts_cache
    from shim import config, decisions

    rows = []
    entries = [
        ("facts", str(facts_cache.cache_dir(environ)), "host facts, per boot"),
        (
            "decisions",
            decisions.cache_dir(settings.decision_cache_dir, environ),
            ("shared (site decision_cache_dir)" if settings.decision_cache_dir else "per user")
            + (
                f", ttl {settings.decision_cache_ttl:g} s"
                if settings.decision_cache_ttl
                else ", disabled (ttl 0)"
            ),
        ),
        ("config", os.path.dirname(config._parse_cache_path("/", environ)), "parsed config files"),
    ]
    for name, path, what in entries:
        exists, writable = _writable(path)
        rows.append(
            {"name": name, "path": path, "what": what, "exists": exists, "writable": writable}
        )
        if name == "decisions" and settings.decision_cache_dir:
            continue  # the site's shared directory: the cluster section names what is wrong
        if not writable:
            report.problems.append(
                f"{name} cache {path} is not writable by uid {os.geteuid()}: every command "
                "does that work again (slower, same result)"
            )
    audit = {"destination": settings.audit_log, "writable": None}
    if settings.audit_log:
        audit["writable"] = _audit_ok(settings.audit_log, report)
    return rows, audit


def _audit_ok(destination: str, report: _Report) -> bool:
    """Whether this user's decisions reach `destination` as the shim logs
    them (:mod:`shim.audit`): a syslog socket that accepts a connection, or,
    for root, a root-only regular file (or its absent name in a root-only
    directory). A non-root user of a root-only file logs to syslog: that
    socket is checked then."""
    import socket as sockets

    from shim import audit

    sock = audit.destination_socket(destination)
    if sock is None and os.geteuid() == 0:
        if not os.path.lexists(destination):  # root creates it (never doctor)
            if _writable(destination)[1]:
                return True
            why = "it cannot be created"
        else:
            try:
                os.close(audit.open_log(destination))
                return True
            except OSError as exc:
                why = exc.strerror or str(exc)
        report.problems.append(
            f"audit log {destination} cannot be appended to safely ({why}): "
            "the shim logs to syslog instead"
        )
        sock = audit.DEV_LOG
    elif sock is None:
        sock = audit.DEV_LOG  # every user but root logs to syslog: by design
    s = sockets.socket(sockets.AF_UNIX, sockets.SOCK_DGRAM)
    try:
        s.settimeout(1.0)
        s.connect(sock)
        return True
    except OSError as exc:
        report.problems.append(
            f"syslog socket {sock} does not take messages ({exc.strerror or exc}): "
            f"uid {os.geteuid()}'s decisions are not logged"
        )
        return False
    finally:
        s.close()


def _path_warnings(environ, report: _Report) -> list[str]:
    """PATH directories another user could plant a ``podman`` in, ahead of
    the shim or of the real runtime: a relative entry (the current
    directory), or a directory that is, or lies under, one not owned by root
    or this user, or writable by group or others (a sticky directory above
    it excepted: :func:`hostfacts.fingerprint._safe_chain`). Each is one
    problem; most important when root runs it (``sudo``'s ``secure_path``
    should list only root's directories)."""
    from hostfacts.fingerprint import _safe_chain

    found = []
    for directory in environ.get("PATH", "").split(os.pathsep):
        if not directory or not os.path.isabs(directory):
            why = "a relative entry (the current directory)"
        elif not os.path.isdir(directory):
            continue
        elif not _safe_chain(directory, False) or os.stat(directory).st_mode & 0o022:
            why = "writable by another user, or under a directory that is"
        else:
            continue
        found.append(directory)
        report.problems.append(
            f"PATH entry {directory!r} is {why}: whoever can write it can plant a runtime "
            f"that uid {os.geteuid()} runs instead of the shim (see docs/admin.md, Threat model)"
        )
    return found


# -- registries --------------------------------------------------------------
def _registry_hosts(settings, extra: list[str]) -> list[tuple[str, str]]:
    hosts: list[tuple[str, str]] = []
    for host in settings.insecure_registries:
        hosts.append((host, "config insecure_registries"))
    for policy in settings.policies:
        domain = policy["image"].split("/", 1)[0]
        if (
            "/" in policy["image"]
            and not any(c in domain for c in "*?[")
            and ("." in domain or ":" in domain or domain == "localhost")
        ):
            hosts.append((domain, f"config [[policy]] image = {policy['image']!r}"))
    for host in extra:
        hosts.append((host, "--registry"))
    seen: set[str] = set()
    unique = []
    for host, source in hosts:
        if host not in seen:
            seen.add(host)
            unique.append((host, source))
    return unique


def _ping(host: str, insecure: bool, credentials) -> dict:
    """GET /v2/ through RegistryClient (its scheme fallback, its auth
    negotiation, one 3 s deadline): {"status": int | None, "scheme": str |
    None, "authenticated": bool, "error": str | None}."""
    from shim.errors import RegistryError
    from shim.registry import RegistryClient

    client = RegistryClient(
        host, insecure=insecure, credentials=credentials, timeout=REGISTRY_TIMEOUT
    )
    try:
        response = client._get("/v2/", "application/json")
    except RegistryError as exc:
        return {"status": None, "scheme": None, "authenticated": False, "error": str(exc)}
    with response:
        status = response.status_code
    return {
        "status": status,
        "scheme": client._scheme,
        "authenticated": bool(client._auth_header),
        "error": None,
    }


def _registries(settings, extra: list[str], environ, report: _Report) -> list[dict]:
    from shim import auth, registries_conf

    rows = []
    for host, source in _registry_hosts(settings, extra):
        if host in settings.insecure_registries:
            insecure_by = "imagefit config"
        elif registries_conf.insecure(f"{host}/", environ):
            insecure_by = "registries.conf"
        else:
            insecure_by = None
        credentials = auth.credentials(host, "", environ)
        started = time.monotonic()
        ping = _ping(host, insecure_by is not None, credentials)
        status = ping["status"]
        row = {
            "host": host,
            "source": source,
            "insecure": insecure_by,
            "credentials_stored": credentials is not None,
            "http_status": status,
            "scheme": ping["scheme"],
            "authenticated": ping["authenticated"],
        }
        plain = _ping(host, True, None) if status is None and insecure_by is None else None
        if plain and plain["status"] is not None:
            how = "over plain HTTP" if plain["scheme"] == "http" else "without TLS verification"
            row.update(
                state="plain-http-only",
                detail=f"answers only {how} ({ping['error']}); the shim and podman go there "
                "only when insecure_registries or registries.conf (insecure = true) lists it",
            )
            report.problems.append(f"registry {host} {row['detail']}")
        elif status is None:
            row.update(state="unreachable", detail=ping["error"])
            report.problems.append(f"registry {host} is unreachable: {ping['error']}")
        elif status == 200:
            row.update(
                state="reachable",
                detail=f"GET /v2/ answered 200 over {ping['scheme']}"
                + (" after authenticating" if ping["authenticated"] else ""),
            )
        elif status == 401:
            row.update(
                state="auth required",
                detail="GET /v2/ answered 401: "
                + (
                    "the stored credentials were refused"
                    if credentials
                    else "no stored credentials (podman login) for private images"
                ),
            )
            if credentials:
                report.problems.append(f"registry {host} refused the stored credentials")
        else:
            row.update(
                state="error", detail=f"GET /v2/ answered HTTP {status}: not a registry API?"
            )
            report.problems.append(f"registry {host}: {row['detail']}")
        row["seconds"] = round(time.monotonic() - started, 3)
        rows.append(row)
    return rows


# -- facts -------------------------------------------------------------------
def _facts(settings, environ, report: _Report):
    """(the facts summary or None, the HostFacts or None)."""
    import socket

    import hostfacts

    try:
        facts = hostfacts.host_facts(
            environ, cpu_target=settings.cpu_target_for(socket.gethostname())
        )
    except (ValueError, OSError) as exc:  # HostFactsError is a ValueError
        report.problems.append(f"cannot tell this host's facts: {exc}")
        return None, None
    cpu, nv, amd, mpi, system, net = (
        facts.cpu,
        facts.gpu.nvidia,
        facts.gpu.amd,
        facts.mpi,
        facts.system,
        facts.interconnect,
    )
    probes = {
        "cpu": cpu.probe,
        "nvidia": nv.probe,
        "amd": amd.probe,
        "mpi": mpi.probe,
        "system": system.probe,
        "interconnect": net.probe,
    }
    source = environ.get(hostfacts.FACTS_ENV)
    for name, probe in probes.items():
        if probe.status == "error":
            report.problems.append(
                f"facts probe {name} failed: {probe.reason}: the shim decides as if "
                f"this host had no {name}"
            )
    unknown = [name for name, probe in probes.items() if probe.status == "unknown"]
    if unknown and source:
        report.problems.append(
            f"facts come from {hostfacts.FACTS_ENV}={source}, which does not record "
            f"{', '.join(unknown)} (probe status unknown): the shim decides as if this host had "
            f"none; write the file on the node with `imagefit facts --json --output {source}`"
        )
    elif unknown:
        report.problems.append(
            f"facts probes {', '.join(unknown)} could not tell ("
            + "; ".join(f"{n}: {probes[n].reason or 'unknown'}" for n in unknown)
            + "): the shim decides as if this host had none"
        )
    summary = {
        "source": f"{hostfacts.FACTS_ENV}={source}" if source else "this host, cached per boot",
        "hostname": facts.hostname,
        "cpu_target": cpu.target,
        "cpu_target_source": cpu.target_source,
        "generic": cpu.generic,
        "architecture": cpu.architecture,
        "vendor": cpu.vendor,
        "nvidia": [
            {"index": d.index, "name": d.name, "compute_capability": d.compute_capability}
            for d in nv.devices
        ],
        "cuda_driver_version": nv.cuda_driver_version,
        "amd": [d.gfx_target for d in amd.devices],
        "mpi": None
        if mpi.probe.status != "ok"
        else {"implementation": mpi.implementation, "version": mpi.version, "abi": mpi.abi},
        "fabrics": list(net.fabrics),
        "probes": {name: {"status": p.status, "reason": p.reason} for name, p in probes.items()},
    }
    return summary, facts


# -- the cluster: node classes, the shared cache, policy pins -----------------
#: differences named in one problem line; the rest are counted
SHOWN_DIFFERENCES = 4


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def _differences(here, there, path: str = "") -> list[str]:
    """Where the class material of this node's facts (`here`) and of its
    class's facts file (`there`) differ, one phrase each."""
    if isinstance(here, dict) and isinstance(there, dict):
        out: list[str] = []
        for key in [*here, *(k for k in there if k not in here)]:
            out += _differences(here.get(key), there.get(key), f"{path}.{key}" if path else key)
        return out
    if here == there:
        return []
    scalars = (str, int, float, bool, type(None))
    if (
        isinstance(here, list) and isinstance(there, list)
        and all(isinstance(v, scalars) for v in [*here, *there])
    ):  # fmt: skip
        mine = {_short(v) for v in here} - {_short(v) for v in there}
        theirs = {_short(v) for v in there} - {_short(v) for v in here}
        if mine or theirs:
            parts = []
            if mine:
                parts.append(f"{', '.join(sorted(mine)[:3])}{' ...' * (len(mine) > 3)} only here")
            if theirs:
                parts.append(
                    f"{', '.join(sorted(theirs)[:3])}{' ...' * (len(theirs) > 3)} only in the class's"
                )
            return [f"{path}: {'; '.join(parts)}"]
        return [f"{path}: another order"]
    return [f"{path} {_short(here)} here, {_short(there)} in the class's"]


def _node_class(settings, facts, environ, report: _Report) -> tuple[list[dict], dict]:
    """(the configured classes, this node's class) sections."""
    import socket

    import hostfacts
    from hostfacts.fingerprint import class_identity, class_material

    loaded = {}
    classes = []
    for name, path, hosts in settings.node_classes:
        row = {"name": name, "facts": path, "hosts": list(hosts), "readable": False,
               "cpu_target": None, "error": None}  # fmt: skip
        try:
            loaded[name] = hostfacts.load_facts(path)
        except (ValueError, OSError) as exc:
            row["error"] = str(exc)
            report.problems.append(
                f"node class {name}: {exc}: its pulls, "
                f"decisions and checks fail (write it with `imagefit facts --json --output {path}` "
                "on a node of the class)"
            )
        else:
            row.update(readable=True, cpu_target=loaded[name].cpu.target)
        classes.append(row)
    hostname = socket.gethostname().split(".", 1)[0]
    own = settings.node_class_for(hostname)
    section: dict = {"hostname": hostname, "name": own, "facts": None, "matches": None,
                     "differences": []}  # fmt: skip
    if own is None:
        return classes, section
    section["facts"] = settings.class_facts(own)
    if own in loaded and facts is not None:
        here = facts.model_dump(mode="json")
        there = loaded[own].model_dump(mode="json")
        section["matches"] = class_identity(here) == class_identity(there)
        if not section["matches"]:
            found = _differences(class_material(here), class_material(there))
            found.sort(
                key=lambda d: 0 if d.split(" ", 1)[0].split(":")[0].endswith(".target") else 1
            )
            section["differences"] = found
            shown = "; ".join(found[:SHOWN_DIFFERENCES]) or "identities differ"
            if len(found) > SHOWN_DIFFERENCES:
                shown += f"; and {len(found) - SHOWN_DIFFERENCES} more"
            report.problems.append(
                f"this node ({hostname}) is in node class {own} by its name, but its facts are not "
                f"the class's ({section['facts']}): {shown}. A mislabelled node (fix "
                f"[node_classes.{own}] hosts) or a stale class facts file: decisions made for the "
                "class would run another build here"
            )
    return classes, section


def _shared_cache(settings, report: _Report) -> dict | None:
    """The site's shared cache directory (``decision_cache_dir``), or None."""
    path = settings.decision_cache_dir
    if not path:
        return None
    row: dict = {"path": path, "state": "ok", "uid": None, "owner": None, "mode": None,
                 "sticky": None, "writable": None}  # fmt: skip
    try:
        st = os.stat(path)
    except OSError as exc:
        row["state"] = "absent" if isinstance(exc, FileNotFoundError) else "unreadable"
        report.problems.append(
            f"shared cache directory {path} (decision_cache_dir): {exc.strerror}. The shim never "
            "creates it, so every user falls back to a per-user cache and nodes share nothing; "
            f"create it on the shared file system (e.g. install -d -m 1777 {path})"
        )
        return row
    mode = stat.S_IMODE(st.st_mode)
    row.update(uid=st.st_uid, owner=_owner(st.st_uid), mode=f"{mode:04o}",
               sticky=bool(mode & stat.S_ISVTX))  # fmt: skip
    if not stat.S_ISDIR(st.st_mode):
        row["state"] = "not a directory"
        report.problems.append(
            f"shared cache directory {path} (decision_cache_dir) is not a directory: "
            "every user falls back to a per-user cache"
        )
        return row
    row["writable"] = os.access(path, os.W_OK | os.X_OK)
    from shim import decisions

    _, shared, why = decisions.usable_dir(path, os.environ, settings.cache_trusted_uids)
    if not shared:  # what the shim itself will refuse: a link, a foreign owner, no sticky bit
        row["state"] = "refused"
        report.problems.append(f"{why} (the shim will not use it)")
    elif not row["writable"]:
        report.problems.append(
            f"shared cache directory {path} (decision_cache_dir) is not writable by uid "
            f"{os.geteuid()}: what this user decides is neither cached nor shared (each such "
            "command resolves again): make it mode 1777, or decide as a trusted uid"
        )
    return row


def _pins(settings, images: list[str], environ, report: _Report) -> list[dict]:
    """Each ``--image REF``: the config's policies for REF against its index."""
    from shim.author.lint import applicable_policies, policy_findings
    from shim.insecure import registry_is_insecure
    from shim.intercept import registry_operand
    from shim.resolve import fetch

    rows = []
    for text in images:
        row: dict = {"reference": text, "index_digest": None, "policies": 0, "findings": [],
                     "error": None}  # fmt: skip
        rows.append(row)
        found = registry_operand(text)
        if found is None:
            row["error"] = "not a fully qualified registry reference (host/repository[:tag])"
            report.problems.append(f"--image {text}: {row['error']}")
            continue
        ref = found[1]
        row["policies"] = len(applicable_policies(settings, str(ref)))
        try:
            data = fetch(
                ref, environ=environ,
                insecure=registry_is_insecure(ref, environ, settings.insecure_registries, None),
                timeout=max(REGISTRY_TIMEOUT, settings.registry_timeout), authfile=None,
                nfd_artifacts=settings.nfd_artifacts,
            )  # fmt: skip
        except ShimError as exc:
            row["error"] = str(exc)
            report.problems.append(f"cannot check the policies of {ref}: {exc}")
            continue
        row["index_digest"] = data.digest
        for finding in policy_findings(settings, str(ref), data, environ):
            row["findings"].append({"severity": finding.severity, "message": finding.message})
            report.problems.append(finding.message)  # a config entry that does nothing
    return rows


# -- the report --------------------------------------------------------------
def diagnose(
    environ=None,
    registries: list[str] | tuple[str, ...] = (),
    images: list[str] | tuple[str, ...] = (),
) -> dict:
    """Everything ``imagefit doctor`` reports, as the ``--json`` object."""
    environ = os.environ if environ is None else environ
    report = _Report()
    try:
        shim: str | None = shim_script()
    except ShimError as exc:
        shim = None
        report.problems.append(str(exc))
    settings, config_section = _config(environ, report)
    runtimes = _runtimes(shim, settings, environ, report)
    _path_warnings(environ, report)
    caches, audit = _caches(settings, environ, report)
    hosts = list(registries)
    for image in images:
        host = image.removeprefix("docker://").split("/", 1)[0]
        if "/" in image and host not in hosts:
            hosts.append(host)
    registry_rows = _registries(settings, hosts, environ, report)
    facts, host_facts = _facts(settings, environ, report)
    classes, own = _node_class(settings, host_facts, environ, report)
    cluster = {
        "node_classes": classes,
        "node_class": own,
        "shared_cache": _shared_cache(settings, report),
        "images": _pins(settings, list(images), environ, report),
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "healthy": not report.problems,
        "problems": report.problems,
        "notes": report.notes,
        "imagefit": {
            "version": __version__,
            "shim": shim,
            "python": sys.executable,
            "euid": os.geteuid(),
        },
        "runtimes": runtimes,
        "config": config_section,
        "caches": caches,
        "audit_log": audit,
        "registries": registry_rows,
        "facts": facts,
        "cluster": cluster,
    }


_RUNTIME_TEXT = {
    "ok": "`{name}` runs the shim ({resolves_to}), which runs {real}",
    "shadowed": "`{name}` runs {resolves_to}, NOT the shim ({shim_link} comes later on PATH)",
    "no-runtime": "`{name}` runs the shim ({resolves_to}), but there is no real {name}",
    "not-shimmed": "`{name}` runs {real} directly (no shim link on PATH for it)",
    "absent": "not installed",
}


def to_text(r: dict) -> str:
    lines = []
    head = "healthy" if r["healthy"] else f"{len(r['problems'])} problem(s)"
    lines.append(f"imagefit doctor: {head}")
    me = r["imagefit"]
    lines.append(
        f"imagefit {me['version']}, shim {me['shim'] or '(not found)'}, running as uid {me['euid']}"
    )
    lines.append("")
    lines.append("runtimes:")
    for row in r["runtimes"]:
        text = _RUNTIME_TEXT[row["status"]].format(shim_link=(row["shim_links"] or [""])[0], **row)
        if row["real"] and row["real_configured"]:
            text += " (from the config)"
        if row["version"]:
            text += f"; {row['version']}"
        lines.append(f"  {row['name']:<12}{row['status']:<13}{text}")
    lines.append("")
    lines.append("config:")
    for f in r["config"]["files"]:
        where = f"  {f['role']:<5} {f['path']}"
        if f["uid"] is not None:
            where += f" (owner {f['owner']} uid {f['uid']}, mode {f['mode']})"
        lines.append(where + f": {f['state']}" + (f": {f['reason']}" if f["reason"] else ""))
    for key, value in r["config"]["environment"].items():
        lines.append(f"  env   {key}={value}")
    eff = r["config"]["effective"]
    lines.append(
        f"  effective: on_error={eff['on_error']}, login={eff['login']}, "
        f"registry_timeout={eff['registry_timeout']:g} s, {eff['policies']} policies"
    )
    lines.append("")
    lines.append("caches:")
    for c in r["caches"]:
        state = ("writable" if c["writable"] else "NOT writable") + (
            "" if c["exists"] else " (to be created)"
        )
        lines.append(f"  {c['name']:<10}{c['path']}: {state}; {c['what']}")
    audit = r["audit_log"]
    dest = audit["destination"] or "none (no audit_log in the config)"
    if audit["writable"] is not None:
        dest += ": writable" if audit["writable"] else ": NOT writable"
    lines.append(f"audit log:  {dest}")
    lines.append("")
    lines.append("registries:")
    if not r["registries"]:
        lines.append(
            "  none named (the config's insecure_registries and [[policy]] images, or --registry HOST)"
        )
    for g in r["registries"]:
        lines.append(
            f"  {g['host']}: {g['state']} ({g['detail']}; {g['seconds']:.2f} s; from {g['source']})"
        )
    lines.append("")
    facts = r["facts"]
    lines.append(f"facts ({facts['source']}):" if facts else "facts: unavailable")
    if facts:
        target = facts["cpu_target"] + (
            " (site config)" if facts["cpu_target_source"] != "archspec" else ""
        )
        gpus = [f"{g['name']} (sm {g['compute_capability']})" for g in facts["nvidia"]] + facts[
            "amd"
        ]
        mpi = facts["mpi"]
        lines.append(
            f"  cpu target:   {target}; generic {facts['generic']} ({facts['architecture']})"
        )
        lines.append(f"  gpus:         {', '.join(gpus) or 'none'}")
        lines.append(
            "  mpi:          "
            + (f"{mpi['implementation']} {mpi['version']} (ABI {mpi['abi']})" if mpi else "none")
        )
        lines.append(
            "  probes:       " + ", ".join(f"{k} {v['status']}" for k, v in facts["probes"].items())
        )
    lines.append("")
    lines.extend(_cluster_text(r["cluster"]))
    for title, items in (("problems", r["problems"]), ("notes", r["notes"])):
        if items:
            lines.append("")
            lines.append(f"{title}:")
            lines.extend(f"  - {item}" for item in items)
    return "\n".join(lines)


def _cluster_text(c: dict) -> list[str]:
    lines = ["node class:"]
    own = c["node_class"]
    if own["name"] is None:
        lines.append(f"  this node ({own['hostname']}): in no node class")
    else:
        state = {True: "its facts match this node's", False: "its facts do NOT match this node's",
                 None: "not compared"}[own["matches"]]  # fmt: skip
        lines.append(
            f"  this node ({own['hostname']}): {own['name']} (facts {own['facts']}: {state})"
        )
    if c["node_classes"]:
        for row in c["node_classes"]:
            state = f"cpu target {row['cpu_target']}" if row["readable"] else "UNREADABLE facts"
            lines.append(
                f"  class {row['name']}: hosts {', '.join(row['hosts']) or '-'}; {row['facts']} ({state})"
            )
    else:
        lines.append("  no [node_classes] configured")
    cache = c["shared_cache"]
    if cache is None:
        lines.append("  shared cache: none (no decision_cache_dir: each user caches for itself)")
    elif cache["state"] != "ok" and cache["uid"] is None:
        lines.append(f"  shared cache: {cache['path']}: {cache['state'].upper()}")
    else:
        text = f"  shared cache: {cache['path']}: owner {cache['owner']} uid {cache['uid']}, "
        text += f"mode {cache['mode']}, " + ("sticky" if cache["sticky"] else "not sticky")
        if cache["state"] != "ok":
            text += f"; {cache['state'].upper()}"
        elif not cache["writable"]:
            text += "; not writable by this uid"
        lines.append(text)
    for image in c["images"]:
        if image["error"]:
            lines.append(f"  policy for {image['reference']}: cannot check ({image['error']})")
            continue
        bad = [f for f in image["findings"] if f["severity"] == "error"]
        state = f"{len(bad)} pin(s) match no build" if bad else "every pin names a build"
        lines.append(f"  policy for {image['reference']}: {image['policies']} entries; {state}")
    return lines


def run(args) -> int:
    """``imagefit doctor [--json] [--registry HOST]... [--image REF]...``: 0 healthy, 1 not."""
    report = diagnose(os.environ, args.registry or (), getattr(args, "image", None) or ())
    if args.json:
        print(json.dumps(report, indent=2))
    else:  # findings may quote a registry's words (an image's policy check)
        from shim.untrusted import terminal_lines

        print(terminal_lines(to_text(report), 2000))
    return 0 if report["healthy"] else 1
