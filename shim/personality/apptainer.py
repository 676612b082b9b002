"""apptainer and singularity: ``run``, ``exec``, ``shell``, ``test``,
``pull``, ``build``, ``instance start``, ``instance run``.

Grammar: :mod:`shim.argv.apptainer` (tables and sources in
:mod:`shim.argv.apptainer_table`). ``singularity`` may be apptainer's
compatibility link or SingularityCE; the shim cannot tell without running it,
so both names read the environment the same way: ``APPTAINER_<KEY>`` first,
then ``SINGULARITY_<KEY>`` (apptainer's order; SingularityCE reads only the
second), as apptainer does for a flag not given on the command line
(pkg/cmdline/flag.go ``updateCmdFlagFromEnv``).

Image operands (internal/pkg/util/uri/uri.go): only ``docker://REF`` (a
registry image through containers/image; a short name is
docker.io/library/NAME, no search registries) and ``oras://REF`` (a SIF
stored as an OCI artifact; only a fully qualified REF is resolved, since the
ORAS client would default to Docker Hub) are resolved and pinned, keeping the
prefix: ``docker://host/repo@sha256:...`` (no tag: containers/image rejects
tag and digest together). Everything else passes through: SIF/squashfs/ext3
files, sandbox directories, ``instance://``, ``library://``, ``shub://``,
``ipfs://``, ``http(s)://``, ``docker-archive:``, ``docker-daemon:``,
``oci:``, ``oci-archive:``, and ``docker:REF`` without ``//`` (which
containers/image rejects).

The shim stands aside for ``--help`` (the command's or the root's) and the
root's ``--version``. A ``--arch``/``--arch-variant`` (``APPTAINER_PULL_ARCH``,
``APPTAINER_PULL_ARCH_VARIANT``; ``APPTAINER_BUILD_ARCH`` for build) or
SingularityCE's ``--platform`` on pull/build is a constraint on the choice;
another architecture than the host's leaves apptainer's own choice alone.
SingularityCE's ``--oci`` changes nothing here: an OCI-mode pull of a pinned
``docker://`` reference, and OCI-mode ``exec``, behave as in native mode for
what the shim does.

TLS: ``--no-https`` (or the deprecated ``--nohttps``), else
``APPTAINER_NOHTTPS``/``APPTAINER_NO_HTTPS`` (then ``SINGULARITY_*``), make
the registry reachable over plain HTTP without TLS checks. A registry that
only imagefit's ``insecure_registries`` marks insecure gets ``--no-https``
inserted after the command word, since apptainer would not know.

Credentials (never logged): ``--docker-username``/``--docker-password``, else
``APPTAINER_DOCKER_USERNAME``/``_PASSWORD``, then ``SINGULARITY_DOCKER_*``,
then the unprefixed ``DOCKER_USERNAME``/``DOCKER_PASSWORD`` (apptainer >=
1.1.4); else the file ``--authfile`` names, else apptainer's own
``~/.apptainer/docker-config.json`` (``apptainer registry login``; for
``singularity``, ``~/.singularity/docker-config.json`` when the former does
not exist), then ``~/.docker/config.json`` (:mod:`shim.auth`).

Login recipe (apptainer already runs as the caller, with the caller's home;
``exec`` never runs the runscript/ENTRYPOINT), on run/exec/shell when login
applies (:func:`shim.intercept.plan`):

- ``run [F] IMG [ARGS]``   -> ``exec [F] IMG /bin/sh -c OUTER sh [ARGS]``
- ``exec [F] IMG CMD ARGS`` -> ``exec [F] IMG /bin/sh -c OUTER sh CMD ARGS``
- ``shell [F] IMG``        -> ``exec [F] IMG /bin/sh -c OUTER sh`` (an
  interactive login shell); ``shell IMG ARGS`` (arguments to the shell) ->
  ``exec IMG /bin/sh -c OUTER sh /bin/sh ARGS``

(OUTER: :data:`shim.login.OUTER`, which keeps the image's PATH ahead of what
/etc/profile sets.) Not applied when the user chose the shell (``shell
--shell``/``-s``, ``APPTAINER_SHELL``/``SINGULARITY_SHELL``) or the old
``--syos`` shell, on ``run --runscript-timeout`` (a runscript setting exec
does not accept), on ``exec`` without a command (apptainer's own usage error
stays), nor ever on ``test``, ``pull``, ``build`` or the instance commands.

``pull`` without an output file: the name apptainer would have given the
file for the user's URI (``uri.GetName``: ``<last path component>_<tag>.sif``,
tag ``latest`` by default; the same for ``--sandbox`` directories) is
inserted as the output operand before the pinned URI, so the file is not
named ``name@sha256_<hex>.sif``; unless ``--name`` or
``APPTAINER_PULL_NAME`` names it already. ``--dir`` still applies.

Standard library only.
"""

from __future__ import annotations

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

import os

from shim import login, reference
from shim.argv import Invocation, apptainer
from shim.argv.apptainer_table import ENV_PREFIXES
from shim.errors import InvalidReference
from shim.personality.base import Personality, Plan, Resolved, csv_record

#: Transports whose reference the shim may resolve and pin.
REGISTRY_TRANSPORTS = ("docker://", "oras://")
#: apptainer's arch names (internal/pkg/build/oci/oci.go ``archMap``) that
#: carry a variant; any other name is its OCI architecture as it stands.
_ARCH_VARIANTS = {
    "arm32v5": ("arm", "v5"),
    "arm32v6": ("arm", "v6"),
    "arm32v7": ("arm", "v7"),
    "arm64v8": ("arm64", "v8"),
}
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go strconv.ParseBool


def env_option(environ: Mapping[str, str], *keys: str, unprefixed: bool = False) -> str | None:
    """The value the environment gives an option, as apptainer reads it: for
    each prefix in turn (``APPTAINER_``, ``SINGULARITY_``), each EnvKey in
    order; a key set under an earlier prefix (even empty) hides the same key
    under a later one; the first non-blank value wins, trimmed. With
    `unprefixed`, the bare key is read last (``DOCKER_USERNAME``)."""
    seen: set[str] = set()
    prefixes = (*ENV_PREFIXES, "") if unprefixed else ENV_PREFIXES
    for prefix in prefixes:
        for key in keys:
            name = prefix + key
            if name not in environ or (key in seen and prefix):
                continue
            seen.add(key)
            value = environ[name].strip()
            if value:
                return value
    return None


def _option(inv: Invocation, environ: Mapping[str, str], flag: str, *keys: str, **kw) -> str | None:
    """A value flag's value: the command line's, else the environment's."""
    if flag in inv.flags:
        return inv.last(flag)
    return env_option(environ, *keys, **kw) if keys else None


def default_pull_name(uri: str) -> str:
    """The file name ``apptainer pull URI`` gives its output
    (internal/pkg/util/uri/uri.go ``GetName``): the last path component and
    the tag, ``<name>_<tag>.sif`` (tag ``latest`` when absent); "" when the
    URI has no transport."""
    transport, colon, ref = uri.partition(":")
    if not colon:
        return ""
    parts = ref.lstrip("/").split("/")
    if transport in ("http", "https"):
        return parts[-1]
    container, tag = parts[-1], "latest"
    if ":" in container:
        pieces = container.split(":")
        container, tag = pieces[0], pieces[1].split(",")[0]
    return f"{container}_{tag}.sif"


#: apptainer options by which the user chooses GPU support (or none) for
#: themselves, and their environment keys (pkg/cmdline flags' EnvKeys)
USER_GPU_FLAGS = ("nv", "nvccli", "rocm", "no-nv", "no-rocm")
USER_GPU_ENV = ("NV", "NVCCLI", "ROCM", "NO_NV", "NV_OFF", "NO_ROCM", "ROCM_OFF")


class Apptainer(Personality):
    grammar = apptainer
    login_verbs = frozenset({"run", "exec", "shell"})
    gpu_verbs = frozenset({"run", "exec", "shell", "instance start", "instance run"})
    tls_flag = "--no-https"

    def operand(self, text: str, inv: Invocation, environ: Mapping[str, str]):
        for prefix in REGISTRY_TRANSPORTS:
            if text.startswith(prefix):
                break
        else:
            return None
        try:
            ref = reference.parse(text[len(prefix) :])
        except InvalidReference:
            return None
        if prefix == "oras://" and not ref.qualified:
            return None
        return prefix, ref

    def passes_through(self, inv: Invocation, environ: Mapping[str, str]) -> bool:
        return (
            inv.enabled("help")
            or inv.enabled("help", global_level=True)
            or inv.enabled("version", global_level=True)
        )

    def tls_verify(self, inv: Invocation, environ: Mapping[str, str]) -> bool | None:
        if "no-https" in inv.flags:
            # --no-https=false leaves the choice to registries.conf, as no flag does
            return False if inv.enabled("no-https") else None
        value = env_option(environ, "NOHTTPS", "NO_HTTPS")
        return False if value in _TRUE else None

    def requested_platform(self, inv: Invocation, environ: Mapping[str, str]):
        if inv.verb not in ("pull", "build"):
            return None
        """SingularityCE's ``--platform`` (split as containerd's platforms.Parse
        splits it), else ``--arch``/``--arch-variant`` or their variables, an
        ``--arch`` of apptainer's own names carrying its variant (``arm64v8``,
        ``arm32v7``); names as written (:mod:`shim.personality.platforms`)."""
        from shim.personality import platforms

        platform = _option(inv, environ, "platform")
        if platform:
            return platforms.split_specifier(platform)
        pull = inv.verb == "pull"
        arch = _option(inv, environ, "arch", "PULL_ARCH" if pull else "BUILD_ARCH")
        variant = _option(inv, environ, "arch-variant", *(("PULL_ARCH_VARIANT",) if pull else ()))
        if arch == "arm" and variant:
            variant = variant if variant.startswith("v") else "v" + variant
        elif arch in _ARCH_VARIANTS:
            arch, variant = _ARCH_VARIANTS[arch][0], variant or _ARCH_VARIANTS[arch][1]
        return platforms.from_flags(None, arch, variant)

    def authfile(self, inv: Invocation, environ: Mapping[str, str]) -> str | None:
        if "authfile" in inv.flags:
            return inv.last("authfile") or None
        home = environ.get("HOME") or os.path.expanduser("~")
        own = os.path.join(home, ".apptainer", "docker-config.json")
        if self.name == "singularity" and not os.path.exists(own):
            return os.path.join(home, ".singularity", "docker-config.json")
        return own

    def credentials(self, inv: Invocation, environ: Mapping[str, str]) -> tuple[str, str] | None:
        user = _option(inv, environ, "docker-username", "DOCKER_USERNAME", unprefixed=True)
        password = _option(inv, environ, "docker-password", "DOCKER_PASSWORD", unprefixed=True)
        if not user and not password:
            return None
        return user or "", password or ""

    def finish(
        self, args, inv, resolved: list[Resolved], *, login, insecure_by_config, environ, euid
    ) -> Plan:
        # later positions first, so that the earlier ones stay valid
        if resolved and self._names_pull_output(inv, environ):
            position = inv.images[0]
            name = default_pull_name(inv.args[position])
            if name:
                args.insert(position, name)
        if login and self._login_applies(inv, environ):
            image = inv.images[0]
            recipe = list(_LOGIN_COMMAND)
            if inv.verb == "shell" and inv.command_at is not None:
                recipe.append("/bin/sh")  # the user's words are arguments to the shell
            args[image + 1 : image + 1] = recipe
            args[inv.insert_at - 1] = "exec"
        if insecure_by_config and resolved and inv.insert_at is not None:
            args.insert(inv.insert_at, self.tls_flag)
        return Plan(args)

    def job_env(self, inv: Invocation, environ: Mapping[str, str]) -> dict[str, str | None]:
        """The container's visible-device variables as apptainer sets them
        (user guide, "Environment variable precedence"): ``--env
        NAME=VALUE`` over ``APPTAINERENV_NAME`` (then ``SINGULARITYENV_NAME``)
        over the caller's variable, which ``--cleanenv``, ``--containall``
        and ``--compat`` (or their ``APPTAINER_``/``SINGULARITY_``
        variables; the flag wins) leave out of the container (None;
        apptainer internal/pkg/util/env/create.go ``mustAddToProcessEnv``:
        only proxies and TERM pass a clean environment; cmd/internal/cli
        actions.go: compat sets containall, launch/options.go: containall
        adds CleanEnv). ``--env`` is read as pflag's ``stringToString``: a
        value with one ``=`` is one pair (``CUDA_VISIBLE_DEVICES=0,1``),
        else one CSV record of pairs.

        ``NVIDIA_VISIBLE_DEVICES``: ``--nv`` binds every NVIDIA device
        whatever it says (user guide, "GPU Support"), so a list of GPUs
        narrows nothing (None); ``none``/``void``/empty still hides them
        (the user said the job has none). With ``--nvccli`` (or
        ``APPTAINER_NVCCLI``) nvidia-container-cli takes the caller's value
        (launch/launcher_linux.go reads the host's), and it counts.
        ``--env-file`` is not read."""
        from hostfacts.fingerprint import VISIBLE_ENV

        clean = any(self._on(inv, environ, flag) for flag in ("cleanenv", "containall", "compat"))
        given: dict[str, str | None] = dict.fromkeys(VISIBLE_ENV) if clean else {}
        for name in VISIBLE_ENV:
            for prefix in ("APPTAINERENV_", "SINGULARITYENV_"):
                if prefix + name in environ:
                    given[name] = environ[prefix + name]
                    break
        for value in inv.flags.get("env") or ():
            value = value or ""
            pairs = [value.strip('"')] if value.count("=") == 1 else csv_record(value) or []
            for pair in pairs:
                name, eq, text = pair.partition("=")
                if eq and name in VISIBLE_ENV:
                    given[name] = text
        nvidia = "NVIDIA_VISIBLE_DEVICES"
        value = given[nvidia] if nvidia in given else environ.get(nvidia)
        if self._on(inv, environ, "nvccli"):
            given[nvidia] = environ.get(nvidia)
        elif value is not None and value.strip().lower() not in ("", "none", "void"):
            given[nvidia] = None
        return given

    @staticmethod
    def _on(inv: Invocation, environ: Mapping[str, str], flag: str) -> bool:
        """Boolean `flag` as apptainer reads it: the command line's, else its
        ``APPTAINER_``/``SINGULARITY_`` variable (Go ``strconv.ParseBool``)."""
        if flag in inv.flags:
            return inv.enabled(flag)
        value = env_option(environ, flag.upper()) or ""
        return value in ("1", "t", "T", "TRUE", "true", "True")

    def gpu_flags(self, inv: Invocation, vendor: str, environ: Mapping[str, str], euid: int):
        """``--nv`` (NVIDIA) or ``--rocm`` (AMD): apptainer binds the host's
        driver libraries and device nodes. Nothing when the user chose
        ``--nv``, ``--nvccli``, ``--rocm``, ``--no-nv``, ``--no-rocm`` or
        their ``APPTAINER_``/``SINGULARITY_`` variables, or hid the GPUs.
        ``--contain``/``--containall`` are not GPU choices (``--nv`` works
        with them); the caller's environment, visible-device variables
        included, reaches the container as apptainer passes it."""
        from shim import gpu_access as g

        if inv.has(*USER_GPU_FLAGS) or any(
            env_option(environ, key) is not None for key in USER_GPU_ENV
        ):
            return []
        job = dict(environ)
        for name, value in self.job_env(inv, environ).items():
            if value is None:
                job.pop(name, None)
            else:
                job[name] = value
        if g.hidden(vendor, job):
            return []
        return ["--nv"] if vendor == g.NVIDIA else ["--rocm"]

    def _names_pull_output(self, inv: Invocation, environ: Mapping[str, str]) -> bool:
        """pull with no output file of the user's: the shim names it."""
        if inv.verb != "pull" or inv.output_at is not None or not inv.images:
            return False
        return not _option(inv, environ, "name", "PULL_NAME")

    def _login_applies(self, inv: Invocation, environ: Mapping[str, str]) -> bool:
        if inv.verb not in self.login_verbs or not inv.images or inv.insert_at is None:
            return False
        if inv.verb == "run":
            return "runscript-timeout" not in inv.flags
        if inv.verb == "exec":
            return inv.command_at is not None
        # shell: not when the user chose the shell
        return not inv.has("shell", "syos") and env_option(environ, "SHELL") is None


#: The command the login recipe puts after the image (``exec IMG ...``).
_LOGIN_COMMAND = tuple(login.ENTRYPOINT)


def personality(name: str) -> Apptainer:
    return Apptainer(name)
