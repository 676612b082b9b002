"""Reference parsing and normalisation as distribution/reference does it
(reference_test.go / normalize_test.go cases, restated)."""

from __future__ import annotations

import json

import pytest

from shim.errors import InvalidReference
from shim.reference import Reference, could_be_image_id, is_digest, parse

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ubuntu", Reference("docker.io", "library/ubuntu", None, None, False)),
        ("ubuntu:22.04", Reference("docker.io", "library/ubuntu", "22.04", None, False)),
        ("library/ubuntu", Reference("docker.io", "library/ubuntu", None, None, False)),
        ("docker.io/ubuntu", Reference("docker.io", "library/ubuntu", None, None, True)),
        ("index.docker.io/ubuntu:1", Reference("docker.io", "library/ubuntu", "1", None, True)),
        ("docker.io/org/app", Reference("docker.io", "org/app", None, None, True)),
        ("quay.io/org/app:v1.2", Reference("quay.io", "org/app", "v1.2", None, True)),
        ("localhost/app", Reference("localhost", "app", None, None, True)),
        ("localhost:5000/a/b:tag", Reference("localhost:5000", "a/b", "tag", None, True)),
        ("127.0.0.1:5001/app:1", Reference("127.0.0.1:5001", "app", "1", None, True)),
        ("[::1]:5000/x/y:2", Reference("[::1]:5000", "x/y", "2", None, True)),
        ("[2001:db8::1]/x", Reference("[2001:db8::1]", "x", None, None, True)),
        ("Registry.Example.ORG/app", Reference("Registry.Example.ORG", "app", None, None, True)),
        (
            "example.com",
            Reference("docker.io", "library/example.com", None, None, False),
        ),  # not a domain
        ("a.io/b__c/d-e.f:t_1", Reference("a.io", "b__c/d-e.f", "t_1", None, True)),
        (f"quay.io/a/b@{D}", Reference("quay.io", "a/b", None, D, True)),
        (f"quay.io/a/b:1@{D}", Reference("quay.io", "a/b", None, D, True)),  # the digest wins
        (f"busybox@{D}", Reference("docker.io", "library/busybox", None, D, False)),
    ],
)
def test_parse_normalises(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "", "Ubuntu", "quay.io/Org/app", "a" * 64, "quay.io/app:", "quay.io/app@sha256:abc", "quay.io//app",
        "quay.io/app:-bad", "-quay.io/app", "quay.io/app:1\n", f"quay.io/a@{D}\n", "a b", "quay.io/" + "a" * 256,
        "local_host:5000/app",
    ],
)  # fmt: skip
def test_parse_refuses(text):
    with pytest.raises(InvalidReference) as info:
        parse(text)
    assert "\n" not in str(info.value).strip()


def test_str_and_with_digest_drop_the_tag():
    ref = parse("127.0.0.1:5001/hpc/app:2024")
    assert str(ref) == "127.0.0.1:5001/hpc/app:2024"
    assert str(ref.with_digest(D)) == f"127.0.0.1:5001/hpc/app@{D}"
    assert ref.reference == "2024" and parse("quay.io/x").reference == "latest"
    assert ref.name == "127.0.0.1:5001/hpc/app"


def test_image_ids_and_digests():
    assert could_be_image_id("3f2a1b") and could_be_image_id("a" * 64) and could_be_image_id(D)
    assert (
        not could_be_image_id("ubuntu")
        and not could_be_image_id("ab")
        and not could_be_image_id("a" * 65)
    )
    assert is_digest(D) and not is_digest("sha256:xyz") and not is_digest(D + "\n")
    assert is_digest("sha512:" + "0" * 128) and not is_digest("sha384:" + "0" * 96)
    assert not is_digest("sha256:" + "A" * 64) and not is_digest("sha256:" + "a" * 32)


# distribution/reference reference_test.go ``TestReferenceParse`` (the digest
# and length cases since commit aaca75e "Exclude domain from name length
# check"), restated with our own data; the digest rules are go-digest's
# (algorithm.go: sha256 and sha512 registered by default, ``hexDigestRegex``
# ``^[a-f0-9]{size*2}$``; digest.go ``Digest.Validate``).
@pytest.mark.parametrize(
    ("text", "why"),
    [
        # "repo@sha256:ffff...(34)" -> digest.ErrDigestInvalidLength
        ("hpc/gromacs@sha256:" + "0123456789" * 3 + "abcd", "invalid checksum digest length"),
        ("hpc/gromacs@sha256:" + "e" * 63, "invalid checksum digest length"),
        ("hpc/gromacs@sha256:" + "e" * 65, "invalid checksum digest length"),
        ("hpc/gromacs@sha512:" + "e" * 64, "invalid checksum digest length"),
        # "validname@invaliddigest:ffff...(64)" -> digest.ErrDigestUnsupported
        ("hpc/gromacs@notadigest:" + "e" * 64, "unsupported digest algorithm"),
        ("hpc/gromacs@sha384:" + "e" * 96, "unsupported digest algorithm"),  # not registered
        ("hpc/gromacs@blake3:" + "e" * 64, "unsupported digest algorithm"),  # not registered
        ("hpc/gromacs@Sha256:" + "e" * 64, "unsupported digest algorithm"),
        # upper-case hex: hexDigestRegex is [a-f0-9] -> ErrDigestInvalidFormat
        ("hpc/gromacs@sha256:" + "E" * 64, "invalid checksum digest format"),
        # "domain/" + "a"*256 + ":tag" -> ErrNameTooLong (the path alone is over 255)
        ("site.example/" + "b" * 256 + ":v1", "repository path longer than 255"),
        ("site.example/" + "c/" * 127 + "cc", "repository path longer than 255"),
    ],
)
def test_digests_and_path_length_as_distribution_reference(text, why):
    with pytest.raises(InvalidReference) as info:
        parse(text)
    assert why in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "hpc/gromacs@sha256:" + "0123456789abcdef" * 4,
        "hpc/gromacs:2024@sha512:" + "fedcba9876543210" * 8,
        # "example.com/" + "a"*255 + ":tag" is valid: the domain does not count
        "registry.site.example:5000/" + "d" * 255 + ":v1",
        "registry.site.example:5000/" + "e/" * 127 + "e",  # 255 exactly
    ],
)
def test_registered_digests_and_a_255_character_path_are_accepted(text):
    ref = parse(text)
    assert str(ref).endswith(text.rpartition("@")[2] if "@" in text else text.rpartition("/")[2])


# The regular expressions of distribution/reference (reference.go), kept here as
# the oracle for the hand-written checks of shim.reference.
_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
# go-digest's default registrations (algorithm.go), hexDigestRegex each
_REGISTERED = {"sha256": r"[a-f0-9]{64}", "sha512": r"[a-f0-9]{128}"}


def _oracle(text: str):
    import re

    from shim.reference import split_domain

    if not text or (len(text) == 64 and set(text) <= set("0123456789abcdef")):
        return None
    name, at, digest = text.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    domain, rest, qualified = split_domain(name)
    if rest.lower() != rest or (qualified and not re.fullmatch(_DOMAIN, domain, re.ASCII)):
        return None
    full = (
        f"{domain}/{rest}" + (f":{tag}" if tag is not None else "") + (f"@{digest}" if at else "")
    )
    m = re.fullmatch(
        rf"(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?",
        full, re.ASCII,
    )  # fmt: skip
    if not m or len(rest) > 255:  # RepositoryNameTotalLengthMax: the path only
        return None
    if m["digest"]:
        algorithm, _, encoded = m["digest"].partition(":")
        if not re.fullmatch(_REGISTERED.get(algorithm, "(?!)"), encoded):
            return None
    return (domain, rest, None if m["digest"] else m["tag"], m["digest"], qualified)


def test_the_hand_written_grammar_agrees_with_distribution_reference_regexes():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from shim.reference import parse

    alphabet = st.sampled_from(
        list("aZ09._-/:@[]+")
        + ["__", "--", "sha256:", "sha512:", "a" * 32, "b" * 64, "localhost", "quay.io", "é"]
    )
    texts = st.lists(alphabet, max_size=14).map("".join)

    @settings(max_examples=3000, deadline=None)
    @given(texts)
    def agrees(text):
        expected = _oracle(text)
        try:
            ref = parse(text)
        except InvalidReference:
            assert expected is None, (text, expected)
            return
        assert (ref.domain, ref.path, ref.tag, ref.digest, ref.qualified) == expected, text

    agrees()


def test_the_installed_shim_leaves_an_invalid_digest_to_the_runtime(shim_bin, tmp_path):
    """Through the installed shim (dry run, fail closed): a reference whose
    digest go-digest refuses is not resolved (no request reaches the
    registry) and reaches podman untouched, which refuses it as invalid; a
    valid one is resolved (the control: the listener is contacted)."""
    import os
    import select
    import socket
    import subprocess

    site = tmp_path / "site.toml"
    site.write_text("decision_cache_ttl = 0\n")
    site.chmod(0o644)
    env = {**os.environ, "HOME": str(tmp_path), "IMAGEFIT_DRY_RUN": "1",
           "IMAGEFIT_ON_ERROR": "refuse", "IMAGEFIT_REGISTRY_TIMEOUT": "1",
           "IMAGEFIT_SITE_CONFIG": str(site), "PATH": f"{shim_bin}:{os.environ['PATH']}"}  # fmt: skip
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts in the kernel, never answers
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    try:
        for digest, resolved in (
            ("sha256:" + "0123456789" * 3 + "abcd", False),  # 34 hex digits
            ("invaliddigest:" + "e" * 64, False),
            ("sha256:" + "e" * 64, True),
        ):
            args = ["run", "--rm", "--tls-verify=false", f"{host}/hpc/app@{digest}", "true"]
            done = subprocess.run([str(shim_bin / "podman"), *args], env=env,
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
            contacted = bool(select.select([listener], [], [], 0)[0])
            if contacted:
                listener.accept()[0].close()
            assert contacted is resolved, digest
            if resolved:  # the registry never answers: refused (fail closed)
                assert done.returncode == 125 and done.stdout == ""
            else:
                assert done.returncode == 0 and done.stderr == "", done.stderr
                assert json.loads(done.stdout)[1:] == args
    finally:
        listener.close()
