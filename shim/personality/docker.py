"""docker: `run`, `create`, `pull` (also `container run|create`, `image pull`).

The real ``docker`` may be podman
---------------------------------
podman-docker installs ``/usr/bin/docker`` as a shell script that runs
``exec /usr/bin/podman "$@"`` (containers/podman docker/docker.in; Debian's
podman-docker 4.3.1 ships exactly that), and some sites link ``docker`` to
podman. Then podman reads the command line, so the shim behaves exactly as
its podman personality (grammar, short names, TLS, login recipe): see
:func:`runs_podman`, which looks at the runtime the shim will exec
(``Personality.real``, set by :mod:`shim.main`): a file whose real name is
``podman``, or a ``#!`` script whose first 4 KiB have a line ``exec
[DIR/]podman ...``. The docker shim sets ``IMAGEFIT_ACTIVE`` like every
shim, so a podman shim behind the script passes through: one rewrite.

Real docker
-----------
- Image operands are registry references, never transports; short names are
  docker.io (``ubuntu`` is ``docker.io/library/ubuntu``) because the daemon
  reads them so; image IDs and ``localhost/NAME`` stay alone.
- The shim stands aside for: ``--help`` (run/create's own, or pull's which
  the root's and the group's reach), ``pull -a/--all-tags``, a ``--platform``
  (or ``$DOCKER_DEFAULT_PLATFORM``) of another OS or architecture, content
  trust (``$DOCKER_CONTENT_TRUST`` without ``--disable-content-trust``, or
  ``--disable-content-trust=false``: docker verifies tags with Notary and a
  digest would skip that), and a daemon that is not on this host: the
  endpoint docker would use (``-c/--context``, else ``-H/--host``, else
  ``$DOCKER_HOST``, else ``$DOCKER_CONTEXT``, else ``currentContext`` of
  config.json, else the default socket; docker/cli cli/command/cli.go
  ``resolveContextName``; a context's endpoint from
  ``CONFIG/contexts/meta/<sha256 of name>/meta.json``) must be a ``unix://``
  socket. Anything else (tcp://, ssh://, a host without scheme, which docker
  reads as tcp://, the default ``tcp://localhost:2376`` of ``--tls``/
  ``--tlsverify``/``$DOCKER_TLS``/``$DOCKER_TLS_VERIFY`` without a host, an
  unreadable context, two ``-H``, ``-H`` with ``--context``) passes through:
  the container may run elsewhere, where this host's facts say nothing.
- TLS: docker has no per-command switch; the daemon reaches a registry over
  plain HTTP when its ``insecure-registries`` (``/etc/docker/daemon.json``,
  ``$XDG_CONFIG_HOME/docker/daemon.json`` for a rootless daemon) lists the
  host[:port] or a CIDR holding its address, and always for 127.0.0.0/8 (and
  ::1 in recent daemons; moby registry/config.go ``loadInsecureRegistries``). The shim reads the same (addresses are not
  looked up in DNS, except ``localhost``), then podman's registries.conf and
  imagefit's ``insecure_registries`` (shared :mod:`shim.insecure`). A
  registry insecure by imagefit's config only gets one warning: docker cannot
  be told.
- Credentials: ``CONFIG/config.json`` where CONFIG is ``--config``, else
  ``$DOCKER_CONFIG``, else ``~/.docker`` (docker's only file; credential
  helpers are not run).
- Login recipe (docker/cli opts.go: ``--entrypoint`` is one string, the
  whole ENTRYPOINT; a user entrypoint drops the image CMD): unless the user
  gave ``--entrypoint``, ``--entrypoint=/bin/sh`` goes right after the
  subcommand word and ``-c OUTER sh`` (:data:`shim.login.OUTER`) right after
  the image, before the user's command. As the caller: when not root,
  ``--user=UID:GID`` and ``--env=HOME=$HOME`` (docker gives an unknown uid
  ``HOME=/``), unless the user gave ``-u/--user`` (then neither); the HOME
  part also not when the user set HOME (``-e HOME[=...]``, or a ``HOME`` line
  in an ``--env-file``). Nothing for root, and nothing for a rootless daemon
  (its socket belongs to the caller): there container root is the caller.
"""

from __future__ import annotations

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

import os

from shim import login
from shim.argv import Invocation, docker
from shim.login import with_cmd
from shim.personality.base import (
    CDI_NVIDIA,
    Personality,
    Plan,
    Resolved,
    command_env,
    csv_record,
    env_settings,
    image_cmd,
    qualified_reference,
    tag_steps,
)

#: where a rootful daemon reads insecure-registries
DAEMON_JSON = "/etc/docker/daemon.json"
DEFAULT_HOST = "unix:///var/run/docker.sock"
TLS_HOST = "tcp://localhost:2376"
#: the daemon always treats these as insecure (moby registry/config.go)
LOOPBACK = ("127.0.0.0/8", "::1/128")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")  # Go strconv.ParseBool
#: a script line that execs podman (podman-docker's /usr/bin/docker)
_PODMAN_EXEC = rb"""^[ \t]*exec[ \t]+["']?(?:[^\s"']*/)?podman["']?(?:[ \t]|$)"""
_SCRIPT_BYTES = 4096


def runs_podman(path: str | None) -> bool:
    """True when the runtime at `path` is podman under the name docker: its
    real name is ``podman``, or it is a script that execs podman
    (podman-docker). Reads at most 4 KiB; False when unreadable or None."""
    if not path:
        return False
    if os.path.basename(os.path.realpath(path)) == "podman":
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SCRIPT_BYTES)
    except OSError:
        return False
    if not head.startswith(b"#!"):
        return False  # a binary (the real docker): no regular expression on the hot path
    import re

    return re.search(_PODMAN_EXEC, head, re.M) is not None


def config_dir(inv: Invocation, environ: Mapping[str, str]) -> str:
    """docker's client config directory: ``--config``, ``$DOCKER_CONFIG``, ``~/.docker``."""
    given = inv.global_flags.get("config")
    if given and given[-1]:
        return given[-1]
    if environ.get("DOCKER_CONFIG"):
        return environ["DOCKER_CONFIG"]
    return os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".docker")


def _json(path: str):
    """The JSON document in `path` (docker's config.json, a context's
    meta.json), or None when absent or unreadable: read bounded and without
    blocking (a FIFO or a device there, e.g. under ``sudo -E`` from another
    user's home, is skipped: :func:`shim.untrusted.read_bounded`)."""
    from shim.untrusted import loads_json, read_bounded

    try:
        return loads_json(read_bounded(path), "docker config")
    except (OSError, ValueError):
        return None


def _tls(inv: Invocation, environ: Mapping[str, str]) -> bool:
    """TLS to the daemon (``--tls``/``--tlsverify``, defaults from
    ``$DOCKER_TLS``/``$DOCKER_TLS_VERIFY``): then the default host is TCP."""
    flags = inv.global_flags
    on = [inv.enabled(n, global_level=True) if n in flags else bool(environ.get(e))
          for n, e in (("tls", "DOCKER_TLS"), ("tlsverify", "DOCKER_TLS_VERIFY"))]  # fmt: skip
    return any(on)


def _parse_host(value: str | None, tls: bool) -> str:
    """docker/cli opts.ParseHost: empty is the default socket (TLS: tcp://localhost:2376),
    no scheme is tcp."""
    host = (value or "").strip()
    if not host:
        return TLS_HOST if tls else DEFAULT_HOST
    return host if "://" in host else "tcp://" + host


def daemon_host(inv: Invocation, environ: Mapping[str, str]) -> str | None:
    """The daemon endpoint docker would use for this command (``unix:///...``,
    ``tcp://...``, ``ssh://...``), or None when it cannot be known (docker
    would refuse the line, or the context is unreadable)."""
    contexts = [c for c in inv.global_flags.get("context", []) if c]
    hosts = inv.global_flags.get("host", [])
    if contexts and hosts:
        return None  # docker: conflicting options
    if len(hosts) > 1:
        return None  # docker: specify only one -H
    if contexts:
        name = contexts[-1]
    elif hosts:
        return _parse_host(hosts[0], _tls(inv, environ))
    elif environ.get("DOCKER_HOST"):
        name = "default"
    else:
        name = environ.get("DOCKER_CONTEXT") or ""
        if not name:
            config = _json(os.path.join(config_dir(inv, environ), "config.json"))
            current = config.get("currentContext") if isinstance(config, dict) else None
            name = current if isinstance(current, str) else ""
    if not name or name == "default":
        return _parse_host(environ.get("DOCKER_HOST"), _tls(inv, environ))
    import hashlib

    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = _json(os.path.join(config_dir(inv, environ), "contexts", "meta", digest, "meta.json"))
    try:
        host = meta["Endpoints"]["docker"]["Host"]
    except (TypeError, KeyError):
        return None
    return host if isinstance(host, str) and host else None


def local_socket(host: str | None) -> str | None:
    """The socket path of a ``unix://`` endpoint (this host), else None."""
    if host is None or not host.startswith("unix://"):
        return None
    return host[len("unix://") :] or DEFAULT_HOST[len("unix://") :]


def rootless_daemon(socket_path: str | None, euid: int) -> bool:
    """A rootless daemon: its socket belongs to the (non-root) caller."""
    if socket_path is None or euid == 0:
        return False
    try:
        return os.stat(socket_path).st_uid == euid
    except OSError:
        return False


def content_trust(inv: Invocation, environ: Mapping[str, str]) -> bool:
    """docker verifies tags with Notary for this command (cli/trust.go)."""
    if "disable-content-trust" in inv.flags:
        return not inv.enabled("disable-content-trust")
    value = environ.get("DOCKER_CONTENT_TRUST", "")
    return bool(value) and value not in _FALSE


def platform_request(text: str | None) -> tuple[str, str, str | None] | None:
    """docker's ``--platform`` (or ``DOCKER_DEFAULT_PLATFORM``) as containerd's
    platforms.Parse splits it (``os[/arch[/variant]]``, or one word that is an
    OS or an architecture; names as written, :mod:`shim.personality.platforms`),
    or None when not given."""
    if not text:
        return None
    from shim.personality import platforms

    return platforms.split_specifier(text)


def _insecure_entries(daemon_json: str) -> list[str]:
    data = _json(daemon_json)
    entries = data.get("insecure-registries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    # the daemon drops an http:// or https:// prefix (with a warning)
    return [e.split("://", 1)[-1].rstrip("/") for e in entries if isinstance(e, str)]


def daemon_insecure(domain: str, daemon_json: str) -> bool:
    """The docker daemon reaches registry `domain` (host[:port]) without TLS:
    listed by name in insecure-registries, or its address (a literal IP, or
    ``localhost``) in one of the CIDRs there or the loopback ones."""
    if domain == "docker.io":
        return False  # the official index is always secure
    entries = _insecure_entries(daemon_json)
    if domain in entries:
        return True
    host = domain
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host == "localhost":
        host = "127.0.0.1"
    if ":" not in host and not all(c in "0123456789." for c in host):
        return False  # a name, not an address (ipaddress costs the hot path ~7 ms)
    parts = host.split(".")
    if (
        len(parts) == 4
        and parts[0] == "127"
        and all(p.isdigit() and p == str(int(p)) and int(p) < 256 for p in parts)
    ):
        return True  # IPv4 loopback, 127.0.0.0/8 (LOOPBACK)
    import ipaddress

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for entry in (*LOOPBACK, *entries):
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _gpus_option(visible: str | None) -> str | None:
    """``--gpus=all``, or for a job given some GPUs (``NVIDIA_VISIBLE_DEVICES``
    of indexes, UUIDs or MIG ``GPU:INSTANCE`` pairs) ``--gpus=device=0`` /
    ``--gpus="device=0,1"``: the same GPUs, never all of them. docker/cli
    opts/gpus.go ``GpuOpts.Set`` reads the value as one CSV record, so a list
    with commas is quoted. None for a list with any other character (quotes,
    spaces inside an entry): it cannot be handed on exactly, and ``all`` would
    widen it."""
    value = ",".join(part.strip() for part in (visible or "").strip().split(","))
    if not value or value.lower() == "all":
        return "--gpus=all"
    if all(c.isascii() and (c.isalnum() or c in ",:-_") for c in value):
        return f'--gpus="device={value}"' if "," in value else f"--gpus=device={value}"
    return None


def _count(text: str) -> int | None:
    """A GPU count as docker/cli ``parseCount`` reads it: ``all`` is -1, else
    Go's ``strconv.Atoi`` (an optional sign, decimal digits); None where it
    fails (docker rejects the option)."""
    if text == "all":
        return -1
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or len(digits) > 18 or not (digits.isascii() and digits.isdigit()):
        return None
    return -int(digits) if text[:1] == "-" else int(digits)


def _gpus_devices(options) -> str | None:
    """The GPUs the user's ``--gpus`` values give the container, as its
    ``NVIDIA_VISIBLE_DEVICES`` will say them, or None (no value, one docker
    would reject, or not NVIDIA's). docker/cli opts/gpus.go ``GpuOpts.Set``:
    one CSV record (the first line) of ``KEY=VALUE`` fields (``count``,
    ``device``, ``driver``, ``capabilities``, ``options``) or a bare count,
    ``all`` a count of -1, a request naming neither count nor device a count
    of 1. moby daemon/nvidia_linux.go ``setNvidiaGPUs`` appends
    ``NVIDIA_VISIBLE_DEVICES`` for each request, so the last ``--gpus``
    wins: device IDs joined by commas, a count N as ``0,…,N-1``
    (``countToDevices``), a negative count ``all``, 0 ``void``. With
    ``driver=cdi`` the IDs are CDI names (``nvidia.com/gpu=1``)."""
    if not options:
        return None
    fields = csv_record(options[-1] or "")
    if fields is None:
        return None
    count: int | None = None
    devices: list[str] | None = None
    driver = ""
    for field in fields:
        key, eq, value = field.partition("=")
        if not eq:
            count = _count(key)
            if count is None:
                return None
        elif key == "count":
            count = _count(value)
            if count is None:
                return None
        elif key == "device":
            devices = value.split(",")
        elif key == "driver":
            driver = value
    if driver == "cdi" and devices is not None:
        if not all(d.startswith(CDI_NVIDIA) for d in devices):
            return None
        devices = [d[len(CDI_NVIDIA) :] for d in devices]
    elif driver not in ("", "nvidia"):
        return None
    if devices is not None:
        return ",".join(devices)
    count = 1 if count is None else count
    if count < 0:
        return "all"
    if count == 0:
        return "void"
    if count > 4096:
        return None
    return ",".join(str(i) for i in range(count))


class Docker(Personality):
    grammar = docker
    login_verbs = frozenset({"run", "create"})
    gpu_verbs = frozenset({"run", "create"})

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._podman_for: tuple[str | None, Personality | None] | None = None

    def podman(self) -> Personality | None:
        """The podman personality when the real docker is podman, else None."""
        if self._podman_for is None or self._podman_for[0] != self.real:
            found = None
            if runs_podman(self.real):
                from shim.personality.podman import Podman

                found = Podman(self.name)
                found.real = self.real
            self._podman_for = (self.real, found)
        return self._podman_for[1]

    def parse(self, args: list[str]) -> Invocation:
        podman = self.podman()
        return podman.parse(args) if podman else docker.parse(args)

    def operand(self, text: str, inv: Invocation, environ: Mapping[str, str]):
        podman = self.podman()
        if podman:
            return podman.operand(text, inv, environ)
        ref = qualified_reference(text, allow_short=True)
        return ("", ref) if ref is not None else None

    def passes_through(self, inv: Invocation, environ: Mapping[str, str]) -> bool:
        podman = self.podman()
        if podman:
            return podman.passes_through(inv, environ)
        if inv.enabled("help") or inv.enabled("help", global_level=True):
            return True
        if inv.enabled("all-tags") or content_trust(inv, environ):
            return True
        return local_socket(daemon_host(inv, environ)) is None

    def _daemon_json(self, inv: Invocation, environ: Mapping[str, str]) -> str:
        socket_path = local_socket(daemon_host(inv, environ))
        if rootless_daemon(socket_path, os.geteuid()):
            xdg = environ.get("XDG_CONFIG_HOME") or os.path.join(
                environ.get("HOME") or os.path.expanduser("~"), ".config"
            )
            return os.path.join(xdg, "docker", "daemon.json")
        return DAEMON_JSON

    def tls_verify(self, inv: Invocation, environ: Mapping[str, str]) -> bool | None:
        """False when the daemon reaches this command's registry without TLS;
        else None (registries.conf and imagefit's list decide for the shim)."""
        podman = self.podman()
        if podman:
            return podman.tls_verify(inv, environ)
        found = self.operand(inv.args[inv.images[0]], inv, environ) if inv.images else None
        if found is None:
            return None
        return False if daemon_insecure(found[1].domain, self._daemon_json(inv, environ)) else None

    def authfile(self, inv: Invocation, environ: Mapping[str, str]) -> str | None:
        podman = self.podman()
        if podman:
            return podman.authfile(inv, environ)
        return os.path.join(config_dir(inv, environ), "config.json")

    def credentials(self, inv: Invocation, environ: Mapping[str, str]):
        podman = self.podman()
        return podman.credentials(inv, environ) if podman else None

    def requested_platform(self, inv: Invocation, environ: Mapping[str, str]):
        podman = self.podman()
        if podman:
            return podman.requested_platform(inv, environ)
        # DOCKER_DEFAULT_PLATFORM is only the flag's default: an explicit
        # --platform, even empty (the host's platform), wins (docker/cli
        # cli/command/container/opts.go: the flag defaults to the variable)
        given = inv.last("platform")
        return platform_request(
            given if given is not None else environ.get("DOCKER_DEFAULT_PLATFORM")
        )

    def wants_cmd(self, inv: Invocation) -> bool:
        podman = self.podman()
        return podman.wants_cmd(inv) if podman else login.wants_cmd(inv, self.login_verbs)

    def pin(self, prefix, ref, digest: str) -> str:
        podman = self.podman()
        return podman.pin(prefix, ref, digest) if podman else super().pin(prefix, ref, digest)

    def finish(
        self, args, inv, resolved: list[Resolved], *, login, insecure_by_config, environ, euid
    ) -> Plan:
        podman = self.podman()
        if podman:
            return podman.finish(
                args, inv, resolved, login=login, insecure_by_config=insecure_by_config,
                environ=environ, euid=euid,
            )  # fmt: skip
        if insecure_by_config and resolved:
            from shim.intercept import warn

            warn(
                f"{resolved[0].ref.domain} is insecure only by imagefit's config; docker has no "
                "flag for that: its daemon must list it in insecure-registries"
            )
        if login and inv.insert_at is not None and inv.images:
            front, after = self.login_flags(inv, environ, euid)
            image = inv.images[0]
            if after:  # our entrypoint: with no command and no TTY, the image's Cmd
                after += with_cmd(args, image, image_cmd(resolved, image), inv.enabled("tty"))
            args[image + 1 : image + 1] = after
            args[inv.insert_at : inv.insert_at] = front
        # the daemon stores a digest pull as REPO:<none>: the user's tag, on the same daemon
        after = tag_steps(self.daemon_args(inv), resolved) if inv.verb == "pull" else []
        return Plan(args, after=after)

    def daemon_args(self, inv: Invocation) -> list[str]:
        """The daemon-selecting global flags of this command line, for another
        command on the same daemon: ``--config``, ``--context``, ``--host``,
        ``--tlscacert``/``--tlscert``/``--tlskey`` with their values, ``--tls``
        and ``--tlsverify`` when on (docker/cli cli/flags/options.go); not
        ``--log-level``/``--debug``."""
        out: list[str] = []
        for name in ("config", "context", "host", "tlscacert", "tlscert", "tlskey"):
            out += [f"--{name}={v}" for v in inv.global_flags.get(name, []) if v is not None]
        out += [f"--{n}" for n in ("tls", "tlsverify") if inv.enabled(n, global_level=True)]
        return out

    def job_env(self, inv: Invocation, environ: Mapping[str, str]) -> dict[str, str | None]:
        """podman's when the real docker is podman. Real docker: ``-e/--env
        NAME=VALUE`` of a visible-device variable, then the user's ``--gpus``
        as the container's ``NVIDIA_VISIBLE_DEVICES`` (dockerd sets it after
        the user's variables: :func:`_gpus_devices`). The caller's values
        count where they reach the container (the ``--env=NAME`` imagefit
        adds, a bare ``-e NAME``); after the user's own ``--device``/
        ``--gpus`` or an ``--env-file`` (not read) they are None."""
        podman = self.podman()
        if podman:
            return podman.job_env(inv, environ)
        from hostfacts.fingerprint import VISIBLE_ENV

        # the caller's values reach the container with the --env=NAME imagefit
        # adds: not after the user's own --device/--gpus, nor with an --env-file
        forwarded = not (inv.has("device", "gpus") or "env-file" in inv.flags)
        given = env_settings(inv.flags.get("env"), VISIBLE_ENV, forwarded)
        gpus = _gpus_devices(inv.flags.get("gpus"))
        if gpus is not None:
            given["NVIDIA_VISIBLE_DEVICES"] = gpus
        return given

    def gpu_flags(self, inv: Invocation, vendor: str, environ: Mapping[str, str], euid: int):
        """podman's words when the real docker is podman (podman 4.3's
        ``--gpus`` does nothing). Real docker: NVIDIA ``--gpus=all`` (the
        daemon's NVIDIA runtime or CDI does the rest); AMD
        ``--device=/dev/kfd --device=/dev/dri`` and ``--group-add=GID`` of
        the groups owning them (unless the user gave ``--group-add``); then
        ``--env=NAME`` for the caller's ``CUDA_VISIBLE_DEVICES`` (NVIDIA;
        docker sets ``NVIDIA_VISIBLE_DEVICES`` from ``--gpus`` itself) or
        ``ROCR_VISIBLE_DEVICES``/``HIP_VISIBLE_DEVICES`` (AMD) unless the
        user set it or gave ``--env-file``. Nothing after ``--device`` or
        ``--gpus`` of the user's, or hidden GPUs."""
        podman = self.podman()
        if podman:
            return podman.gpu_flags(inv, vendor, environ, euid)
        from shim import gpu_access as g

        if inv.has("device", "gpus"):
            return []
        given = command_env(inv.flags.get("env"))
        if g.hidden(vendor, environ, given):
            return []
        envs = []
        if "env-file" not in inv.flags:
            envs = [w for w in g.env_words(vendor, environ, given) if "NVIDIA_" not in w]
        if vendor == g.NVIDIA:
            if "NVIDIA_VISIBLE_DEVICES" in given:
                # the user's GPU choice for the NVIDIA runtime: --gpus would make
                # dockerd append NVIDIA_VISIBLE_DEVICES after it (moby
                # daemon/nvidia_linux.go setNvidiaGPUs), widening it
                return []
            option = _gpus_option(environ.get("NVIDIA_VISIBLE_DEVICES"))
            if option is None:
                from shim.intercept import warn  # it makes the value terminal-safe

                shown = environ.get("NVIDIA_VISIBLE_DEVICES", "")[:80]
                warn(
                    f"NVIDIA_VISIBLE_DEVICES={shown!r} cannot be given to docker --gpus "
                    "exactly; no GPU option added (add --gpus yourself)"
                )
                return []
            return [option, *envs]
        words = [f"--device={d}" for d in g.AMD_DEVICES]
        if "group-add" not in inv.flags:
            words += [f"--group-add={n}" for n in g.amd_groups()]
        return words + envs

    def login_flags(
        self, inv: Invocation, environ: Mapping[str, str], euid: int
    ) -> tuple[list[str], list[str]]:
        """(flags after the subcommand word, words right after the image).

        ``--entrypoint=/bin/sh`` and ``-c OUTER sh`` unless the user gave an
        entrypoint; as the caller (not root, no ``-u/--user``, a rootful
        daemon) ``--user=UID:GID``; then HOME (:func:`shim.login.home_flags`)
        when the container runs as the caller (root included), not for a
        rootless daemon (its root is the caller) nor after ``--user``."""
        front: list[str] = []
        after: list[str] = []
        if "entrypoint" not in inv.flags:
            front.append("--entrypoint=/bin/sh")
            after = ["-c", login.OUTER, "sh"]
        if "user" in inv.flags:
            return front, after
        if euid != 0:
            if rootless_daemon(local_socket(daemon_host(inv, environ)), euid):
                return front, after
            front.append(f"--user={euid}:{os.getegid()}")
        front += login.home_flags(inv.flags, environ, euid, os.getegid(), podman=False)
        return front, after


def personality(name: str) -> Docker:
    return Docker(name)
