"""`--secret` and `--ssh` values as buildx reads them: a bare `id=X` is the environment
variable X when it is set, else the file X; `type=` is checked; a secret over BuildKit's
500 KiB is refused; `--ssh ID=KEYFILE` serves the key through an agent started for the
build (a step lists it with ssh-add), never as a file in the step."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from polybuild.errors import UsageError
from polybuild.imagebuild.request import parse_secrets
from tests.buildkit.test_ssh_forward import ssh_context
from tests.conftest import require_root, run_cli


def test_a_bare_id_is_the_variable_then_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOKEN", "from-env")
    (tmp_path / "TOKEN").write_text("from-file")
    (tmp_path / "other").write_text("file only")
    parsed = parse_secrets(("id=TOKEN", "id=other", "id=x,src=other", "id=y,env=TOKEN"), ())
    assert parsed.secrets == {
        "TOKEN": b"from-env", "other": b"file only", "x": b"file only", "y": b"from-env"
    }  # fmt: skip
    assert parse_secrets(("id=z,type=env,src=TOKEN",), ()).secrets == {"z": b"from-env"}
    with pytest.raises(UsageError, match="unsupported secret type 'ssh'"):
        parse_secrets(("id=a,type=ssh",), ())
    (tmp_path / "big").write_bytes(b"x" * (500 * 1024 + 1))
    with pytest.raises(UsageError, match="too big. max size 500KiB"):
        parse_secrets(("id=big,src=big",), ())


def test_ssh_values_are_a_socket_or_key_files(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    parsed = parse_secrets((), (f"deploy={key}",))
    assert parsed.ssh == {} and parsed.ssh_keys == {"deploy": (str(key),)}
    with pytest.raises(UsageError, match="does not exist"):
        parse_secrets((), (f"deploy={tmp_path / 'nope'}",))


@pytest.mark.root
@pytest.mark.integration
def test_a_key_file_is_served_by_an_agent_for_the_build(tmp_path: Path) -> None:
    require_root()
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pbt-keyfile",
                    "-f", str(key)], check=True)  # fmt: skip
    ctx = ssh_context(tmp_path, "FROM scratch\nCOPY rootfs/ /\n"
                      "RUN --mount=type=ssh,id=deploy ssh-add -l > /out; "
                      "test -S $SSH_AUTH_SOCK && echo socket > /what\n")  # fmt: skip
    dest = tmp_path / "fs"
    done = run_cli(tmp_path / "root", "build", "--ssh", f"deploy={key}",
                   "-o", f"type=local,dest={dest}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "pbt-keyfile (ED25519)" in (dest / "out").read_text()
    assert (dest / "what").read_text() == "socket\n"  # an agent, not the key file
    # A $TMPDIR too long for a socket's path: the agent's socket goes under /tmp instead.
    long_tmp = tmp_path / ("t" * 90)
    long_tmp.mkdir()
    again = run_cli(tmp_path / "root", "build", "--ssh", f"deploy={key}",
                    "-o", f"type=local,dest={tmp_path / 'fs2'}", str(ctx),
                    env={"TMPDIR": str(long_tmp)})  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "pbt-keyfile (ED25519)" in (tmp_path / "fs2" / "out").read_text()
    protected = tmp_path / "protected"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret-pass",
                    "-f", str(protected)], check=True)  # fmt: skip
    refused = run_cli(tmp_path / "root", "build", "--ssh", f"deploy={protected}", str(ctx))
    assert refused.returncode == 2 and "the key cannot be used" in refused.stderr
