"""The ssh transport: endpoint parsing, the ssh command line, what ssh's errors mean."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from polybuild.errors import NodeUnreachableError, UsageError
from polybuild.remote.ssh import (
    CONFIG_ENV,
    SSHEndpoint,
    explain_ssh,
    open_ssh,
    parse_endpoint,
    ssh_argv,
)


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("ssh://node1", SSHEndpoint("node1")),
        ("ssh://builder@node1.example.com", SSHEndpoint("node1.example.com", "builder")),
        ("ssh://root@10.0.0.2:2222", SSHEndpoint("10.0.0.2", "root", 2222)),
        ("ssh://[fd00::2]:22", SSHEndpoint("fd00::2", None, 22)),
        ("ssh://arm_box", SSHEndpoint("arm_box")),  # an ssh_config alias
    ],
)
def test_endpoints_parse_and_print_back(text: str, endpoint: SSHEndpoint) -> None:
    assert parse_endpoint(text) == endpoint
    assert str(endpoint) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("tcp://node1:1234", "only ssh:// endpoints"),
        ("node1", "only ssh:// endpoints"),
        ("ssh://", "bad host name ''"),
        ("ssh://node1/var/run", "a path, query or fragment"),
        ("ssh://user:secret@node1", "passwords cannot be given"),
        ("ssh://-oProxyCommand=touch%20x", "bad host name '-oProxyCommand=touch%20x'"),
        ("ssh://-lroot@node1", "bad user name '-lroot'"),
        ("ssh://node1:0", "bad port '0'"),
        ("ssh://node1:70000", "bad port '70000'"),
        ("ssh://node1:22x", "bad port '22x'"),
        ("ssh://[fd00::2", "bad IPv6 address"),
        ("ssh://[fd00::2]x", "bad IPv6 address"),
    ],
)
def test_anything_else_is_a_usage_error_naming_the_endpoint(text: str, why: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_endpoint(text)
    assert str(caught.value).startswith(f"invalid node endpoint {text!r}: ")
    assert why in str(caught.value)


def test_the_command_line_keeps_host_key_checking_and_ends_options_before_the_host() -> None:
    argv = ssh_argv(
        SSHEndpoint("node1", "builder", 2222), connect_timeout=2.5, config="/etc/test_ssh"
    )
    assert argv[0] == "ssh"
    assert argv[-4:] == ["--", "node1", "polybuild", "dial-stdio"]
    options = argv[: argv.index("--")]
    assert "BatchMode=yes" in options
    assert "ConnectTimeout=3" in options
    assert options[options.index("-p") + 1] == "2222"
    assert options[options.index("-l") + 1] == "builder"
    assert options[options.index("-F") + 1] == "/etc/test_ssh"
    text = " ".join(argv)
    assert "StrictHostKeyChecking" not in text
    assert "UserKnownHostsFile" not in text


def test_a_plain_endpoint_adds_no_login_options() -> None:
    argv = ssh_argv(SSHEndpoint("node1"), connect_timeout=10)
    assert not {"-p", "-l", "-F"} & set(argv)


NODE = SSHEndpoint("node1", "builder")


def test_polybuild_missing_on_the_node() -> None:
    found = explain_ssh(NODE, "polybuild", "bash: line 1: polybuild: command not found\n", 127)
    assert found.reason == "polybuild is not installed on node1"
    assert found.hint is not None
    assert found.hint.startswith("pip install polybuild there")


def test_an_unknown_host_key_is_not_accepted_but_explained() -> None:
    stderr = "No ED25519 host key is known for node1 and you have requested strict checking.\n"
    found = explain_ssh(NODE, "polybuild", stderr + "Host key verification failed.\n", 255)
    assert found.reason == "host key verification failed"
    assert found.hint is not None
    assert "fingerprint" in found.hint


def test_a_refused_key_says_how_to_check_the_login() -> None:
    found = explain_ssh(NODE, "polybuild", "builder@node1: Permission denied (publickey).\n", 255)
    assert found.reason == "builder@node1: Permission denied (publickey)."
    assert found.hint is not None
    assert "`ssh builder@node1`" in found.hint


def test_other_ssh_errors_are_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, "/tmp/cfg")
    found = explain_ssh(
        NODE, "polybuild", "ssh: Could not resolve hostname node1: Name or service not known\n", 255
    )
    assert found.reason == "Could not resolve hostname node1: Name or service not known"
    assert found.hint == (
        "check that `ssh -l builder -F /tmp/cfg node1 polybuild --version` works from here"
    )


def test_no_ssh_client_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NodeUnreachableError, match="OpenSSH client .* is not installed"):
        asyncio.run(open_ssh(NODE, connect_timeout=1))
