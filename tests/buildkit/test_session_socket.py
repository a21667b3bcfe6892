"""The BuildKit session's and the --ssh agent's unix sockets fit in sun_path whatever
$TMPDIR is: a long temporary directory (a CI runner's, a pytest basetemp) falls back to
/tmp for them."""

from __future__ import annotations

import tempfile

import pytest

from polybuild.scratch import MAX_SOCKET_DIR, socket_tmp


def test_a_long_tmpdir_falls_back_to_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", "/tmp/" + "x" * 120)
    assert socket_tmp() == "/tmp"
    monkeypatch.setattr(tempfile, "tempdir", "/var/tmp/build")
    assert socket_tmp() == "/var/tmp/build"
    # the longest directory kept, its mkdtemp name and the socket's name fit in sun_path
    assert MAX_SOCKET_DIR + len("/polybuild-session-xxxxxxxx/session.sock") < 108
