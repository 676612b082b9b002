"""Image references, parsed and normalised as distribution/reference does.

Grammar: distribution/reference reference.go (``reference := name [":" tag]
["@" digest]``, ``name := [domain "/"] path``, ``domain := host [":" port]``,
host a DNS name, IPv4 or ``[IPv6]``). Normalisation: normalize.go
``ParseNormalizedNamed`` / ``splitDockerDomain``: the first component is a
domain when it contains ``.`` or ``:``, is ``localhost``, or has upper case;
else the domain is ``docker.io``; ``index.docker.io`` is ``docker.io``; a
one-component docker.io path gets ``library/``. A 64-hex name is an image ID,
never a repository. When both a tag and a digest are given the digest wins
(``ParseDockerRef``; podman's libimage does the same).

Standard library only, and cheap to import: the shim reads every image
operand with it, so the regular expressions compile only when a qualified
name must be validated, and the value class is a plain class.
"""

from __future__ import annotations

from shim.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
NAME_TOTAL_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE = (
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_HEX = frozenset("0123456789abcdef")


def _match(pattern: str, text: str):
    import re

    return re.fullmatch(pattern, text)  # not re.match: "$" also matches before a final newline


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
        InvalidReference: empty, an image ID, upper case in the path, a name
            over 255 characters, or anything else the grammar refuses.
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
    if qualified and not _match(rf"^{_DOMAIN}$", domain):
        raise InvalidReference(f"{text!r}: invalid registry domain {domain!r}")
    full = (
        f"{domain}/{remainder}"
        + (f":{tag}" if tag is not None else "")
        + (f"@{digest}" if at else "")
    )
    match = _match(_REFERENCE, full)
    if not match:
        raise InvalidReference(f"{text!r} is not a valid image reference")
    if len(match["name"]) > NAME_TOTAL_MAX:
        raise InvalidReference(f"{text!r}: repository name longer than {NAME_TOTAL_MAX} characters")
    digest_value = match["digest"]
    return Reference(
        domain=domain,
        path=remainder,
        tag=None if digest_value else match["tag"],
        digest=digest_value,
        qualified=qualified,
    )


def is_digest(text: str) -> bool:
    """True for a bare ``algorithm:hex`` digest."""
    return bool(_match(rf"^{_DIGEST}$", text))


def could_be_image_id(text: str) -> bool:
    """True for a string a runtime may take as a (possibly short) local image
    ID rather than a name: 3 to 64 lower-case hex digits, or ``sha256:<hex>``."""
    if text.startswith("sha256:"):
        text = text[7:]
    return 3 <= len(text) <= 64 and set(text) <= _HEX
