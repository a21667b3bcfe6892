"""`--add-host` values are checked before they reach a step's /etc/hosts: a name or an
address that could add lines of its own (a newline, spaces, a tab) is refused."""

from __future__ import annotations

import pytest

from polybuild.errors import UsageError
from polybuild.imagebuild.add_hosts import parse_add_hosts


def test_names_and_addresses_as_docker_takes_them() -> None:
    assert parse_add_hosts(["db:10.0.0.2", "v6=fd00::1", "a.b-c:[fd00::2]"]) == (
        ("db", "10.0.0.2"),
        ("v6", "fd00::1"),
        ("a.b-c", "fd00::2"),
    )


@pytest.mark.parametrize(
    "value",
    [
        "db\n1.2.3.4 evil:10.0.0.1",
        "db:10.0.0.1\n0.0.0.0 registry",
        "two words:10.0.0.1",
        "tab\there:10.0.0.1",
        "db:10.0.0.1 extra",
        ":10.0.0.1",
        "db:",
        "db:host-gateway",
    ],
)
def test_what_could_write_its_own_lines_is_refused(value: str) -> None:
    with pytest.raises(UsageError, match="--add-host"):
        parse_add_hosts([value])
