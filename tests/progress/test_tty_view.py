"""The tty view's frames: running steps' last lines, markers, nodes, height, hostile output."""

from __future__ import annotations

import io
import re
import time

from polybuild.platforms import parse
from polybuild.progress.events import (
    BuildWarning,
    VertexCompleted,
    VertexLog,
    VertexStarted,
    VertexStatus,
)
from polybuild.progress.tty import LOG_LINES, TTYRenderer, clean, fit

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _frames(out: _Terminal) -> list[list[str]]:
    """Each frame's lines without colours (a frame starts by hiding the cursor)."""
    frames = []
    for chunk in out.getvalue().split("\x1b[?25l")[1:]:
        body = chunk.split("\x1b[J")[0]
        frames.append([_ANSI.sub("", line).strip("\r").rstrip() for line in body.split("\n")[:-1]])
    return frames


def _renderer(out: _Terminal, **kwargs: object) -> TTYRenderer:
    # a refresh that never fires by itself: the test draws frames when it wants them
    return TTYRenderer(out, size=lambda: (100, 30), refresh=3600, **kwargs)  # type: ignore[arg-type]


def _frame(renderer: TTYRenderer, out: _Terminal) -> list[str]:
    renderer._draw(final=False)
    return _frames(out)[-1]


def test_a_running_step_shows_its_last_six_lines_and_a_live_marker_then_collapses() -> None:
    out = _Terminal()
    renderer = _renderer(out)
    now = time.time()
    arm, amd = parse("linux/arm64"), parse("linux/amd64")
    renderer.emit(VertexStarted("v1", "[linux/arm64 build 2/3] RUN make", now, arm, True))
    renderer.emit(VertexStarted("v2", "[linux/amd64 build 2/3] RUN make", now, amd))
    renderer.emit(VertexStarted("v3", "[linux/amd64 build 3/3] COPY a b", now, amd))
    output = "".join(f"line {n}\n" for n in range(10)).encode()
    renderer.emit(VertexLog("v1", output, now + 1))
    frame = _frame(renderer, out)
    assert frame[0].startswith("[+] Building ") and "(0/3)" in frame[0]
    arm_line = next(line for line in frame if "linux/arm64 build 2/3" in line)
    assert re.search(r"RUN make +emulated +\d+\.\ds$", arm_line), arm_line
    amd_line = next(line for line in frame if "linux/amd64 build 2/3" in line)
    assert re.search(r"RUN make +native +\d+\.\ds$", amd_line), amd_line
    copy_line = next(line for line in frame if "COPY a b" in line)
    assert "native" not in copy_line and "emulated" not in copy_line  # not a RUN step
    logs = [line for line in frame if line.startswith(" => => # ")]
    assert logs == [f" => => # line {n}" for n in range(10 - LOG_LINES, 10)]
    assert frame.index(logs[0]) == frame.index(arm_line) + 1  # under its step

    renderer.emit(VertexCompleted("v1", now + 2))
    frame = _frame(renderer, out)
    assert not [line for line in frame if line.startswith(" => => # ")]  # collapsed when done
    assert any(line.startswith(" => [linux/arm64 build 2/3] RUN make") for line in frame)
    renderer.close()
    final = _frames(out)[-1]
    assert len(final) == 4 and "(3/3)" not in final[0]  # two steps never finished


def test_escape_sequences_and_control_characters_never_reach_the_terminal() -> None:
    out = _Terminal()
    renderer = _renderer(out)
    now = time.time()
    name = "[linux/amd64 1/1] RUN printf '\x1b]52;c;ZXZpbA==\x07\x1b[2J'"
    renderer.emit(VertexStarted("v1", name, now, parse("linux/amd64")))
    hostile = "\x1b[31mred\x1b[0m \x1b]0;title\x07\u009b6n bell\x07\n"
    renderer.emit(VertexLog("v1", hostile.encode(), now))
    frame = _frame(renderer, out)
    assert " => => # red 6n bell" in frame
    renderer.close()
    written = out.getvalue()
    assert "\x1b]" not in written and "\x1b[2J" not in written and "\x07" not in written
    assert "\u009b" not in written and "\x1b[31m" not in written
    assert clean("ok\ttab") == "oktab" and clean("plain") == "plain"


def test_a_progress_bar_redrawn_with_carriage_returns_shows_as_a_terminal_would() -> None:
    out = _Terminal()
    renderer = _renderer(out)
    now = time.time()
    renderer.emit(VertexStarted("v1", "[1/1] RUN curl", now))
    renderer.emit(VertexLog("v1", b" 10%\r 50%\r100%\r\n", now))
    assert " => => # 100%" in _frame(renderer, out)
    renderer.close()


def test_steps_outgrowing_the_terminal_keep_running_ones_in_view() -> None:
    out = _Terminal()
    renderer = TTYRenderer(out, size=lambda: (80, 10), refresh=3600)
    now = time.time()
    renderer.emit(VertexStarted("first", "[1/40] RUN first", now))
    for n in range(2, 41):
        renderer.emit(VertexStarted(f"v{n}", f"[{n}/40] RUN step {n}", now))
        renderer.emit(VertexCompleted(f"v{n}", now + 1))
    renderer.emit(VertexLog("first", b"still going\n", now))
    frame = _frame(renderer, out)
    assert len(frame) <= 10 - 1  # the header and at most height - 2 lines of steps
    assert any("RUN first" in line for line in frame)
    assert " => => # still going" in frame
    assert any("RUN step 40" in line for line in frame)  # the newest finished ones
    assert not any("RUN step 2 " in line for line in frame)  # the oldest scrolled away
    renderer.emit(VertexCompleted("first", now + 2))
    renderer.close()
    final = _frames(out)[-1]
    assert len(final) == 41 and final[0].endswith("FINISHED")  # in full once done


def test_a_builder_of_several_nodes_names_the_node_of_each_step() -> None:
    out = _Terminal()
    nodes = [("", "this machine"), ("node1:", "arm-box (ssh://pi)")]
    renderer = _renderer(out, nodes=nodes)
    now = time.time()
    arm = parse("linux/arm64")
    renderer.emit(VertexStarted("node1:v1", "[linux/arm64 1/1] RUN make", now, arm))
    renderer.emit(VertexStarted("v2", "[linux/amd64 1/1] RUN make", now, parse("linux/amd64")))
    renderer.emit(VertexStatus("v2", "exporting layers", now, current=2048))
    frame = _frame(renderer, out)
    assert re.search(r"arm64 1/1\] RUN make +arm-box \(ssh://pi\) native", "\n".join(frame))
    assert re.search(r"amd64 1/1\] RUN make +this machine native", "\n".join(frame))
    assert any(line.startswith(" => => exporting layers 2.05kB") for line in frame)
    renderer.close()


def test_wide_characters_are_cut_by_columns() -> None:
    assert fit("日本語のテキスト", 5) == "日本"
    assert fit("abcdef", 4) == "abcd" and fit("abc", 10) == "abc"


def test_a_failed_steps_block_and_warnings_are_cleaned_too() -> None:
    out = _Terminal()
    renderer = _renderer(out)
    now = time.time()
    renderer.emit(VertexStarted("v1", "[1/1] RUN false", now))
    renderer.emit(VertexLog("v1", b"\x1b]52;c;ZXZpbA==\x07oops\n", now))
    renderer.emit(VertexCompleted("v1", now + 1, error="exit code: 1\x1b[2J\nsecond line"))
    renderer.emit(BuildWarning("JSONArgsRecommended: \x1b]0;title\x07 CMD", now))
    renderer.close()
    tail = out.getvalue().rpartition("\x1b[?25h")[2]  # what is printed after the display
    assert "oops" in tail and "CMD" in tail
    assert "\x1b" not in tail and "\x07" not in tail


def test_a_warning_printed_above_the_live_display_is_never_drawn_over() -> None:
    out = _Terminal()
    renderer = _renderer(out)
    now = time.time()
    renderer.emit(VertexStarted("v1", "[1/2] RUN make", now))
    renderer.emit(VertexStarted("v2", "[2/2] RUN test", now))
    _frame(renderer, out)  # three lines drawn
    renderer.print_above("WARNING: registry \x1b]0;x\x07answered slowly\n")
    _frame(renderer, out)
    written = out.getvalue()
    warning = written.index("WARNING: registry answered slowly\n")
    # the warning replaced the three lines drawn (up 3, erased), and the next frame starts
    # below it instead of moving up over it
    assert written[:warning].endswith("\x1b[3A\r\x1b[J")
    assert written[warning:].split("\n", 1)[1].startswith("\x1b[?25l\r[+] Building")
    renderer.close()
