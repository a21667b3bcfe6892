"""Node endpoints: this machine, ssh://[user@]host[:port], and clear refusals of the rest."""

from __future__ import annotations

import pytest

from polybuild.builders import is_local, normalize_endpoint
from polybuild.errors import UsageError


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("", "local"),
        ("local", "local"),
        ("default", "local"),
        ("unix:///var/run/docker.sock", "local"),
        ("ssh://arm-host", "ssh://arm-host"),
        ("ssh://build@arm-host", "ssh://build@arm-host"),
        ("ssh://build@10.0.0.2:2222", "ssh://build@10.0.0.2:2222"),
        ("SSH://build@arm-host", "ssh://build@arm-host"),
        ("ssh://root@[fd00::2]:22", "ssh://root@[fd00::2]:22"),
    ],
)
def test_accepted_endpoints(given: str, stored: str) -> None:
    assert normalize_endpoint(given) == stored
    assert is_local(stored) == (stored == "local")


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("tcp://10.0.0.2:1234", "over ssh only"),
        ("docker-container://buildkitd", "over ssh only"),
        ("kube-pod://x", "over ssh only"),
        ("mycontext", "unknown endpoint"),
        ("ssh://", "bad host name"),
        ("ssh://user@", "bad host name"),
        ("ssh://host:notaport", "bad port"),
        ("ssh://host:70000", "bad port"),
        ("ssh://host:0", "bad port"),
        ("ssh://user:secret@host", "passwords"),
        ("ssh://host/some/path", "a path"),
        ("ssh://host?x=1", "a path"),
        ("ssh://-oProxyCommand=x", "bad host name"),
        ("ssh://-oProxyCommand=x@host", "bad user name"),
    ],
)
def test_refused_endpoints_say_what_is_supported(given: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        normalize_endpoint(given)
    assert says in str(caught.value)
    assert "ssh://[user@]host[:port]" in (caught.value.hint or "")
