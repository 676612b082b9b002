"""``imagefit conform REF``: does the image meet the HPC container expectations?

Run with the real podman (never the shim: :func:`shim.locate.find_runtime`
skips it, and ``IMAGEFIT_ACTIVE=1`` makes any shim pass through), on the
image pulled once (``--no-pull``: a local image), each run with
``--rm --pull=never --network=none``:

==============  ===========================================================
shell           ``/bin/sh`` exists and runs (``--entrypoint /bin/sh``)
arbitrary-uid   it runs as an arbitrary UID with no passwd entry:
                ``--user 12345:12345 ... -c 'id -u'`` prints 12345
writable-tmp    ``/tmp`` is writable by that UID (``test -w /tmp``)
login-shell     ``/bin/sh -l -c true`` works as that UID (the login
                container: DESIGN.md "Running it")
user            the config's ``User`` is empty or root (WARN otherwise: a
                fixed user owns what the container writes on shared file
                systems, instead of the caller; login containers run as
                the caller)
image-path      the image's ``PATH`` survives the login shell with
                imagefit's recipe (:data:`shim.login.ENTRYPOINT`), even when
                /etc/profile resets it
==============  ===========================================================

Checks that need ``/bin/sh`` are SKIP without it. Exit status 0 when every
check passes, 1 otherwise, 125 when podman cannot pull or inspect the image.
Global podman options (``--root``, ``--runroot``, ``--storage-driver``...) go
through ``--podman-arg``; ``CONTAINERS_*`` variables are inherited.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass

from shim.author.common import AuthorError
from shim.untrusted import terminal_safe

UID = 12345
PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
ROOT_USERS = ("", "root", "0", "0:0", "root:root", "root:0", "0:root")
_PRINT_PATH = 'printf "%s\\n" "$PATH"'
#: podman's PATH when the image sets none (containers/common pkg/config DefaultPATH... as podman sets it)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    detail: str


class Podman:
    """The real podman with the caller's global options."""

    def __init__(self, runtime: str, podman_args: list[str], timeout: float) -> None:
        from shim.author.common import real_runtime

        self.path = real_runtime(runtime)
        self.args = list(podman_args)
        self.timeout = timeout
        self.env = {**os.environ, "IMAGEFIT_ACTIVE": "1"}

    def __call__(self, *argv: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                [self.path, *self.args, *argv],
                env=self.env, capture_output=True, text=True, timeout=self.timeout,
                stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise AuthorError(f"podman {argv[0]} timed out after {self.timeout:g} s") from None
        except OSError as exc:
            raise AuthorError(f"cannot run {self.path}: {exc.strerror or exc}") from None

    def run(self, image: str, entrypoint: str, *command: str) -> subprocess.CompletedProcess:
        return self(
            "run", "--rm", "--pull=never", "--network=none", f"--user={UID}:{UID}",
            f"--entrypoint={entrypoint}", image, *command,
        )  # fmt: skip


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _no_shell(done: subprocess.CompletedProcess) -> bool:
    text = done.stderr.lower()
    return done.returncode in (126, 127) and "/bin/sh" in text


def inspect(podman: Podman, reference: str, *, pull: bool, tls_verify, authfile) -> dict:
    """Pull `reference` (unless not `pull`) and return ``podman image inspect``'s object."""
    if pull:
        options = []
        if tls_verify is not None:
            options.append(f"--tls-verify={tls_verify}")
        if authfile:
            options += ["--authfile", authfile]
        done = podman("pull", "--quiet", *options, reference)
        if done.returncode != 0:
            raise AuthorError(f"podman pull {reference} failed: {_last_line(done.stderr)}")
    done = podman("image", "inspect", reference)
    if done.returncode != 0:
        raise AuthorError(f"podman image inspect {reference} failed: {_last_line(done.stderr)}")
    try:
        found = json.loads(done.stdout)
        return found[0]
    except (ValueError, IndexError, KeyError, TypeError):
        raise AuthorError(f"podman image inspect {reference}: unexpected output") from None


def image_path(config: dict) -> str:
    for item in config.get("Env") or []:
        if isinstance(item, str) and item.startswith("PATH="):
            return item[5:]
    return DEFAULT_PATH


def check(podman: Podman, image: str, config: dict) -> list[CheckResult]:
    """Every check (see the module docstring) of the image `image` (an ID)."""
    from shim import login

    results: list[CheckResult] = []
    script = "id -u; if test -w /tmp; then echo tmp=writable; else echo tmp=readonly; fi"
    done = podman.run(image, "/bin/sh", "-c", script)
    has_shell = not _no_shell(done)
    if not has_shell:
        results.append(CheckResult("shell", FAIL, f"no /bin/sh: {_last_line(done.stderr)}"))
    elif done.returncode == 125:
        raise AuthorError(f"podman run failed: {_last_line(done.stderr)}")
    else:
        results.append(CheckResult("shell", PASS, "/bin/sh exists and runs"))
    if has_shell:
        out = done.stdout.split()
        uid = out[0] if out else ""
        if done.returncode == 0 and uid == str(UID):
            results.append(
                CheckResult("arbitrary-uid", PASS, f"runs as UID {UID} (not in /etc/passwd)")
            )
        else:
            why = f"id -u printed {uid!r}" if uid else _last_line(done.stderr) or "no output"
            results.append(
                CheckResult("arbitrary-uid", FAIL, f"cannot run as UID {UID}: {why} (exit {done.returncode})")
            )  # fmt: skip
        if "tmp=writable" in out:
            results.append(CheckResult("writable-tmp", PASS, f"/tmp is writable by UID {UID}"))
        else:
            results.append(
                CheckResult("writable-tmp", FAIL, f"/tmp is not writable by UID {UID} (mode 1777 wanted)")
            )  # fmt: skip
        done = podman.run(image, "/bin/sh", "-l", "-c", "true")
        if done.returncode == 0:
            results.append(CheckResult("login-shell", PASS, f"/bin/sh -l -c true works as UID {UID}"))  # fmt: skip
        else:
            results.append(
                CheckResult(
                    "login-shell", FAIL,
                    f"/bin/sh -l -c true exits {done.returncode}: {_last_line(done.stderr) or 'no message'}",
                )
            )  # fmt: skip
    else:
        for name in ("arbitrary-uid", "writable-tmp", "login-shell"):
            results.append(CheckResult(name, SKIP, "needs /bin/sh"))

    user = str(config.get("User") or "")
    if user.strip() in ROOT_USERS:
        results.append(CheckResult("user", PASS, "no fixed USER" if not user else f"USER {user}"))
    else:
        results.append(
            CheckResult(
                "user", WARN,
                f"USER {user} is fixed: files written to shared file systems belong to it, not to "
                "the caller (a login container runs as the caller; leave USER unset)",
            )
        )  # fmt: skip

    want = image_path(config)
    if has_shell:
        done = podman.run(image, login.ENTRYPOINT_JSON, "/bin/sh", "-c", _PRINT_PATH)
        got = done.stdout.strip()
        plain = podman.run(image, "/bin/sh", "-l", "-c", _PRINT_PATH).stdout.strip()
        note = f"; a plain login shell sets {plain}" if plain and plain != want else ""
        if done.returncode == 0 and got.split(":")[: len(want.split(":"))] == want.split(":"):
            results.append(
                CheckResult(
                    "image-path",
                    PASS,
                    f"PATH {want} survives the login shell (imagefit's recipe{note})",
                )  # fmt: skip
            )
        else:
            results.append(
                CheckResult(
                    "image-path", FAIL,
                    f"the login shell (imagefit's recipe) has PATH {got or '?'}, not {want} first"
                    + (f": {_last_line(done.stderr)}" if done.returncode else ""),
                )
            )  # fmt: skip
    else:
        results.append(CheckResult("image-path", SKIP, "needs /bin/sh"))
    return results


def run(args) -> int:
    podman = Podman(args.runtime, args.podman_arg or [], args.timeout)
    info = inspect(
        podman, args.reference, pull=not args.no_pull, tls_verify=args.tls_verify,
        authfile=args.authfile,
    )  # fmt: skip
    image_id = str(info.get("Id") or "")
    if not image_id:
        raise AuthorError(f"podman image inspect {args.reference}: no image ID")
    config = info.get("Config") if isinstance(info.get("Config"), dict) else {}
    results = check(podman, image_id, config)
    passed = all(r.status == PASS for r in results)
    entrypoint = config.get("Entrypoint")
    if args.json:
        out = {
            "schema_version": 1,
            "reference": args.reference,
            "image_id": image_id,
            "platform": f"{info.get('Os', '?')}/{info.get('Architecture', '?')}",
            "checks": [asdict(r) for r in results],
            "passed": passed,
        }
        print(json.dumps(out, indent=2))
        return 0 if passed else 1
    print(
        f"image:  {args.reference} ({image_id[:12]}, {info.get('Os', '?')}/{info.get('Architecture', '?')})"
    )
    width = max(len(r.name) for r in results)
    for r in results:  # details quote the image's own config and annotations
        print(f"{r.status.upper():<4}  {r.name:<{width}}  {terminal_safe(r.detail, 2000)}")
    if entrypoint:
        print(
            f"note: ENTRYPOINT {json.dumps(entrypoint)} does not run in a login container; if the "
            "image needs it, mark its builds org.supercontainers.container.kind=application"
        )
    good = sum(r.status == PASS for r in results)
    print(f"conform: {good} of {len(results)} checks pass")
    return 0 if passed else 1
