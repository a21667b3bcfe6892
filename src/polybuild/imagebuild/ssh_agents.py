"""`--ssh ID=KEYFILE[,KEYFILE...]`: as buildx, the keys are served through an SSH agent for
the build, never bound into a step as a file. polybuild runs the system's `ssh-agent` for
the build on a socket in a private directory (0700), adds the keys with `ssh-add` (a key
with a passphrase is refused: nothing can be asked), and stops it when the build ends."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from polybuild.errors import UsageError
from polybuild.imagebuild.request import BuildRequest
from polybuild.scratch import socket_tmp


@contextlib.contextmanager
def ssh_agents(request: BuildRequest) -> Iterator[BuildRequest]:
    """`request` with every `--ssh` id given key files served by an agent of its own."""
    if not request.secrets.ssh_keys:
        yield request
        return
    agent = shutil.which("ssh-agent")
    add = shutil.which("ssh-add")
    if agent is None or add is None:
        raise UsageError(
            "--ssh ID=KEYFILE needs ssh-agent and ssh-add (openssh-client) on this machine",
            hint="install openssh-client, or give a running agent's socket: --ssh default",
        )
    with contextlib.ExitStack() as stack:
        sockets = dict(request.secrets.ssh)
        for ident, keys in request.secrets.ssh_keys.items():
            sockets[ident] = stack.enter_context(_agent(agent, add, ident, keys))
        secrets = dataclasses.replace(request.secrets, ssh=sockets, ssh_keys={})
        yield dataclasses.replace(request, secrets=secrets)


@contextlib.contextmanager
def _agent(agent: str, add: str, ident: str, keys: tuple[str, ...]) -> Iterator[str]:
    directory = Path(tempfile.mkdtemp(prefix="polybuild-ssh-", dir=socket_tmp()))
    os.chmod(directory, 0o700)
    socket = directory / "agent.sock"
    process = subprocess.Popen(
        [agent, "-D", "-a", str(socket)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise UsageError(f"--ssh {ident}: ssh-agent did not start")
            time.sleep(0.02)
        env = {"PATH": os.environ.get("PATH", ""), "SSH_AUTH_SOCK": str(socket)}
        for key in keys:
            added = subprocess.run(
                [add, "-q", key],
                check=False,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
                start_new_session=True,  # no terminal: a passphrase cannot be asked
            )
            if added.returncode != 0:
                why = added.stderr.strip().splitlines()[-1:] or ["ssh-add failed"]
                raise UsageError(
                    f"--ssh {ident}={key}: the key cannot be used: {why[0]}",
                    hint="a key with a passphrase must be loaded into an agent: --ssh "
                    f"{ident}=$SSH_AUTH_SOCK",
                )
        yield str(socket)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


__all__ = ["ssh_agents"]
