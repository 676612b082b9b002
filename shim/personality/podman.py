"""podman: `run`, `create`, `pull` (also `container run|create`, `image pull`).

Image operands: registry references; ``docker://NAME`` is a registry
reference too, and reads short names as docker.io/library/NAME (containers/image
docker transport: no short-name search; checked with podman 4.3.1). Other
transports (containers/image transports/alltransports) pass through. Short
names are resolved for ``pull`` through registries.conf exactly as podman
does (:mod:`shim.shortnames`), or left alone; ``run``/``create`` of a short
name pass through, since podman first looks for a local image of that name.

The shim stands aside for: ``--help`` (at the subcommand level, or the root's
for pull), ``--rootfs``, ``pull --all-tags``, and remote podman (``--remote``,
``--url``, ``--connection``, ``--host``, ``--identity``, ``CONTAINER_HOST``,
``CONTAINER_CONNECTION``: the container runs on another machine). A
``--platform``/``--arch``/``--os``/``--variant`` the user gives is a
constraint on the choice (see :func:`platform_constraint`), never overridden.

Login recipe (:mod:`shim.login`): ``--entrypoint=<json>`` unless the user
set one, ``--userns=keep-id`` when rootless unless the user chose
``--userns``, ``--user`` or ``$PODMAN_USERNS``; inserted right after the
subcommand word.
"""

from __future__ import annotations

if False:  # for type checkers only: importing collections costs every shimmed command ~1.3 ms
    from collections.abc import Mapping

from shim import login, reference
from shim.argv import Invocation, podman
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
    split_transport,
    tag_steps,
)  # fmt: skip

#: containers/image transports that are not a registry.
OTHER_TRANSPORTS = (
    "containers-storage:", "dir:", "docker-archive:", "docker-daemon:", "oci:", "oci-archive:",
    "ostree:", "sif:", "tarball:",
)  # fmt: skip
REMOTE_FLAGS = ("url", "connection", "host", "identity")
REMOTE_ENV = ("CONTAINER_HOST", "CONTAINER_CONNECTION")


#: podman options by which the user gives devices or GPUs of their own:
#: imagefit then adds none (``--hooks-dir`` is a root-level flag)
USER_DEVICE_FLAGS = ("device", "gpus")


def cdi_gpus(devices) -> str | None:
    """The NVIDIA GPUs a command line's ``--device`` values name through CDI
    (``nvidia.com/gpu=NAME``; NAME an index, UUID, ``GPU:MIG`` pair or
    ``all``), as a ``NVIDIA_VISIBLE_DEVICES`` value (``"0,1"``, ``"all"``),
    or None when they name none. Each value is a list (podman
    cmd/podman/common/create.go: ``StringSliceVar``, pflag reads it as one
    CSV record: ``--device=nvidia.com/gpu=0,nvidia.com/gpu=1``). A CDI
    device name is what nvidia-ctk names a GPU by (its NVML index or UUID),
    the same words the toolkit's variable takes."""
    names: list[str] = []
    for value in devices or ():
        for item in csv_record(value or "") or ():
            if item.startswith(CDI_NVIDIA):
                names.append(item[len(CDI_NVIDIA) :])
    if not names:
        return None
    return "all" if "all" in names else ",".join(dict.fromkeys(names))


class Podman(Personality):
    grammar = podman
    login_verbs = frozenset({"run", "create"})
    gpu_verbs = frozenset({"run", "create"})
    tls_flag = "--tls-verify=false"

    def operand(self, text: str, inv: Invocation, environ: Mapping[str, str]):
        found = split_transport(text, ("docker://",))
        if found:
            ref = qualified_reference(found[1], allow_short=True)
            return (found[0], ref) if ref else None
        if text.startswith(OTHER_TRANSPORTS):
            return None
        ref = qualified_reference(text, allow_short=False)
        if ref is not None:
            return "", ref
        if inv.verb != "pull" or reference.could_be_image_id(text):
            # run/create look for a local image by that short name first
            # (localhost/NAME, a tag pulled earlier): only podman knows which
            return None
        from shim.shortnames import resolve_short_name

        return resolve_short_name(text, environ)

    def passes_through(self, inv: Invocation, environ: Mapping[str, str]) -> bool:
        if inv.enabled("help") or inv.enabled("help", global_level=True) or inv.enabled("rootfs"):
            return True
        if inv.enabled("all-tags"):
            return True
        if inv.enabled("remote", global_level=True) or any(
            n in inv.global_flags for n in REMOTE_FLAGS
        ):
            return True
        return any(environ.get(n) for n in REMOTE_ENV)

    def tls_verify(self, inv: Invocation, environ: Mapping[str, str]) -> bool | None:
        if "tls-verify" not in inv.flags:
            return None
        value = inv.last("tls-verify")
        return value is None or value.lower() not in ("false", "0", "f")

    def requested_platform(self, inv: Invocation, environ: Mapping[str, str]):
        """``--platform OS/ARCH[/VARIANT]`` (its variant, else ``--variant``) or
        ``--os``/``--arch``/``--variant`` (:mod:`shim.personality.platforms`);
        one word other than an OS, or ``--platform`` with ``--os``/``--arch``,
        is what podman refuses (containers/common pkg/parse ``Platform``;
        cmd/podman ``--platform option can not be specified with --arch or
        --os``): :data:`~shim.personality.platforms.UNREADABLE`."""
        from shim.personality import platforms

        text = inv.last("platform")
        if not text:
            return platforms.from_flags(inv.last("os"), inv.last("arch"), inv.last("variant"))
        if inv.last("os") or inv.last("arch"):
            return platforms.UNREADABLE
        os_, arch, variant = platforms.split_specifier(text, one_word_arch=False)
        if (os_, arch, variant) != platforms.UNREADABLE and variant is None:
            variant = inv.last("variant") or None
        return os_, arch, variant

    def authfile(self, inv: Invocation, environ: Mapping[str, str]) -> str | None:
        return inv.last("authfile") or environ.get("REGISTRY_AUTH_FILE") or None

    def credentials(self, inv: Invocation, environ: Mapping[str, str]) -> tuple[str, str] | None:
        """``--creds USERNAME[:PASSWORD]`` (podman-pull(1), podman-run(1)): the
        credentials podman itself uses for this pull, before any auth file
        (containers/image ``DockerAuthConfig`` in the SystemContext wins over
        auth.json). Without a password podman prompts for one; the shim
        cannot, so it asks with the user name alone (a registry that needs the
        password answers 401: the shim fails open and podman prompts)."""
        given = inv.last("creds")
        if not given:
            return None
        user, _, password = given.partition(":")
        return user, password

    def pulls_many(self, inv: Invocation) -> bool:
        return inv.verb == "pull"

    def wants_cmd(self, inv: Invocation) -> bool:
        return login.wants_cmd(inv, self.login_verbs)

    def storage_args(self, inv: Invocation) -> list[str]:
        """The storage-selecting global flags of this command line (``--root``,
        ``--storage-driver``...), for a command on the same storage."""
        from shim.argv import podman_table as T

        skip = ("log-level", "cpu-profile", "memory-profile")
        out: list[str] = []
        for table in (inv.global_flags, inv.flags):
            for name, values in table.items():
                if name in T.PERSISTENT_VALUE and name not in skip:
                    out += [f"--{name}={v}" for v in values if v is not None]
                elif name == "transient-store" and inv.enabled(
                    name, global_level=table is not inv.flags
                ):
                    out.append("--transient-store")
        return out

    def has_image(self, inv: Invocation, image: str) -> bool | None:
        """``podman image exists`` (exit 0: present, 1: absent) on the same storage."""
        import os
        import subprocess

        if not self.real:
            return None
        try:
            done = subprocess.run(
                [self.real, *self.storage_args(inv), "image", "exists", image],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=30, check=False, env={**os.environ, "IMAGEFIT_ACTIVE": "1"},
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return {0: True, 1: False}.get(done.returncode)

    def finish(
        self, args, inv, resolved: list[Resolved], *, login, insecure_by_config, environ, euid
    ) -> Plan:
        extra = [self.tls_flag] if insecure_by_config and resolved else []
        if login:
            extra += self.login_flags(inv, environ, euid)
            if "entrypoint" not in inv.flags and inv.images:
                image = inv.images[0]
                args += with_cmd(args, image, image_cmd(resolved, image), inv.enabled("tty"))
        if extra and inv.insert_at is not None:
            args[inv.insert_at : inv.insert_at] = extra
        after = tag_steps(self.storage_args(inv), resolved) if inv.verb == "pull" else []
        return Plan(args, after=after)

    def job_env(self, inv: Invocation, environ: Mapping[str, str]) -> dict[str, str | None]:
        """``-e/--env NAME=VALUE`` of a visible-device variable (the container's
        value: podman-run(1)), and the GPUs the user gave through CDI
        (``--device=nvidia.com/gpu=1``) as ``NVIDIA_VISIBLE_DEVICES``: the
        container has those GPUs whatever that variable says. The caller's
        values count where they reach the container: with the ``--env=NAME``
        imagefit adds, a bare ``-e NAME``, or ``--env-host``; after the
        user's own ``--device``/``--gpus``/``--hooks-dir`` or an
        ``--env-file`` (not read) they are None."""
        from hostfacts.fingerprint import VISIBLE_ENV

        # imagefit hands on the caller's values (--env=NAME) with the GPU
        # options it adds: not after the user's own, nor with an --env-file
        own = inv.has(*USER_DEVICE_FLAGS) or "hooks-dir" in inv.global_flags
        forwarded = inv.enabled("env-host") or not (own or "env-file" in inv.flags)
        given = env_settings(inv.flags.get("env"), VISIBLE_ENV, forwarded)
        gpus = cdi_gpus(inv.flags.get("device"))
        if gpus is not None:
            given["NVIDIA_VISIBLE_DEVICES"] = gpus
        return given

    def gpu_flags(self, inv: Invocation, vendor: str, environ: Mapping[str, str], euid: int):
        """NVIDIA: ``--device=nvidia.com/gpu=all`` when a CDI spec defines it
        (:func:`shim.gpu_access.podman_nvidia`), or for a job given some GPUs
        (``NVIDIA_VISIBLE_DEVICES=0,1``) one ``--device=nvidia.com/gpu=N``
        per GPU the specs name (:func:`shim.gpu_access.cdi_devices`; one
        warning and nothing when they do not name one), nothing when the NVIDIA OCI
        hook is installed (it injects the GPU), else one warning with the fix
        and nothing (podman would refuse an unknown CDI device). AMD:
        ``--device=/dev/kfd --device=/dev/dri`` and the groups that own them
        (rootless: ``--group-add=keep-groups``, podman-run(1): a rootless
        container reaches a device its user has through a group only so;
        rootful: the devices' group ids), unless the user gave
        ``--group-add``. Then ``--env=NAME`` for each visible-device variable
        of the caller's (:func:`shim.gpu_access.env_words`), unless the user
        set it, gave ``--env-file`` or ``--env-host``. Nothing when the user
        gave ``--device``, ``--gpus`` or ``--hooks-dir``, or hid the GPUs."""
        from shim import gpu_access as g

        if inv.has(*USER_DEVICE_FLAGS) or "hooks-dir" in inv.global_flags:
            return []
        given = command_env(inv.flags.get("env"))
        if g.hidden(vendor, environ, given):
            return []
        envs = []
        if "env-file" not in inv.flags and not inv.enabled("env-host"):
            envs = g.env_words(vendor, environ, given)
        if vendor == g.AMD:
            words = [f"--device={d}" for d in g.AMD_DEVICES]
            if "group-add" not in inv.flags:
                groups = ["keep-groups"] if euid != 0 else g.amd_groups()
                words += [f"--group-add={n}" for n in groups]
            return words + envs
        mode, names = g.podman_nvidia(environ)
        if mode == "cdi":
            visible = given.get("NVIDIA_VISIBLE_DEVICES")
            if visible is None:
                visible = environ.get("NVIDIA_VISIBLE_DEVICES")
            devices = g.cdi_devices(visible, names)
            if devices is None:
                from shim.intercept import warn  # it makes the value terminal-safe

                warn(
                    f"NVIDIA_VISIBLE_DEVICES={visible[:80]!r} names a GPU no CDI spec names "
                    f"(they name {', '.join(sorted(names)[:8])}); no GPU option added, "
                    f"add --device={g.CDI_KIND}=NAME yourself"
                )
                return []
            return [f"--device={d}" for d in devices] + envs
        if mode == "hook":
            return envs
        from shim.intercept import warn

        warn(
            f"the chosen build needs an NVIDIA GPU, and podman has no CDI spec for "
            f"{g.CDI_DEVICE} (in {', '.join(g.CDI_DIRS)}) nor the NVIDIA hook: the container "
            f"starts without it; as root run: {g.CDI_FIX}"
        )
        return []

    def login_flags(self, inv: Invocation, environ: Mapping[str, str], euid: int) -> list[str]:
        import os

        return login.podman_flags(
            inv.flags, rootless=euid != 0, environ_userns=environ.get("PODMAN_USERNS"),
            environ=environ, euid=euid, egid=os.getegid(),
        )  # fmt: skip


def personality(name: str) -> Podman:
    return Podman(name)
