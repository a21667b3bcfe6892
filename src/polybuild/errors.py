"""The one exception tree of polybuild; every error a user can see derives from PolybuildError.

    PolybuildError                 any failure polybuild reports (message + optional hint)
    ├── UsageError                 bad flags or arguments on the command line
    ├── PlatformError              a platform specifier that cannot be parsed
    ├── PrivilegeError             the operation needs root (or a capability) it does not have
    ├── EmulationError             binfmt_misc / QEMU set-up or detection failed
    ├── DockerfileError            a Dockerfile that cannot be parsed or converted (has a Location)
    ├── ContentError               the content store refused or lost a blob
    │   ├── DigestMismatchError    bytes do not match the digest they claim
    │   └── BlobNotFoundError      no blob with that digest in the store
    ├── ImageError                 an image, manifest, index or layout is invalid
    │   ├── InvalidReferenceError  an image reference that cannot be parsed
    │   └── ImageNotFoundError     no image by that name or digest
    ├── ExecutionError             a container process could not be run or failed
    └── RegistryError              a registry answered with an error or could not be reached
        └── AuthenticationError    the registry refused our credentials

Foreign exceptions (OSError, httpx errors, msgspec errors) are mapped to these where they
cross into polybuild's code, so the CLI only ever has to render a PolybuildError.
"""

from __future__ import annotations


class PolybuildError(Exception):
    """Root of every error polybuild reports; `hint` says what the user can do about it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(PolybuildError):
    """Bad command-line flags or arguments."""


class PlatformError(PolybuildError):
    """A platform specifier that cannot be parsed or is not known."""


class PrivilegeError(PolybuildError):
    """The operation needs root privileges or a kernel feature that is not available."""


class EmulationError(PolybuildError):
    """binfmt_misc or QEMU user emulation could not be set up or queried."""


class DockerfileError(PolybuildError):
    """A Dockerfile problem; `filename` and `line` locate it (line 0 when unknown)."""

    def __init__(
        self,
        message: str,
        *,
        line: int = 0,
        end_line: int | None = None,
        filename: str = "Dockerfile",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.line = line
        self.end_line = end_line if end_line is not None else line
        self.filename = filename

    def __str__(self) -> str:
        if self.line:
            return f"{self.filename}:{self.line}: {self.message}"
        return f"{self.filename}: {self.message}"


class ContentError(PolybuildError):
    """The content store refused or could not find a blob."""


class DigestMismatchError(ContentError):
    """Bytes do not hash to the digest they were given under."""


class BlobNotFoundError(ContentError):
    """No blob with the requested digest exists in the store."""


class ImageError(PolybuildError):
    """An image, manifest, index, config or image layout is invalid."""


class InvalidReferenceError(ImageError):
    """An image reference that cannot be parsed."""


class ImageNotFoundError(ImageError):
    """No image with that name or digest."""


class ExecutionError(PolybuildError):
    """A container process could not be started, or it failed."""


class RegistryError(PolybuildError):
    """A registry answered with an error or could not be reached."""


class AuthenticationError(RegistryError):
    """The registry refused the credentials (or asked for some we do not have)."""


__all__ = [
    "AuthenticationError",
    "BlobNotFoundError",
    "ContentError",
    "DigestMismatchError",
    "DockerfileError",
    "EmulationError",
    "ExecutionError",
    "ImageError",
    "ImageNotFoundError",
    "InvalidReferenceError",
    "PlatformError",
    "PolybuildError",
    "PrivilegeError",
    "RegistryError",
    "UsageError",
]
