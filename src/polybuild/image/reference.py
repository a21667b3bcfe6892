"""Image references (`[host[:port]/]path[:tag][@digest]`): the distribution grammar, Docker's
normalisation (`busybox` -> `docker.io/library/busybox:latest`) and familiar names."""

from __future__ import annotations

import re
from dataclasses import dataclass

from polybuild.errors import InvalidReferenceError
from polybuild.image.digest import Digest, InvalidDigestError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

# distribution/reference's regexp.go, written out.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:({_DOMAIN})/)?({_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
_REFERENCE = re.compile(rf"^{_NAME}(?::({_TAG}))?(?:@({_DIGEST}))?$", re.ASCII)
_TAG_ONLY = re.compile(rf"^{_TAG}$", re.ASCII)
_DOMAIN_ONLY = re.compile(rf"^{_DOMAIN}$", re.ASCII)
_IDENTIFIER = re.compile(r"^[a-f0-9]{64}$")

_HINT = "references look like NAME[:TAG][@DIGEST], for example busybox:1.36 or ghcr.io/org/app"


@dataclass(frozen=True, slots=True)
class Reference:
    """A normalised reference: registry domain, repository path, and optional tag and digest."""

    domain: str
    path: str
    tag: str = ""
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """`domain/path`, the repository without tag or digest."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def familiar_name(self) -> str:
        """The repository as Docker shows it: `busybox`, `user/app`, `ghcr.io/org/app`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_REPO_PREFIX) and path.count("/") == 1:
            path = path[len(OFFICIAL_REPO_PREFIX) :]
        return path

    def familiar(self) -> str:
        """The whole reference as Docker shows it (`busybox:latest`)."""
        text = self.familiar_name
        if self.tag:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_ONLY.match(tag):
            raise InvalidReferenceError(f"invalid tag {tag!r}", hint=_HINT)
        return Reference(self.domain, self.path, tag, self.digest)

    def with_digest(self, digest: Digest | None) -> Reference:
        return Reference(self.domain, self.path, self.tag, digest)

    def repository(self) -> Reference:
        """Only the name: no tag, no digest."""
        return Reference(self.domain, self.path)


def _split_domain(text: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: the first component is a registry only if it looks like one."""
    first, sep, rest = text.partition("/")
    if not sep or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, text
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise a reference as Docker does.

    `busybox` -> docker.io/library/busybox:latest (the `latest` tag only when neither a tag
    nor a digest is given and `default_tag` is true). Raises InvalidReferenceError.
    """
    if not text:
        raise InvalidReferenceError("invalid reference: it is empty", hint=_HINT)
    if _IDENTIFIER.match(text):
        raise InvalidReferenceError(
            f"invalid repository name ({text}): cannot specify 64-byte hexadecimal strings",
            hint="to refer to an image by its ID, write sha256:<hex>",
        )
    domain, remainder = _split_domain(text)
    remote = remainder.split("@", 1)[0].split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidReferenceError(
            f"invalid reference {text!r}: repository name ({remote}) must be lowercase",
            hint=_HINT,
        )
    match = _REFERENCE.match(f"{domain}/{remainder}")
    if match is None:
        raise InvalidReferenceError(f"invalid reference format: {text!r}", hint=_HINT)
    _, path, tag, digest_text = match.groups()
    name = f"{domain}/{path}"
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(
            f"invalid reference {text!r}: repository name is longer than "
            f"{NAME_TOTAL_LENGTH_MAX} characters",
            hint=_HINT,
        )
    digest = None
    if digest_text:
        try:
            digest = Digest.parse(digest_text)
        except InvalidDigestError as exc:
            raise InvalidReferenceError(f"invalid reference {text!r}: {exc}", hint=_HINT) from None
    if default_tag and not tag and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag or "", digest)


def is_valid_tag(tag: str) -> bool:
    """True for a tag the grammar allows (`[\\w][\\w.-]{0,127}`)."""
    return _TAG_ONLY.match(tag) is not None


def is_domain(text: str) -> bool:
    """True for `host[:port]` as the grammar allows it."""
    return _DOMAIN_ONLY.match(text) is not None
