"""Decoding wire JSON from several threads at once (the platforms' frontends do) must not
crash the interpreter: msgspec's first decode of a Struct type is not thread-safe."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import sys, threading
    import msgspec
    from polybuild.image import _wire

    sys.setswitchinterval(1e-6)  # switch threads as often as possible: widen any race
    TYPES = """
    class Inner(msgspec.Struct, frozen=True, omit_defaults=True):
        env: list[str] | None = msgspec.field(default=None, name="Env")
        labels: dict[str, str] | None = msgspec.field(default=None, name="Labels")
    class Entry(msgspec.Struct, frozen=True, omit_defaults=True):
        created_by: str | None = None
    class Outer(msgspec.Struct, frozen=True, omit_defaults=True):
        architecture: str = ""
        config: Inner | None = None
        history: list[Entry] | None = None
    """
    DATA = b'{"architecture":"arm64","config":{"Env":["A=1"]},"history":[{"created_by":"x"}]}'
    for trial in range(300):
        names = {"msgspec": msgspec}
        exec(TYPES, names)  # fresh types: each trial is a first decode
        barrier = threading.Barrier(4)

        def work() -> None:
            barrier.wait()
            assert _wire.decode(DATA, names["Outer"], "config").architecture == "arm64"

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print("ok")
''')


def test_first_decodes_of_a_type_in_four_threads_at_once() -> None:
    # In a child process: the failure this guards against is a segfault. With
    # msgspec.json.decode in place of _wire.decode the child dies (SIGSEGV) within a few
    # dozen trials here.
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"
