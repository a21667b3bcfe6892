"""Run one RUN step (a graph Exec op): mounts, secrets and the container, output streamed."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from polybuild import syscalls
from polybuild.dockerfile.dump import go_quote
from polybuild.errors import ExecutionError, StepFailedError
from polybuild.executor import ExitStatus, Mount, Process, cdi
from polybuild.executor.cdi import ContainerEdits
from polybuild.graph import ops
from polybuild.graph.devices import DeviceGrants
from polybuild.rootfs import resolve_in_root
from polybuild.snapshot.snapshotter import merge_overlay_dir
from polybuild.solver.secrets import BuildSecrets

if TYPE_CHECKING:
    from polybuild.solver.worker import Executor, Worker

TAIL_LINES = 12
# Free space under which a failed step is said to have met a full data root (its writes go
# to a snapshot there, and a full disk shows up in its output as anything from ENOSPC to EIO).
FULL_BELOW = 1 << 20


class OutputTail:
    """Forwards a step's output and keeps its last lines for the error message."""

    def __init__(self, on_output: Callable[[bytes], None]) -> None:
        self.on_output = on_output
        self.lines: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._partial = b""

    def feed(self, data: bytes) -> None:
        self.on_output(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        for line in complete:
            self.lines.append(line.decode(errors="replace"))

    def text(self) -> str:
        lines = list(self.lines) + (
            [self._partial.decode(errors="replace")] if self._partial else []
        )
        return "\n".join(lines[-TAIL_LINES:])


def run_streaming(
    executor: Executor, rootfs: Path, process: Process, tail: OutputTail
) -> ExitStatus:
    """Run the container with stdout and stderr piped into `tail` as they arrive."""
    read_fd, write_fd = os.pipe()

    def pump() -> None:
        with os.fdopen(read_fd, "rb", buffering=0) as reader:
            while chunk := reader.read(65536):
                tail.feed(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        return executor.run(rootfs, process, stdout=write_fd, stderr=write_fd)
    finally:
        os.close(write_fd)
        reader.join()


def _cache_mount_dir(worker: Worker, mount: ops.Mount, seed: Path | None) -> Path:
    """The persistent directory of a cache mount, created (and seeded from `from=`) once."""
    cache_id = mount.cache_id or mount.target
    # BuildKit keys cache mounts by id only; platform-specific contents are the user's concern.
    name = hashlib.sha256(cache_id.encode()).hexdigest()[:32]
    path = worker.root / "cache-mounts" / name
    if not path.exists():
        tmp = path.with_name(f"{name}.tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        if seed is not None and seed.is_dir():
            # Never shutil.copytree: it opens and reads device nodes the step may have made
            # (a block device would copy the host's disk into the cache).
            merge_overlay_dir(seed, tmp)
        tmp.chmod(mount.mode if mount.mode is not None else 0o755)
        if mount.uid is not None or mount.gid is not None:
            os.chown(tmp, mount.uid or 0, mount.gid or 0)
        try:
            tmp.rename(path)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another step created it meanwhile
    return path


def _secrets_tmpfs(stack: contextlib.ExitStack, scratch: Path, size: int) -> Path:
    """A private tmpfs for a step's secret files (never on disk), unmounted when the step
    ends; mode 0700, no devices, no set-uid, nothing executable."""
    path = scratch / "secrets"
    path.mkdir(mode=0o700)
    flags = syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC
    syscalls.mount("polybuild-secrets", path, "tmpfs", flags, f"mode=0700,size={size}")
    stack.callback(syscalls.umount, path, syscalls.MNT_DETACH)
    return path


@contextlib.contextmanager
def prepared_mounts(
    worker: Worker,
    exec_op: ops.Exec,
    sources: dict[str, Path],
    secrets: BuildSecrets,
    scratch: Path,
) -> Iterator[tuple[tuple[Mount, ...], tuple[str, ...]]]:
    """The executor mounts and extra environment for an Exec op's `--mount` options.

    `sources` maps each mount's source op digest to a directory holding that tree.
    """
    mounts: list[Mount] = []
    env: list[str] = []
    secret_dir: Path | None = None
    with contextlib.ExitStack() as stack:
        for index, mount in enumerate(exec_op.mounts):
            if mount.type == "bind":
                base = sources[mount.source.digest] if mount.source is not None else None
                if base is None:
                    raise ExecutionError(f"bind mount {mount.target}: no source")
                source = resolve_in_root(base, mount.source_path)
                if not source.exists():
                    raise ExecutionError(
                        f"bind mount {mount.target}: {mount.source_path} does not exist in "
                        "its source"
                    )
                options = ("ro",) if mount.readonly else ()
                mounts.append(Mount(mount.target, "bind", str(source), options))
            elif mount.type == "cache":
                seed = (
                    resolve_in_root(sources[mount.source.digest], mount.source_path)
                    if mount.source is not None and mount.source.digest in sources
                    else None
                )
                path = _cache_mount_dir(worker, mount, seed)
                if mount.sharing == "locked":
                    stack.enter_context(FileLock(str(path) + ".lock"))
                elif mount.sharing == "private":
                    lock = FileLock(str(path) + ".lock")
                    try:
                        lock.acquire(blocking=False)
                        stack.callback(lock.release)
                    except Timeout:  # busy: a private mount gets a directory of its own
                        path = Path(tempfile.mkdtemp(dir=scratch, prefix="cache-"))
                options = ("ro",) if mount.readonly else ()
                mounts.append(Mount(mount.target, "bind", str(path), options))
            elif mount.type == "tmpfs":
                # No size unless asked, as BuildKit: the kernel's default (half the memory).
                size = (f"size={mount.size}",) if mount.size else ()
                mounts.append(Mount(mount.target, "tmpfs", "tmpfs", ("nosuid", "nodev", *size)))
            elif mount.type == "secret":
                secret = secrets.secrets.get(mount.secret_id)
                if secret is None:
                    if mount.required:
                        raise ExecutionError(
                            f"secret {mount.secret_id} not found",
                            hint=f"pass it with --secret id={mount.secret_id},src=FILE",
                        )
                    continue
                if mount.env:
                    env.append(f"{mount.env}={secret.decode(errors='replace')}")
                if mount.env and mount.target in ("", f"/run/secrets/{mount.secret_id}"):
                    continue
                target = mount.target or f"/run/secrets/{mount.secret_id}"
                if secret_dir is None:
                    needed = sum(len(v) + 4096 for v in secrets.secrets.values())
                    secret_dir = _secrets_tmpfs(stack, scratch, needed + (64 << 10))
                path = secret_dir / f"secret-{index}"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mount.mode or 0o400)
                with os.fdopen(fd, "wb") as f:
                    f.write(secret)
                os.chown(path, mount.uid or 0, mount.gid or 0)
                mounts.append(Mount(target, "bind", str(path), ("ro",)))
            elif mount.type == "ssh":
                socket = secrets.ssh.get(mount.secret_id or "default")
                if socket is None:
                    if mount.required:
                        raise ExecutionError(
                            f"no SSH agent socket for id {mount.secret_id or 'default'}",
                            hint="pass --ssh default (uses $SSH_AUTH_SOCK) or --ssh id=PATH",
                        )
                    continue
                target = mount.target or f"/run/buildkit/ssh_agent.{index}"
                mounts.append(Mount(target, "bind", socket, ()))
                env.append(f"SSH_AUTH_SOCK={target}")
        yield tuple(mounts), tuple(env)


def exec_process(
    exec_op: ops.Exec,
    mounts: tuple[Mount, ...],
    extra_env: tuple[str, ...],
    default_network: str,
    extra_hosts: tuple[tuple[str, str], ...] = (),
    ulimits: tuple[tuple[str, int, int], ...] = (),
    shm_size: int | None = None,
    devices: DeviceGrants | None = None,
) -> Process:
    """The executor process for an Exec op (`RUN --network` wins over `build --network`),
    with the CDI devices it asks for when they are granted."""
    network = exec_op.network if exec_op.network not in ("default", "") else default_network
    return Process(
        args=exec_op.argv,
        env=(*exec_op.env, *extra_env),
        cwd=exec_op.cwd or "/",
        user=exec_op.user,
        hostname="buildkitsandbox",
        network="private" if network in ("default", "") else network,
        security=exec_op.security,
        mounts=mounts,
        platform=exec_op.platform,
        extra_hosts=extra_hosts,
        ulimits=ulimits,
        shm_size=shm_size,
        cdi=device_edits(exec_op, devices or DeviceGrants()),
    )


def device_edits(exec_op: ops.Exec, grants: DeviceGrants) -> ContainerEdits | None:
    """What the CDI devices a RUN step asks for add to its container (UsageError when one is
    required but not registered, or not granted)."""
    if not exec_op.devices:
        return None
    edits = ContainerEdits()
    for device in cdi.devices_for(exec_op.devices, grants, cdi.load_devices()):
        edits += device.edits
    return edits


def failure(
    exec_op: ops.Exec, status: ExitStatus, tail: OutputTail, name: str, root: Path | None = None
) -> StepFailedError:
    """BuildKit's words for a failed RUN (`process "/bin/sh -c ..." did not complete
    successfully: exit code: 3`, the command Go-quoted as its %q), naming the step and its
    Dockerfile lines for the CLI's report (the step's last output is in its progress); and,
    when the data root `root` has run out of space, that (the step's files go there)."""
    command = go_quote(" ".join(exec_op.argv))
    how = "timed out" if status.timed_out else f"exit code: {status.code}"
    message = f"process {command} did not complete successfully: {how}"
    hint = None
    if root is not None and _nearly_full(root):
        message += f"\nno space left on the file system of the data root {root}"
        hint = (
            "free space there (polybuild prune removes the build cache), or use a data root "
            "with more room (POLYBUILD_ROOT)"
        )
    del tail  # shown by the progress renderer's error block, as BuildKit's
    error = StepFailedError(message, hint=hint)
    error.step, error.lines = name, exec_op.location
    return error


def _nearly_full(path: Path) -> bool:
    try:
        return shutil.disk_usage(path).free < FULL_BELOW
    except OSError:
        return False


def make_scratch(root: Path) -> Path:
    """A private scratch directory for one step under the data root `root`."""
    parent = root / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"step-{os.getpid()}-", dir=parent))


def remove_scratch(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
