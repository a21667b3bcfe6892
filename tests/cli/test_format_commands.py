"""`ls`, `du` and `history ls` with `--format` as buildx takes it: `json`, a `table` template
(with buildx's column names as headers) and a bare template, the fields buildx's formatters
expose (docs/reference/buildx_ls.md, buildx_du.md, buildx_history_ls.md), and a bad template
as buildx reports it (`template parsing error: ...`, exit 1)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from polybuild.buildkit.records import CacheRecord
from polybuild.cli.du import formatted
from polybuild.history import COMPLETED, ERROR, BuildRecord, HistoryStore, StepRecord
from tests.conftest import run_cli

NOW = 1_750_000_000.0
RUN = CacheRecord("6wqu0v6hjdwvhh8yjozrepaof", 1_653_000_000, False, False, True,
                  "[build-base 4/4] COPY . .", "regular", NOW - 3 * 86400,
                  created_at=1_749_743_042.5, parents=("bqx15bcewecz4wcg14b7iodvp",),
                  usage_count=1)  # fmt: skip
MOUNT = CacheRecord("ax7cov6kizxi9ufvcwsef4occ", 8224, True, True, False,
                    "cached <mount>", "exec.cachemount", None)  # fmt: skip


def test_ls_formats(tmp_path: Path) -> None:
    root = tmp_path / "root"
    made = run_cli(root, "create", "--name", "multi", "--platform", "linux/amd64", "--use")
    assert made.returncode == 0, made.stderr
    far = ("create", "--name", "multi", "--append", "--platform", "linux/arm64", "ssh://b@far")
    assert run_cli(root, *far).returncode == 0

    # the docs' example: builder rows and node rows, no header, no indent, no `*`
    plain = run_cli(root, "ls", "--format", "{{.Name}}: {{.DriverEndpoint}}")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines() == [
        "multi: local",
        "multi0: local",
        "multi1: ssh://b@far",
        "default: local",
        "default: local",
    ]
    table = run_cli(root, "ls", "--format", r"table {{.Name}}\t{{.Status}}\t{{.Platforms}}")
    listed = table.stdout.splitlines()
    assert (
        listed[:4]
        == [  # the widest name is the default builder's ` \_ default`
            "NAME/NODE".ljust(14) + "STATUS".ljust(11) + "PLATFORMS",
            "multi*".ljust(25),
            " \\_ multi0".ljust(14) + "running".ljust(11) + listed[2][25:],
            " \\_ multi1".ljust(14) + "inactive".ljust(11) + "linux/arm64*",
        ]
    )
    assert listed[2][25:].startswith("linux/amd64*")  # pinned, then what this machine runs
    # `.Builder` is the builder object: the docs' example over its nodes
    nodes = run_cli(
        root,
        "ls",
        "--format",
        r"{{.Builder.Name}}:{{range .Builder.Nodes}}\n  {{.Name}}: {{.Endpoint}}{{end}}",
    )
    assert nodes.stdout.splitlines()[:3] == ["multi:", "  multi0: local", "  multi1: ssh://b@far"]
    # json: one line per builder (no node rows), buildx's Builder object with Current
    lines = run_cli(root, "ls", "--format", "json").stdout.splitlines()
    assert [json.loads(line)["Name"] for line in lines] == ["multi", "default"]
    assert json.loads(lines[0])["Current"] is True
    # `{{json .}}` is a template: every row, each its builder's JSON
    rows = run_cli(root, "ls", "--format", "{{json .}}").stdout.splitlines()
    assert [json.loads(r)["Name"] for r in rows] == ["multi"] * 3 + ["default"] * 2

    bad = run_cli(root, "ls", "--format", "{{.Nope}}")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.splitlines()[0] == (
        'ERROR: template parsing error: template: :1:2: executing "" at <.Nope>: '
        "can't evaluate field Nope in type *commands.lsContext"
    )
    assert "--format" in bad.stderr


def test_du_items_as_buildx_diskusage_context() -> None:
    table = formatted([MOUNT, RUN], r"table {{.ID}}\t{{.Shared}}\t{{.Size}}\t{{.Type}}", NOW)
    assert table == (
        "ID                           SHARED    SIZE       TYPE\n"
        "ax7cov6kizxi9ufvcwsef4occ*   false     8.224kB    exec.cachemount\n"
        "6wqu0v6hjdwvhh8yjozrepaof    true      1.653GB*   regular\n"
    )
    bare = formatted([RUN], "{{.ID}} {{.Parents}} {{.UsageCount}} {{.LastUsedAt}}", NOW)
    assert bare == "6wqu0v6hjdwvhh8yjozrepaof [bqx15bcewecz4wcg14b7iodvp] 1 3 days ago\n"
    lines = formatted([MOUNT, RUN], "json", NOW).splitlines()
    assert lines[0] == (  # every method, keys sorted, HTML escaped as json.Marshal; no `*`
        '{"CreatedAt":"0001-01-01 00:00:00 +0000 UTC","Description":"cached \\u003cmount\\u003e",'
        '"ID":"ax7cov6kizxi9ufvcwsef4occ","LastUsedAt":"","Mutable":true,"Parents":null,'
        '"Reclaimable":false,"Shared":false,"Size":"8.224kB","Type":"exec.cachemount",'
        '"UsageCount":0}'
    )
    assert json.loads(lines[1])["Parents"] == ["bqx15bcewecz4wcg14b7iodvp"]


def test_du_format_flag(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "cache-mounts" / "m1").mkdir(parents=True)
    (root / "cache-mounts" / "m1" / "f").write_bytes(b"x" * 1500)
    ids = run_cli(root, "du", "--format", "{{.ID}} {{.Mutable}} {{.Type}}")
    assert ids.returncode == 0, ids.stderr
    assert ids.stdout == "m1 true exec.cachemount\n"  # no summary under a template
    table = run_cli(root, "du", "--format", r"table {{.ID}}\t{{.Size}}").stdout
    assert table == "ID        SIZE\nm1*       1.5kB\n"
    listed = run_cli(root, "du", "--format", "json").stdout.splitlines()
    assert [json.loads(line)["ID"] for line in listed] == ["m1"]
    # `table` and `pretty` are buildx's own formats: the summary follows
    assert run_cli(root, "du", "--format", "table").stdout.endswith("Total:\t\t1.5kB\n")
    pretty = run_cli(root, "du", "--format", "pretty").stdout
    assert pretty.startswith("ID:           m1\n") and pretty.endswith("Total:\t\t1.5kB\n")
    both = run_cli(root, "du", "--format", "json", "--verbose")
    assert both.returncode == 2
    assert "--format and --verbose cannot be used together" in both.stderr
    bad = run_cli(root, "du", "--format", "{{.ID")
    assert bad.returncode == 1 and bad.stdout == ""
    assert "ERROR: template parsing error: template: :1: unclosed action" in bad.stderr


def save(root: Path, ref: str, started: float, status: str, name: str) -> None:
    step = StepRecord("sha256:a", "[1/1] RUN true", started, started + 1, cached=True)
    HistoryStore(root).save(
        BuildRecord(
            ref=ref.ljust(25, "0"),
            name=name,
            builder="default",
            node_name="default0",
            started=started,
            completed=started + 1.5,
            status=status,
            steps=(step,),
        )
    )


def test_history_ls_formats(tmp_path: Path) -> None:
    root = tmp_path / "root"
    now = time.time()
    save(root, "old", now - 100, COMPLETED, "first")
    save(root, "new", now - 10, ERROR, "a-name-much-longer-than-thirty-six-characters")

    long_name = "a-name-much-longer-than-thirty-six-characters"
    table = run_cli(root, "history", "ls", "--format", r"table {{.Ref}}\t{{.Name}}\t{{.Status}}")
    assert table.returncode == 0, table.stderr
    assert (
        table.stdout.splitlines()
        == [  # a table keeps a name's last 36 characters
            "BUILD ID                    " + "NAME".ljust(39) + "STATUS",
            "new0000000000000000000000   " + (".." + long_name[-34:]).ljust(39) + "Error",
            "old0000000000000000000000   " + "first".ljust(39) + "Completed",
        ]
    )
    # not a table: the whole name; the default table's link column is empty
    bare = run_cli(root, "history", "ls", "--format", "{{.Name}}|{{.Duration}}|{{.Link}}|")
    assert bare.stdout.splitlines() == [
        f"{long_name}|1.5s||",
        "first|1.5s||",
    ]
    lines = run_cli(root, "history", "ls", "--format", "json").stdout.splitlines()
    assert [json.loads(line)["ref"] for line in lines] == [
        "default/default0/new0000000000000000000000",
        "default/default0/old0000000000000000000000",
    ]
    default = run_cli(root, "history", "ls").stdout.splitlines()
    assert default[0] == (  # Go's tabwriter pads DURATION before the empty link column
        "BUILD ID".ljust(28) + "NAME".ljust(39) + "STATUS".ljust(12) + "CREATED AT".ljust(21)
        + "DURATION".ljust(11)
    )  # fmt: skip

    bad = run_cli(root, "history", "ls", "--format", "{{.Ref}} {{.Size}}")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.splitlines()[0] == (
        'ERROR: template parsing error: template: :1:11: executing "" at <.Size>: '
        "can't evaluate field Size in type *history.lsContext"
    )
