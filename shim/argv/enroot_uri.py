"""enroot's ``docker://`` URI: read it as enroot does, write a pinned one.

Grammar: NVIDIA/enroot ``src/docker.sh`` ``docker::_parse_uri`` (enroot 4.0
to 4.1, commits f29a45c "Improve handling of docker-style URI" and f380b11
"Accept the IMAGE:TAG@DIGEST format"), nine anchored bash regexes tried in
order, the first that matches wins::

    docker://[USER@]REGISTRY/IMAGE[:TAG]            (also :TAG@DIGEST, @DIGEST)
    docker://[USER@]NAMESPACE/IMAGE[:TAG]           first part without . or :
    docker://[USER@]IMAGE[:TAG]                     Docker Hub, library/IMAGE
    docker://[USER@]REGISTRY#IMAGE[:TAG]            enroot's own (also @DIGEST...)

with USER ``[[:alnum:]_.!~*'()%;:&=+$,-@]+``, IMAGE ``[[:lower:][:digit:]/._-]+``,
TAG ``[[:alnum:]._:-]+`` and DIGEST ``sha256:[[:alnum:]]+``. A first part
with a ``.`` or ``:`` before a ``/`` is the registry, otherwise it is a
Docker Hub namespace; with ``TAG@DIGEST`` the tag is ignored; no tag means
``latest``; ``docker.io``, ``index.docker.io`` and ``registry-1.docker.io``
are all ``registry-1.docker.io`` (commit fe9e15d) with ``library/`` before
a one-component image. enroot 3.x (3.1 to 3.5) reads only
``docker://[USER@][REGISTRY#]IMAGE[:TAG]`` (``REGISTRY#`` absent: Docker
Hub), so ``nvcr.io/nvidia/x`` is a Docker Hub name there (one Docker Hub
refuses); the shim reads every URI as enroot 4 does.

Digests: enroot sends the "tag" as it is to ``/v2/IMAGE/manifests/TAG``
(``docker::_download``), and TAG may contain ``:``, so every enroot release
from 3.1 on fetches ``IMAGE:sha256:HEX`` by digest; ``IMAGE@sha256:HEX``
exists only from 4.0. The pinned URI therefore keeps the user's spelling
up to the image and puts ``:sha256:HEX`` after it, the one digest spelling
all releases pyxis supports (>= 3.1.0, pyxis README) read the same way.

Standard library only (``re`` is compiled only when an enroot URI is read).
"""

from __future__ import annotations

import re

PREFIX = "docker://"
HUB = "registry-1.docker.io"
_HUB_ALIASES = ("docker.io", "index.docker.io", HUB)

_U = r"[A-Za-z0-9_.!~*'()%;:&=+$,\-./<>?@]+"  # ",-@" is a range: , - . / 0-9 : ; < = > ? @
_I = r"[a-z0-9/._-]+"
_T = r"[A-Za-z0-9._:-]+"
_D = r"sha256:[A-Za-z0-9]+"
_USER = rf"^docker://(?:(?P<user>{_U})@)?"

#: docker::_parse_uri's regexes, in its order: (pattern, form). The form says
#: what the first group is: "slash" (registry if it has . or :, else a Docker
#: Hub namespace), "hub" (a Docker Hub image), "hash" (the registry).
_FORMS = (
    (rf"(?P<first>[^/#]+)/(?P<image>{_I}):(?P<tag>{_T})@(?P<digest>{_D})$", "slash"),
    (rf"(?P<first>[^/#]+)/(?P<image>{_I})@(?P<digest>{_D})$", "slash"),
    (rf"(?P<first>[^/#]+)/(?P<image>{_I})(?::(?P<tag>{_T}))?$", "slash"),
    (rf"(?P<image>[^/@#:]+):(?P<tag>{_T})@(?P<digest>{_D})$", "hub"),
    (rf"(?P<image>[^/@#:]+)@(?P<digest>{_D})$", "hub"),
    (rf"(?P<image>[^/@#:]+)(?::(?P<tag>{_T}))?$", "hub"),
    (rf"(?P<first>[^#/@]+)#(?P<image>{_I}):(?P<tag>{_T})@(?P<digest>{_D})$", "hash"),
    (rf"(?P<first>[^#/@]+)#(?P<image>{_I})@(?P<digest>{_D})$", "hash"),
    (rf"(?P<first>[^#/@]+)#(?P<image>{_I})(?::(?P<tag>{_T}))?$", "hash"),
)
_COMPILED: list = []


class EnrootURI:
    """One ``docker://`` URI as enroot reads it.

    Attributes:
        user: the ``USER@`` part, or "" (enroot may still take one from its
            credentials file: :func:`shim.personality.enroot.netrc_login`).
        registry: the registry host[:port] enroot contacts
            (``registry-1.docker.io`` for Docker Hub).
        image: the repository path (``library/ubuntu``, ``nvidia/pytorch``).
        tag: what enroot asks ``/v2/IMAGE/manifests/`` for: the digest when
            one was given, else the tag, ``latest`` by default.
        head: the URI as written up to the end of the image (``docker://``,
            ``USER@``, registry and separator included): a pinned URI is
            ``head + ":" + digest``.
    """

    __slots__ = ("user", "registry", "image", "tag", "head")

    def __init__(self, user: str, registry: str, image: str, tag: str, head: str) -> None:
        self.user = user
        self.registry = registry
        self.image = image
        self.tag = tag
        self.head = head

    def __repr__(self) -> str:
        return (
            f"EnrootURI(user={self.user!r}, registry={self.registry!r}, image={self.image!r}, "
            f"tag={self.tag!r}, head={self.head!r})"
        )

    def pinned(self, digest: str) -> str:
        """The URI pinned to manifest `digest` (``sha256:HEX``) in the
        spelling every enroot release reads: ``head:sha256:HEX``."""
        return f"{self.head}:{digest}"

    def default_name(self) -> str:
        """The name enroot derives from this URI when ``import`` has no
        ``--output`` (``+ ".sqsh"``) or ``load`` no ``--name``: the image
        without Docker Hub's ``library/``, ``/`` as ``+``, then ``+TAG``
        (``docker::import``/``docker::load``, enroot 4: ``ubuntu+22.04``,
        ``nvidia+pytorch+24.05``)."""
        image = self.image
        if self.registry == HUB and image.startswith("library/"):
            image = image[len("library/") :]
        return image.replace("/", "+") + (f"+{self.tag}" if self.tag else "")


def parse(uri: str) -> EnrootURI | None:
    """The URI as ``docker::_parse_uri`` reads it, or None when enroot
    refuses it ("Invalid image reference") or it is not ``docker://``."""
    if not uri.startswith(PREFIX):
        return None
    if not _COMPILED:
        _COMPILED.extend((re.compile(_USER + p), form) for p, form in _FORMS)
    for pattern, form in _COMPILED:
        m = pattern.fullmatch(uri)  # bash's $ is the end: never before a final newline
        if m is None:
            continue
        user = m.group("user") or ""
        image = m.group("image")
        if form == "hub":
            registry, image = HUB, "library/" + image
        elif form == "slash" and not any(c in m.group("first") for c in ".:"):
            registry, image = HUB, m.group("first") + "/" + image
        else:
            registry = m.group("first")
        found = m.groupdict()
        tag = found.get("digest") or found.get("tag") or "latest"
        if registry in _HUB_ALIASES:
            registry = HUB
            if "/" not in image:
                image = "library/" + image
        return EnrootURI(user, registry, image, tag, uri[: m.end("image")])
    return None
