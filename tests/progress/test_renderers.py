"""The plain and rawjson renderers on a scripted build, mode selection, and thread safety."""

from __future__ import annotations

import base64
import io
import json
import re
import threading

import pytest

from polybuild.errors import UsageError
from polybuild.progress import (
    Fanout,
    NullProgress,
    PlainRenderer,
    ProgressWriter,
    RawJSONRenderer,
    Recorder,
    make_renderer,
    resolve_mode,
)
from polybuild.progress.events import VertexCompleted, VertexLog, VertexStarted
from tests.progress.script import run_script

PLAIN = """\
#1 [internal] load build definition from Dockerfile
#1 DONE 0.1s

#2 [linux/amd64 build 1/2] FROM docker.io/library/busybox
#2 CACHED

#3 [linux/arm64 build 2/2] RUN make
#3 0.532 cc -o app app.c
#3 0.532 link
#3 ...

#4 [linux/amd64 build 2/2] RUN make
#4 0.100 native ok
#4 DONE 0.4s

#3 [linux/arm64 build 2/2] RUN make
#3 1.500 ing done
#3 WARN: RUN make took long under emulation
#3 DONE 44.2s

#5 exporting to image
#5 exporting layers
#5 sha256:abcdef 1.54kB / 3.15MB 0.5s
#5 sha256:abcdef 3.15MB / 3.15MB 0.7s done
#5 DONE 0.7s

#6 [linux/arm64 build 3/3] RUN false
#6 0.500 to stderr
#6 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1
------
 > [linux/arm64 build 3/3] RUN false:
0.500 to stderr
------

 2 warnings found (use docker --debug to expand):
 - RUN make took long under emulation
 - FromAsCasing: 'as' and 'FROM' keywords' casing do not match
"""


def test_plain_output_matches_buildkit_format() -> None:
    out = io.StringIO()
    run_script(PlainRenderer(out))
    assert out.getvalue() == PLAIN


def test_rawjson_is_solve_status_lines() -> None:
    out = io.StringIO()
    run_script(RawJSONRenderer(out))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(len(line) == 1 for line in lines)
    assert lines[0] == {
        "vertexes": [
            {
                "digest": "sha256:01",
                "name": "[internal] load build definition from Dockerfile",
                "started": "2023-11-14T22:13:20Z",
                "emulated": False,
            }
        ]
    }
    vertexes = [v for line in lines for v in line.get("vertexes", [])]
    cached = [v for v in vertexes if v["digest"] == "sha256:02"][-1]
    assert cached["cached"] is True and cached["completed"] == cached["started"]
    arm = [v for v in vertexes if v["digest"] == "sha256:03"][-1]
    assert list(arm) == ["digest", "name", "started", "completed", "platform", "emulated"]
    assert arm["platform"] == "linux/arm64" and arm["emulated"] is True
    assert arm["started"] == "2023-11-14T22:13:21Z"
    assert arm["completed"] == "2023-11-14T22:14:05.2Z"
    native = next(v for v in vertexes if v["digest"] == "sha256:04")
    assert native["inputs"] == ["sha256:02"]
    failed = [v for v in vertexes if v["digest"] == "sha256:06"][-1]
    assert failed["error"].startswith('process "/bin/sh -c false"')
    logs = [log for line in lines for log in line.get("logs", [])]
    assert [base64.b64decode(log["data"]) for log in logs if log["vertex"] == "sha256:03"] == [
        b"cc -o app app.c\nlink",
        b"ing done\n",
    ]
    assert [log["stream"] for log in logs] == [1, 1, 2, 2]
    assert logs[0]["timestamp"] == "2023-11-14T22:13:21.532Z"
    statuses = [s for line in lines for s in line.get("statuses", [])]
    assert statuses[-1] == {
        "id": "sha256:abcdef",
        "vertex": "sha256:05",
        "total": 3 << 20,
        "current": 3 << 20,
        "timestamp": "2023-11-14T22:14:06Z",
        "started": "2023-11-14T22:14:05.3Z",
        "completed": "2023-11-14T22:14:06Z",
    }
    warnings = [w for line in lines for w in line.get("warnings", [])]
    assert base64.b64decode(warnings[0]["short"]) == b"RUN make took long under emulation"
    assert warnings[0]["vertex"] == "sha256:03" and "vertex" not in warnings[1]


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_mode_selection() -> None:
    assert isinstance(make_renderer("tty", io.StringIO(), env={}), PlainRenderer)
    assert isinstance(make_renderer("auto", io.StringIO(), env={}), PlainRenderer)
    assert isinstance(make_renderer(None, io.StringIO(), env={}), PlainRenderer)
    assert isinstance(make_renderer("rawjson", io.StringIO(), env={}), RawJSONRenderer)
    assert isinstance(make_renderer("quiet", _FakeTTY(), env={}), NullProgress)
    env = {"BUILDKIT_PROGRESS": "rawjson"}
    assert isinstance(make_renderer(None, io.StringIO(), env=env), RawJSONRenderer)
    assert resolve_mode("plain", env) == "plain"  # the flag wins over the environment


def test_unknown_modes_are_usage_errors() -> None:
    with pytest.raises(UsageError, match='--progress: unknown progress mode "fancy"'):
        resolve_mode("fancy", {})
    with pytest.raises(UsageError, match="BUILDKIT_PROGRESS"):
        resolve_mode(None, {"BUILDKIT_PROGRESS": "nope"})


def test_tty_renderer_draws_on_a_terminal() -> None:
    out = _FakeTTY()
    renderer = make_renderer("tty", out, env={})
    assert type(renderer).__name__ == "TTYRenderer"
    run_script(renderer)
    text = out.getvalue()
    assert "[+] Building" in text
    assert "CACHED" in text and "[linux/amd64 build 1/2] FROM docker.io/library/busybox" in text
    assert "ERROR" in text and " > [linux/arm64 build 3/3] RUN false:" in text
    assert any("RUN false" in line and "emulated" in line for line in text.splitlines())
    assert " 2 warnings found (use docker --debug to expand):" in text
    assert "------\n > [linux/arm64 build 3/3] RUN false:\n0.500 to stderr\n------\n" in text
    assert "local:default" in make_renderer_text(instance=("default", "local"))


def make_renderer_text(**kwargs: object) -> str:
    out = _FakeTTY()
    renderer = make_renderer("tty", out, env={}, **kwargs)  # type: ignore[arg-type]
    run_script(renderer)
    return out.getvalue()


def test_plain_output_starts_with_buildx_instance_line() -> None:
    out = io.StringIO()
    writer = ProgressWriter(
        make_renderer("plain", out, env={}, instance=("multi", "ssh")), clock=lambda: 0.0
    )
    writer.close()
    assert out.getvalue() == ""  # nothing happened: no line, as buildx's printer
    writer = ProgressWriter(
        make_renderer("plain", out, env={}, instance=("multi", "ssh")), clock=lambda: 0.0
    )
    with writer.vertex("v1", "[internal] load build definition from Dockerfile"):
        pass
    writer.close()
    assert out.getvalue().splitlines()[:3] == [
        '#0 building with "multi" instance using ssh driver',
        "",
        "#1 [internal] load build definition from Dockerfile",
    ]


def test_a_failed_steps_block_has_its_last_ten_lines_and_no_canceled_step() -> None:
    out = io.StringIO()
    clock = iter(float(n) for n in range(100))
    writer = ProgressWriter(PlainRenderer(out), clock=lambda: next(clock))
    with pytest.raises(RuntimeError), writer.vertex("v1", "[2/3] RUN make") as step:
        step.log(b"".join(f"line {n}\n".encode() for n in range(12)))
        step.log(b"no newline at the end")
        raise RuntimeError("exit code: 2")
    writer.emit(VertexStarted("v2", "[3/3] RUN other", 50.0))
    writer.emit(VertexCompleted("v2", 51.0, error="canceled", canceled=True))
    writer.close()
    text = out.getvalue()
    block = text[text.index("------\n") :]
    assert block == (
        "------\n > [2/3] RUN make:\n"
        + "".join(f"1.000 line {n}\n" for n in range(3, 12))
        + "2.000 no newline at the end\n------\n"
    )


def test_warnings_expand_with_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    from polybuild.progress.events import BuildWarning
    from polybuild.progress.plain import warnings_block

    short = "JSONArgsRecommended: JSON arguments recommended for CMD"
    warning = BuildWarning(short, 0.0, detail=("Use JSON arguments",), url="https://docs.x/y")
    assert warnings_block([warning]) == (
        "\n 1 warning found (use docker --debug to expand):\n"
        " - JSONArgsRecommended: JSON arguments recommended for CMD\n"
    )
    monkeypatch.setenv("POLYBUILD_DEBUG", "1")
    assert warnings_block([warning]) == (
        "\n 1 warning found:\n"
        " - JSONArgsRecommended: JSON arguments recommended for CMD\n"
        "Use JSON arguments\nMore info: https://docs.x/y\n\n"
    )


def test_a_warning_two_nodes_give_is_listed_once() -> None:
    from polybuild.progress.events import BuildWarning
    from polybuild.progress.plain import warnings_block

    casing = "StageNameCasing: Stage name 'Build' should be lowercase (line 1)"
    other = "JSONArgsRecommended: JSON arguments recommended for CMD (line 3)"
    given = [
        BuildWarning(casing, 1.0, "a/sha256:1"),
        BuildWarning(other, 1.5, "a/sha256:2"),
        BuildWarning(casing, 2.0, "b/sha256:1"),  # the same from another node
    ]
    assert warnings_block(given) == (
        f"\n 2 warnings found (use docker --debug to expand):\n - {casing}\n - {other}\n"
    )


def test_many_threads_emitting() -> None:
    out = io.StringIO()
    recorder = Recorder()
    renderer = PlainRenderer(out)
    writer = ProgressWriter(Fanout(renderer, recorder))
    threads_count, logs = 16, 50

    def step(n: int) -> None:
        with writer.vertex(f"sha256:{n:02d}", f"step {n}") as v:
            for i in range(logs):
                v.log(f"thread {n} line {i}\n".encode())

    threads = [threading.Thread(target=step, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    events = recorder.events
    assert sum(isinstance(e, VertexLog) for e in events) == threads_count * logs
    assert sum(isinstance(e, VertexCompleted) for e in events) == threads_count
    lines = out.getvalue().splitlines()
    for n in range(threads_count):
        index = next(
            line.split()[0] for line in lines if line.endswith(f" step {n}")
        )  # the number the renderer gave the step
        mine = [line for line in lines if line.startswith(f"{index} ") and "thread" in line]
        assert [line.rsplit(" ", 1)[1] for line in mine] == [str(i) for i in range(logs)]
        assert f"{index} DONE" in "\n".join(lines)
    # every event was started before it completed, per vertex
    seen: set[str] = set()
    for event in events:
        if isinstance(event, VertexStarted):
            seen.add(event.vertex)
        elif isinstance(event, VertexCompleted | VertexLog):
            assert event.vertex in seen


def test_tty_keeps_a_done_steps_status_lines_under_it() -> None:
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", make_renderer_text())
    assert re.search(r"^ => exporting to image +0\.7s$", text, re.MULTILINE), text
    # the step is done; its lines stay, each with its own time
    assert re.search(r"^ => => exporting layers +0\.7s$", text, re.MULTILINE), text
    assert re.search(r"^ => => sha256:abcdef 3\.15MB / 3\.15MB +0\.7s$", text, re.MULTILINE)
