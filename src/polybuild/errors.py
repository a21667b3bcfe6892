"""The one exception tree of polybuild; every error a user can see derives from PolybuildError.

Each class with the exit code `polybuild` ends with when it stops a command (the table in
cli/exit_codes.py) and the modules under polybuild/ that raise it. `polybuild build` exits 1
for every error but a usage error (2) and Ctrl-C (130), as buildx does, unless
POLYBUILD_EXIT_CODES=detailed.

    class                                 exit  meaning; raised in
    PolybuildError                        1     any failure polybuild reports (message + hint);
    │                                           as is: runtime, solver/cache, solver/scheduler,
    │                                           cli/check, cli/builders, builders/model,
    │                                           history/store, insight/factors,
    │                                           insight/report_file, qemu_bench
    ├── UsageError                        2     bad flags, arguments or options; cli/*,
    │                                           imagebuild/request, imagebuild/pipeline,
    │                                           exporters/*, progress, registry/config,
    │                                           registry/push_plan, binfmt/installer,
    │                                           builders/*, imagetools/*, buildkit/address,
    │                                           executor/cdi (a device not granted),
    │                                           insight/report_file
    ├── PlatformError                     2     a platform specifier that cannot be parsed;
    │                                           platforms/specifier
    ├── PrivilegeError                    4     needs root (or a capability) it does not have;
    │                                           dataroot, binfmt/handlers, binfmt/installer
    ├── EmulationError                    5     binfmt_misc / QEMU set-up or detection failed;
    │                                           binfmt/handlers, binfmt/installer,
    │                                           executor/emulation
    ├── DockerfileError                   6     a Dockerfile that cannot be parsed or converted
    │                                           (has a location); dockerfile/*, solver/scheduler
    ├── ContentError                      7     the content store refused or lost a blob;
    │   │                                       image/content, registry/upload
    │   ├── DigestMismatchError           7     bytes do not match the digest they claim;
    │   │                                       image/content, image/layout_tar, layers/unpack,
    │   │                                       exporters/recompress
    │   ├── BlobNotFoundError             7     no blob with that digest in the store;
    │   │                                       image/content
    │   └── CacheBlobError                7     an imported cache's layer cannot be fetched or
    │                                           fails its digest (the step runs instead);
    │                                           cache/imported
    ├── ImageError                        9     an image, manifest, index, config or layout is
    │   │                                       invalid; image/*, layers/unpack, exporters/*,
    │   │                                       registry/client, registry/push_plan,
    │   │                                       imagetools/create, runtime, cli/import_
    │   ├── InvalidReferenceError         2     an image reference that cannot be parsed;
    │   │                                       image/reference, image/store
    │   ├── InvalidDigestError            9     a string that is not a valid digest;
    │   │                                       image/digest
    │   ├── ImageNotFoundError            8     no image by that name or digest; image/select,
    │   │   │                                   image/store, registry/http
    │   │   └── NoMatchingPlatformError   8     the image has no manifest for the platform;
    │   │                                       image/select, imagebuild/baseimages,
    │   │                                       registry/transfer
    │   ├── CompressionError              9     a layer cannot be (de)compressed, or the
    │   │                                       compression option is unsupported;
    │   │                                       layers/compress
    │   ├── LayerWriteError               9     a layer tar cannot be written from a directory;
    │   │                                       layers/tarwriter
    │   └── UnpackError                   9     a layer entry cannot be applied safely (names
    │                                           the entry); layers/unpack, layers/apply,
    │                                           layers/whiteout, layers/filedata
    ├── ExecutionError                    10    a container process could not be run or failed;
    │   │                                       executor/runc, executor/network, executor/user,
    │   │                                       executor/cdi (a CDI spec that cannot be
    │   │                                       read), snapshot/snapshotter, solver/execop
    │   ├── FileOpError                   10    COPY, ADD or WORKDIR failed (names the
    │   │                                       instruction); fileops/*
    │   └── StepFailedError               10    a RUN step exited non-zero; solver/execop,
    │       │                                   remote/session (an ssh node's),
    │       │                                   imagebuild/buildkit_driver (a daemon's)
    │       └── SolveFailedError          10    a BuildKit daemon's solve failed otherwise
    │                                           (its frontend refused the Dockerfile, a
    │                                           base could not be pulled...), reported as
    │                                           buildx reports it; imagebuild/buildkit_driver
    ├── RegistryError                     12    a registry answered with an error or could not
    │   │                                       be reached; registry/*
    │   ├── AuthenticationError           11    the registry refused our credentials;
    │   │                                       registry/auth, registry/origin,
    │   │                                       registry/credentials, registry/http
    │   └── BlobUnknownError              12    the registry has no such blob (in that
    │                                           repository); registry/http
    ├── BuilderNotFoundError              1     no saved builder by that name; builders/model,
    │                                           builders/edit
    ├── NoNodeForPlatformError            1     no node of the builder can build a requested
    │                                           platform; builders/resolve
    ├── RootfsPathError                   1     a path inside a root filesystem cannot be
    │                                           resolved (a symlink loop); rootfs
    ├── NotReproducibleError              14    --check-reproducible: two builds of a platform
    │                                           differ (the message says where);
    │                                           imagebuild/reproducible
    ├── RemoteError                       13    the remote protocol failed: a peer sent an
    │   │                                       oversized, truncated or undecodable frame or
    │   │                                       an unexpected message, or a build failed on
    │   │                                       a node; remote/frames, remote/messages,
    │   │                                       remote/server, remote/session,
    │   │                                       remote/contextcache, remote/node_images,
    │   │                                       remote/node_solve, imagebuild/remote_node,
    │   │                                       buildkit/client (the daemon's own failures),
    │   │                                       buildkit/fsutil_send, buildkit/fsutil_walk,
    │   │                                       buildkit/fsutil_filter,
    │   │                                       imagebuild/buildkit_driver
    │   └── NodeUnreachableError          13    a builder node cannot be used (names the
    │                                           endpoint and the reason): ssh failed, no
    │                                           answer in time, another protocol version,
    │                                           the link broke mid-build, a BuildKit daemon
    │                                           unreachable or TLS refused; remote/client,
    │                                           remote/process, remote/ssh, remote/session,
    │                                           imagebuild/remote_driver, buildkit/client,
    │                                           imagebuild/buildkit_driver
    ├── FixtureError                      1     a test fixture (the busybox package) is missing,
    │                                           corrupt or cannot be fetched; testing/busybox
    ├── TemplateError                     1     a Go text/template (imagetools inspect --format)
    │                                           that cannot be parsed or executed (names the
    │                                           template and position, as Go); imagetools/*,
    │                                           cli/go_format (ls, du, history ls --format)
    ├── DockerEngineError                 1     a Docker Engine that was found cannot be reached
    │                                           or refused to load the image (names the
    │                                           engine's address); exporters/docker_engine
    └── ContextError                      1     a CONTEXT that is `-`, a git or HTTP(S) URL
                                                cannot be read, fetched or extracted (names
                                                the argument and what failed: git's words,
                                                the HTTP status, the archive entry);
                                                imagebuild/context_*

Foreign exceptions (OSError, httpx errors, msgspec errors) are mapped to these where they
cross into polybuild's code, so the CLI only ever has to render a PolybuildError; anything
else ends the command with exit code 1 as an internal error.
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


class CacheBlobError(ContentError):
    """A layer of an imported build cache cannot be fetched, or fails its digest; `blob`
    is its digest."""

    def __init__(self, message: str, *, blob: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.blob = blob


class ImageError(PolybuildError):
    """An image, manifest, index, config or image layout is invalid."""


class InvalidReferenceError(ImageError):
    """An image reference that cannot be parsed."""


class InvalidDigestError(ImageError):
    """A string that is not a valid digest of a supported algorithm."""


class ImageNotFoundError(ImageError):
    """No image with that name or digest."""


class NoMatchingPlatformError(ImageNotFoundError):
    """The image has no manifest for the requested platform (or any it runs compatibly)."""


class CompressionError(ImageError):
    """A layer could not be compressed or decompressed, or the option is not supported."""


class LayerWriteError(ImageError):
    """A layer tar could not be written from the given directory."""


class UnpackError(ImageError):
    """A layer entry could not be applied safely; `entry` names it as the tar does."""

    def __init__(self, entry: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"layer entry {entry!r}: {reason}", hint=hint)
        self.entry = entry


class ExecutionError(PolybuildError):
    """A container process could not be started, or it failed."""


class FileOpError(ExecutionError):
    """COPY/ADD/WORKDIR failed; `instruction` is the Dockerfile text it ran for (may be empty)."""

    def __init__(self, message: str, *, instruction: str = "", hint: str | None = None) -> None:
        super().__init__(f"{instruction}: {message}" if instruction else message, hint=hint)
        self.reason = message
        self.instruction = instruction


class StepFailedError(ExecutionError):
    """A RUN step exited non-zero. The message is BuildKit's (`process "/bin/sh -c ..." did
    not complete successfully: exit code: 3`); `step` is the step's display name, `lines`
    the Dockerfile lines (first, last) of its instruction, and `excerpt` those lines as
    BuildKit prints them, set by the build that knows the Dockerfile. (Set as attributes:
    the constructor stays PolybuildError's, which a node's error is rebuilt with.)"""

    step: str = ""
    lines: tuple[int, int] | None = None
    excerpt: str = ""
    node: str = ""  # the builder node it failed on ("": this machine); the hint names it


class SolveFailedError(StepFailedError):
    """A build on a BuildKit daemon failed other than by a RUN step: the daemon's frontend
    refused the Dockerfile, a base image could not be pulled, a COPY source is missing...
    The message is BuildKit's and `excerpt` the Dockerfile lines its details point at;
    reported as buildx reports any failed solve (`ERROR: failed to build: failed to solve:
    MESSAGE` after the excerpt), hence a StepFailedError."""


class RegistryError(PolybuildError):
    """A registry answered with an error or could not be reached."""


class AuthenticationError(RegistryError):
    """The registry refused the credentials (or asked for some we do not have)."""


class BlobUnknownError(RegistryError):
    """The registry does not have a blob (in that repository)."""


class BuilderNotFoundError(PolybuildError):
    """No builder by that name."""


class NoNodeForPlatformError(PolybuildError):
    """No node of the builder can build one of the requested platforms."""


class RootfsPathError(PolybuildError):
    """A path inside a root filesystem cannot be resolved (a symlink loop, for example)."""


class NotReproducibleError(PolybuildError):
    """Two builds of the same platform gave different images (`build --check-reproducible`)."""


class RemoteError(PolybuildError):
    """The remote protocol failed: a peer broke the framing or sent an unexpected message."""


class NodeUnreachableError(RemoteError):
    """A builder node cannot be used; `endpoint` names it, the message says why."""

    def __init__(self, endpoint: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"node {endpoint}: {reason}", hint=hint)
        self.endpoint = endpoint
        self.reason = reason


class FixtureError(PolybuildError):
    """A busybox package is missing, corrupt or cannot be fetched."""


class TemplateError(PolybuildError):
    """A Go text/template that cannot be parsed or executed; the message is Go's."""


class DockerEngineError(PolybuildError):
    """A Docker Engine (DOCKER_HOST or /var/run/docker.sock) failed to take a loaded image."""


class ContextError(PolybuildError):
    """A build context given as `-` or a URL cannot be brought into a local directory."""


__all__ = [
    "AuthenticationError",
    "BlobNotFoundError",
    "BlobUnknownError",
    "BuilderNotFoundError",
    "CacheBlobError",
    "CompressionError",
    "ContentError",
    "ContextError",
    "DigestMismatchError",
    "DockerEngineError",
    "DockerfileError",
    "EmulationError",
    "ExecutionError",
    "FileOpError",
    "FixtureError",
    "ImageError",
    "ImageNotFoundError",
    "InvalidDigestError",
    "InvalidReferenceError",
    "LayerWriteError",
    "NoMatchingPlatformError",
    "NoNodeForPlatformError",
    "NodeUnreachableError",
    "NotReproducibleError",
    "PlatformError",
    "PolybuildError",
    "PrivilegeError",
    "RegistryError",
    "RemoteError",
    "RootfsPathError",
    "SolveFailedError",
    "StepFailedError",
    "TemplateError",
    "UnpackError",
    "UsageError",
]
