"""One stand-in for the registry and scoring (:func:`shim.resolve.fetch` and
:func:`shim.resolve.decide`) for the argv tests of every runtime: it records
what it was asked and answers with a fixed decision, so a test asserts the
exact final argv without a registry."""

from __future__ import annotations

from pathlib import Path

import archspec

import hostfacts
import scoring
import shim.choice
import shim.resolve

#: the digest every fake selection pins, and the fake index digest
D = "sha256:" + "d" * 64
U = "sha256:" + "c" * 64


class FakeResolver:
    """Records each call (``asked``: the references; ``calls``: insecure,
    timeout, authfile, credentials, platform; ``requested``: the requested
    platform) and answers ``outcome`` (SELECTED pins D with ``annotations``),
    or raises ``error``."""

    def __init__(self) -> None:
        self.cmd: list[str] | None = None  # the chosen build's Cmd (Context.image_cmd)
        self.asked: list[str] = []
        self.calls: list[dict] = []
        self.requested: list = []
        self.outcome = scoring.Outcome.SELECTED
        self.annotations: dict[str, str] = {}
        self.error: Exception | None = None

    def fetch(self, ref, *, environ, insecure, timeout, authfile=None, credentials=None,
              nfd_artifacts=True, tls_verify=None):  # fmt: skip
        """Stands for :func:`shim.resolve.fetch`: records the request."""
        self.asked.append(str(ref))
        self.calls.append({"insecure": insecure, "timeout": timeout, "authfile": authfile,
                           "credentials": credentials, "platform": None})  # fmt: skip
        if self.error is not None:
            raise self.error
        return shim.resolve.IndexData(ref, U, (), {}, 1)

    def decide(self, data, facts, policy=None, requested_platform=None, visible=None):
        """Stands for :func:`shim.resolve.decide`: the fixed decision.
        `visible`: the environment the visible-GPU variables are read from."""
        assert isinstance(facts, hostfacts.HostFacts)
        assert visible is not None  # the command's environment, always passed
        self.requested.append(requested_platform)
        self.calls[-1]["platform"] = requested_platform
        if self.outcome == scoring.Outcome.SELECTED:
            chosen = scoring.Candidate(
                position=0,
                digest=D,
                media_type="application/vnd.oci.image.manifest.v1+json",
                size=1234,
                annotations=dict(self.annotations),
            )
            return scoring.Decision(
                outcome=self.outcome, reason="zen4 build fits best", chosen=chosen
            )
        return scoring.Decision(outcome=self.outcome, reason="fake " + str(self.outcome))


def zen4_host() -> hostfacts.HostFacts:
    """A zen4 host's facts, from archspec's real /proc/cpuinfo dump."""
    dump = Path(archspec.__file__).parent / "json" / "tests" / "targets" / "linux-rocky8.5-zen4"
    return hostfacts.facts_from_cpuinfo(dump, "x86_64")


def install(monkeypatch, facts: hostfacts.HostFacts, *, amd64_user: bool = True) -> FakeResolver:
    """Put a FakeResolver in place of shim.resolve.fetch/decide and `facts` in place
    of the host's; with `amd64_user`, also pretend to be a non-root user
    (uid 1000) on an x86_64 machine, as the facts say. Returns the resolver."""
    import os

    resolver = FakeResolver()
    monkeypatch.setattr(shim.resolve, "fetch", resolver.fetch)
    monkeypatch.setattr(shim.resolve, "decide", resolver.decide)
    # the image's Cmd (asked only for a login run with no command and no TTY): none known
    monkeypatch.setattr(shim.choice.Context, "image_cmd", lambda *_a, **_k: resolver.cmd)
    monkeypatch.setattr(hostfacts, "host_facts", lambda environ=None, **kw: facts)
    if amd64_user:
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
        real_uname = os.uname()
        monkeypatch.setattr(os, "uname", lambda: type(real_uname)((*real_uname[:4], "x86_64")))
    return resolver
