"""A BuildKit daemon's Status updates as polybuild's progress events (no daemon needed)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from polybuild.buildkit._proto import control_pb2 as pb
from polybuild.imagebuild.buildkit_progress import StatusEvents
from polybuild.progress.events import VertexCompleted, VertexLog, VertexStarted, VertexStatus


def at(seconds: float) -> Timestamp:
    return Timestamp(seconds=int(seconds), nanos=int((seconds % 1) * 1e9))


def test_each_vertex_once_named_as_the_daemon_names_it_statuses_before_completion() -> None:
    events = StatusEvents("bk")
    first = pb.StatusResponse(
        vertexes=[
            pb.Vertex(
                digest="sha256:a",
                name="[linux/arm64 2/3] RUN make\x1b[2J",
                started=at(1.5),
                inputs=["sha256:b"],
            )
        ],
        logs=[pb.VertexLog(vertex="sha256:a", msg=b"cc app.c\n", stream=1, timestamp=at(1.6))],
    )
    second = pb.StatusResponse(
        vertexes=[
            pb.Vertex(
                digest="sha256:a",
                name="[linux/arm64 2/3] RUN make",
                started=at(1.5),
                completed=at(4.0),
            ),
            pb.Vertex(
                digest="sha256:c",
                name="[internal] load .dockerignore",
                cached=True,
                completed=at(4.0),
                started=at(4.0),
            ),
        ],
        statuses=[
            pb.VertexStatus(
                ID="transfer", vertex="sha256:a", current=5, total=10, timestamp=at(3.0)
            )
        ],
    )
    got = events.events(first) + events.events(second)
    assert [type(e).__name__ for e in got] == [
        "VertexStarted",
        "VertexLog",
        "VertexStarted",
        "VertexStatus",
        "VertexCompleted",
        "VertexCompleted",
    ]
    started = got[0]
    assert isinstance(started, VertexStarted)
    assert started.vertex == "bk/sha256:a" and started.inputs == ("bk/sha256:b",)
    # the daemon's name as buildx shows it (no node in it), made printable; the node is
    # in the vertex id only
    assert started.name == "[linux/arm64 2/3] RUN make?[2J"
    assert started.started == 1.5
    assert isinstance(got[1], VertexLog) and got[1].data == b"cc app.c\n"
    assert isinstance(got[3], VertexStatus) and (got[3].current, got[3].total) == (5, 10)
    done = got[4]
    assert isinstance(done, VertexCompleted) and (done.completed, done.cached) == (4.0, False)
    cached = got[5]
    assert isinstance(cached, VertexCompleted) and cached.cached
    assert events.events(second)[0:1] == [got[3]]  # nothing new but the status again
