"""Image references, parsed and normalised as distribution/reference does.

Grammar: distribution/reference reference.go (``reference := name [":" tag]
["@" digest]``, ``name := [domain "/"] path``, ``domain := host [":" port]``,
host a DNS name, IPv4 or ``[IPv6]``). Normalisation: normalize.go
``ParseNormalizedNamed`` / ``splitDockerDomain``: the first component is a
domain when it contains ``.`` or ``:``, is ``localhost``, or has upper case;
else the domain is ``docker.io``; ``index.docker.io`` is ``docker.io``; a
one-component docker.io path gets ``library/``. A 64-hex name is an image ID,
never a repository. When both a tag and a digest are given the digest wins
(``ParseDockerRef``; podman's libimage does the same). A digest is one that
opencontainers/go-digest validates with its default algorithms (sha256: 64,
sha512: 128 lower-case hex digits); the 255-character limit is on the path,
the domain excluded (reference.go ``RepositoryNameTotalLengthMax``).

Standard library only, and cheap: the shim reads every image operand with
it, so the grammar is checked by hand (no regular expressions) and the value
class is a plain class.
"""

from __future__ import annotations

from shim.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
#: reference.go ``RepositoryNameTotalLengthMax``: the path's length, the
#: domain excluded (distribution/reference commit aaca75e, "Exclude domain
#: from name length check", 2024-02).
NAME_TOTAL_MAX = 255

_HEX = frozenset("0123456789abcdef")
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM = _LOWER_ALNUM | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WORD = _ALNUM | {"_"}
_ANY_HEX = _HEX | frozenset("ABCDEF")

# The grammar of distribution/reference reference.go, checked by hand rather
# than with regular expressions: importing ``re`` costs the shim's hot path
# ~5 ms (re, enum, functools), and every command's image operand is read.


def _path_component(text: str) -> bool:
    """``[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*``"""
    if not text or text[0] not in _LOWER_ALNUM or text[-1] not in _LOWER_ALNUM:
        return False
    i, n = 0, len(text)
    while i < n:
        if text[i] in _LOWER_ALNUM:
            i += 1
            continue
        j = i
        while j < n and text[j] not in _LOWER_ALNUM:
            j += 1
        sep = text[i:j]
        if not (sep in (".", "_", "__") or set(sep) == {"-"}):
            return False
        i = j
    return True


def _domain_component(text: str) -> bool:
    """``[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]``"""
    return bool(text) and text[0] in _ALNUM and text[-1] in _ALNUM and set(text) <= _ALNUM | {"-"}


def valid_domain(domain: str) -> bool:
    """``host[:port]``: a DNS name, IPv4 or ``[IPv6]``, optional numeric port."""
    host, port = domain, ""
    if domain.startswith("["):
        end = domain.find("]")
        if end < 0:
            return False
        host, rest = domain[: end + 1], domain[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                return False
            port = rest[1:]
            if not port:
                return False
        inner = host[1:-1]
        if not inner or not set(inner) <= _ANY_HEX | {":"}:
            return False
    else:
        if ":" in domain:
            host, port = domain.rsplit(":", 1)
            if not port:
                return False
        if not all(_domain_component(c) for c in host.split(".")):
            return False
    return not port or port.isascii() and port.isdigit()


def _valid_tag(tag: str) -> bool:
    r"""``[\w][\w.-]{0,127}``"""
    return 0 < len(tag) <= 128 and tag[0] in _WORD and set(tag) <= _WORD | {".", "-"}


#: The algorithms opencontainers/go-digest registers by default (algorithm.go
#: ``init``: ``RegisterAlgorithm(SHA256, ...)``, ``RegisterAlgorithm(SHA512,
#: ...)``; SHA-384 and BLAKE3 are registered only on request), with the length
#: of their encoded part: the hash size in bytes times two, lower-case hex
#: only (``hexDigestRegex``: ``^[a-f0-9]{size*2}$``).
DIGEST_ALGORITHMS = {"sha256": 64, "sha512": 128}


def _digest_error(digest: str) -> str | None:
    """Why `digest` is not a digest that go-digest's ``Digest.Validate``
    (digest.go) accepts, as one phrase, or None.

    Its errors, which distribution/reference reference.go ``Parse`` returns
    for the ``@digest`` part: nothing after ``:`` is ``ErrDigestInvalidFormat``;
    an algorithm that is not registered is ``ErrDigestUnsupported``; a
    registered one takes exactly its own length (``ErrDigestInvalidLength``)
    of lower-case hex (``ErrDigestInvalidFormat``)."""
    algorithm, colon, encoded = digest.partition(":")
    if not colon or not encoded:
        return "invalid checksum digest format"
    length = DIGEST_ALGORITHMS.get(algorithm)
    if length is None:
        return f"unsupported digest algorithm {algorithm[:32]!r}"
    if len(encoded) != length:
        return f"invalid checksum digest length ({algorithm} takes {length} hex digits)"
    if not set(encoded) <= _HEX:
        return "invalid checksum digest format (lower-case hex only)"
    return None


def _valid_digest(digest: str) -> bool:
    """A registered ``algorithm:hex`` digest (:func:`_digest_error`)."""
    return _digest_error(digest) is None


class Reference:
    """A normalised registry reference.

    Attributes:
        domain: registry host[:port], e.g. ``docker.io``, ``127.0.0.1:5001``, ``[::1]:5000``.
        path: repository path, e.g. ``library/ubuntu``.
        tag: tag, or None (also None when a digest was given with it).
        digest: ``algorithm:hex``, or None.
        qualified: True when the input named its domain (``quay.io/x``), False
            for a short name (``ubuntu``) that a runtime may resolve through
            search registries rather than docker.io.
    """

    __slots__ = ("domain", "path", "tag", "digest", "qualified")

    def __init__(
        self,
        domain: str,
        path: str,
        tag: str | None = None,
        digest: str | None = None,
        qualified: bool = True,
    ) -> None:
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest
        self.qualified = qualified

    def _key(self) -> tuple:
        return (self.domain, self.path, self.tag, self.digest, self.qualified)

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, Reference) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Reference(domain={self.domain!r}, path={self.path!r}, tag={self.tag!r}, "
            f"digest={self.digest!r}, qualified={self.qualified!r})"
        )

    @property
    def name(self) -> str:
        """``domain/path``: the repository, fully qualified."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to `digest`, with no tag (several runtimes
        refuse tag and digest together)."""
        return Reference(self.domain, self.path, None, digest, self.qualified)

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest if any, else the tag (``latest`` by default)."""
        return self.digest or self.tag or "latest"


def split_domain(name: str) -> tuple[str, str, bool]:
    """``splitDockerDomain``: (domain, remainder, qualified) of a name without tag/digest."""
    first, slash, rest = name.partition("/")
    if not slash or (
        "." not in first and ":" not in first and first != "localhost" and first.lower() == first
    ):
        domain, remainder, qualified = DEFAULT_DOMAIN, name, False
    else:
        domain, remainder, qualified = first, rest, True
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = f"library/{remainder}"
    return domain, remainder, qualified


def parse(text: str) -> Reference:
    """Parse and normalise an image reference (``ParseNormalizedNamed``).

    Args:
        text: ``[domain/]path[:tag][@digest]``.

    Returns:
        The normalised Reference.

    Raises:
        InvalidReference: empty, an image ID, upper case in the path, a path
            (the domain excluded) over 255 characters, a digest that
            go-digest's ``Digest.Validate`` refuses (an algorithm other than
            sha256/sha512, a length not the algorithm's own, upper-case hex),
            or anything else the grammar refuses.
    """
    if not text:
        raise InvalidReference("empty image reference")
    if len(text) == 64 and set(text) <= _HEX:
        raise InvalidReference(f"{text!r} is an image ID, not a repository name")
    name_part, at, digest = text.partition("@")
    # the tag is after the last ':' that follows the last '/'
    slash = name_part.rfind("/")
    colon = name_part.rfind(":")
    tag = None
    if colon > slash:
        name_part, tag = name_part[:colon], name_part[colon + 1 :]
    domain, remainder, qualified = split_domain(name_part)
    if remainder.lower() != remainder:
        raise InvalidReference(f"{text!r}: repository name must be lowercase")
    if qualified and not valid_domain(domain):
        raise InvalidReference(f"{text!r}: invalid registry domain {domain!r}")
    if not all(_path_component(c) for c in remainder.split("/")):
        raise InvalidReference(f"{text!r} is not a valid image reference")
    if tag is not None and not _valid_tag(tag):
        raise InvalidReference(f"{text!r} is not a valid image reference")
    if at:
        why = _digest_error(digest)
        if why:
            raise InvalidReference(f"{text!r}: {why}")
    if len(remainder) > NAME_TOTAL_MAX:  # the path only: reference.go since aaca75e (2024)
        raise InvalidReference(f"{text!r}: repository path longer than {NAME_TOTAL_MAX} characters")
    return Reference(
        domain=domain,
        path=remainder,
        tag=None if at else tag,
        digest=digest if at else None,
        qualified=qualified,
    )


def is_digest(text: str) -> bool:
    """True for a bare digest that go-digest validates: ``sha256:`` and 64, or
    ``sha512:`` and 128, lower-case hex digits (:data:`DIGEST_ALGORITHMS`)."""
    return _valid_digest(text)


def could_be_image_id(text: str) -> bool:
    """True for a string a runtime may take as a (possibly short) local image
    ID rather than a name: 3 to 64 lower-case hex digits, or ``sha256:<hex>``."""
    if text.startswith("sha256:"):
        text = text[7:]
    return 3 <= len(text) <= 64 and set(text) <= _HEX
