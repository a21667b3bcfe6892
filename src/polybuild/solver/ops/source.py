"""Sources: a base image's layers (FROM), the build context, heredoc files."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Sequence

from polybuild.errors import DockerfileError, PolybuildError
from polybuild.graph import ops
from polybuild.solver.ops.base import OpContext, key_of
from polybuild.solver.results import Chain, Result, Tree


class ImageSourceHandler:
    """FROM: the layers of the base image the frontend resolved for this platform."""

    def result(self, op: ops.ImageSource, inputs: Sequence[Result], context: OpContext) -> Result:
        image = context.base_images.get((op.ref, op.platform))
        if image is None:
            raise PolybuildError(f"base image {op.ref} for {op.platform} was not resolved")
        return Chain(image.layers, key_of(op.kind, str(image.manifest), []))


class LocalSourceHandler:
    """The build context or a named directory (its files enter keys through the ops that
    read them)."""

    def result(self, op: ops.LocalSource, inputs: Sequence[Result], context: OpContext) -> Result:
        directory, _ = context.options.local_dir(op)
        return Tree(directory, key_of(op.kind, op.definition(), []))


class InlineSourceHandler:
    """Heredoc files in a directory of their own (written once per op digest)."""

    def result(self, op: ops.InlineSource, inputs: Sequence[Result], context: OpContext) -> Result:
        directory = context.worker.root / "inline" / op.digest.split(":")[1]
        if not directory.exists():
            tmp = directory.with_name(f"{directory.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
            tmp.mkdir(parents=True)
            try:
                for f in op.files:
                    # The name comes from the Dockerfile: one plain component, never a path,
                    # and created exclusively, so nothing can be written outside `tmp`.
                    if f.path in ("", ".", "..") or "/" in f.path or "\0" in f.path:
                        raise DockerfileError(
                            f"invalid heredoc name {f.path!r}: it must be a plain file name",
                            hint="use a name such as EOF or script.sh",
                        )
                    fd = os.open(tmp / f.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                                 | os.O_NOFOLLOW | os.O_CLOEXEC, f.mode)  # fmt: skip
                    with os.fdopen(fd, "w") as out:
                        out.write(f.data)
                    os.chmod(tmp / f.path, f.mode, follow_symlinks=False)
                if not directory.exists():
                    os.replace(tmp, directory)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return Tree(directory, op.digest)
