"""The ssh transport: `ssh://[user@]host[:port]` endpoints, reached through the user's own
OpenSSH client (keys, agent, jump hosts, known_hosts as ~/.ssh/config sets them) running
`polybuild dial-stdio` on the node. Host keys are always checked; BatchMode makes a missing
key or an unknown host fail at once instead of waiting at a prompt nobody sees."""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
from dataclasses import dataclass

from polybuild.errors import NodeUnreachableError, UsageError
from polybuild.remote.process import Failure, ProcessLink, last_line, spawn

SCHEME = "ssh://"
CONFIG_ENV = "POLYBUILD_SSH_CONFIG"  # an ssh_config file passed with -F (tests use one)
REMOTE_COMMAND = ("dial-stdio",)
# Keepalives: a node whose connection dies is noticed within 15 s, even mid-build.
KEEPALIVE = ("-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")

_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # a name, an alias or an IPv4 address
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class SSHEndpoint:
    """Where a node is: host (a name, an ssh_config alias or an address), user, port."""

    host: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{SCHEME}{user}{host}{port}"


def parse_endpoint(text: str) -> SSHEndpoint:
    """`ssh://[user@]host[:port]`; anything else (other schemes, paths, passwords, names
    that ssh would read as options) is a UsageError naming the endpoint."""

    def refuse(why: str) -> UsageError:
        return UsageError(
            f"invalid node endpoint {text!r}: {why}", hint="write it as ssh://[user@]host[:port]"
        )

    if not text.startswith(SCHEME):
        raise refuse("only ssh:// endpoints can be reached")
    netloc = text[len(SCHEME) :]
    if any(c in netloc for c in "/?#"):
        raise refuse("a path, query or fragment is not allowed")
    userinfo, _, hostport = netloc.rpartition("@")
    if userinfo and ":" in userinfo:
        raise refuse("passwords cannot be given in the endpoint (use keys or an agent)")
    if userinfo and not _USER.match(userinfo):
        raise refuse(f"bad user name {userinfo!r}")
    if hostport.startswith("["):
        host, bracket, rest = hostport[1:].partition("]")
        if not bracket or not _IPV6.match(host) or (rest and not rest.startswith(":")):
            raise refuse("bad IPv6 address")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = hostport.partition(":")
        port_text = port_text_ if colon else None
        if not _HOST.match(host):
            raise refuse(f"bad host name {host!r}")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise refuse(f"bad port {port_text!r}")
        port = int(port_text)
    return SSHEndpoint(host, userinfo or None, port)


def login_args(endpoint: SSHEndpoint, config: str | None = None) -> list[str]:
    """The options that say where and as whom to log in: -p, -l and -F (an ssh_config)."""
    args: list[str] = []
    if endpoint.port is not None:
        args += ["-p", str(endpoint.port)]
    if endpoint.user:
        args += ["-l", endpoint.user]
    if config:
        args += ["-F", config]
    return args


def ssh_argv(
    endpoint: SSHEndpoint,
    *,
    connect_timeout: float,
    ssh: str = "ssh",
    polybuild: str = "polybuild",
    config: str | None = None,
) -> list[str]:
    """The ssh command line that runs `polybuild dial-stdio` on the node; `--` ends ssh's
    options, so no host name can become one."""
    argv = [ssh, "-T", "-o", "BatchMode=yes"]
    argv += ["-o", f"ConnectTimeout={max(1, math.ceil(connect_timeout))}", *KEEPALIVE]
    argv += login_args(endpoint, config)
    # ssh hands the command to the node's shell as one string: quote the path.
    return [*argv, "--", endpoint.host, shlex.quote(polybuild), *REMOTE_COMMAND]


def explain_ssh(endpoint: SSHEndpoint, polybuild: str, stderr: str, status: int | None) -> Failure:
    """What ssh's stderr and exit status mean for the user (ssh exits 255 on its own
    errors, and with the remote command's status otherwise: 127 is "command not found")."""
    host = endpoint.host
    line = last_line(stderr)
    if "Host key verification failed" in stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in (
        stderr
    ):
        return Failure(
            "host key verification failed",
            hint=f"check {host}'s key fingerprint, then add it to known_hosts "
            f"(ssh {host} once, interactively)",
        )
    if status == 127 or (polybuild in stderr and "not found" in stderr):
        return Failure(
            f"polybuild is not installed on {host}",
            hint=f"pip install polybuild there (or put {polybuild} on PATH for ssh sessions)",
        )
    if "Permission denied (" in stderr:  # ssh: (publickey,password) and the like
        return Failure(
            line or "permission denied",
            hint=f"check that `ssh {endpoint.user + '@' if endpoint.user else ''}{host}` "
            "logs in without a password (a key in your agent or ~/.ssh/config)",
        )
    login = " ".join([*login_args(endpoint, os.environ.get(CONFIG_ENV)), endpoint.host])
    hint = f"check that `ssh {login} {polybuild} --version` works from here"
    if line:
        return Failure(line.removeprefix("ssh: "), hint=hint)
    return Failure(f"ssh exited with status {status}" if status is not None else "no answer", hint)


async def open_ssh(
    endpoint: SSHEndpoint, *, connect_timeout: float, polybuild: str = "polybuild"
) -> ProcessLink:
    """Start ssh to the node and `polybuild dial-stdio` there; the link speaks the protocol."""
    ssh = shutil.which("ssh")
    if ssh is None:
        raise NodeUnreachableError(
            str(endpoint),
            "the OpenSSH client (ssh) is not installed here",
            hint="install it (apt-get install openssh-client) and check `ssh HOST` works",
        )
    argv = ssh_argv(
        endpoint,
        connect_timeout=connect_timeout,
        ssh=ssh,
        polybuild=polybuild,
        config=os.environ.get(CONFIG_ENV) or None,
    )

    def explain(stderr: str, status: int | None) -> Failure | None:
        if status == 0 or (status is None and not stderr.strip()):
            return None  # ssh ended well: the conversation itself went wrong
        return explain_ssh(endpoint, polybuild, stderr, status)

    return await spawn(str(endpoint), argv, explain=explain)
