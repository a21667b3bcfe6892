"""`polybuild du` as buildx prints it (commands/diskusage.go: the table, the pretty format
of --verbose, the summary) and its --filter: parsed as buildx parses it into BuildKit's
filter (passed to daemons; tests/buildkit/test_du_prune.py) and applied to this machine's
records with BuildKit's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.buildkit.records import CacheRecord
from polybuild.cache_filters import CacheFilters, parse_filters, record_matches
from polybuild.cli.du import go_time, human_size, pretty, summary, table
from polybuild.errors import UsageError
from tests.conftest import run_cli

NOW = 1_750_000_000.0
RUN = CacheRecord("6wqu0v6hjdwvhh8yjozrepaof", 1_653_000_000, False, False, True,
                  "[build-base 4/4] COPY . .", "regular", NOW - 3 * 86400,
                  created_at=1_749_743_042.5, parents=("bqx15bcewecz4wcg14b7iodvp",),
                  usage_count=1)  # fmt: skip
MOUNT = CacheRecord("ax7cov6kizxi9ufvcwsef4occ", 8224, True, True, False,
                    "cached mount /root/.cache", "exec.cachemount", None)  # fmt: skip


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], CacheFilters()),
        (["until=24h"], CacheFilters(86400.0)),
        (["unused-for=1m"], CacheFilters(60.0)),
        (["type=regular"], CacheFilters(None, ("type==regular",))),
        (["id=abc"], CacheFilters(None, ("id~=abc",))),
        (["description~=go", "Type!=exec.cachemount", "until=1h"],
         CacheFilters(3600.0, ("description~=go,type!=exec.cachemount",))),
        ([" private = "], CacheFilters(None, ("private==",))),
    ],
)  # fmt: skip
def test_filters_as_buildx_sends_them(values: list[str], expected: CacheFilters) -> None:
    assert parse_filters(values) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["until=1h", "unused-for=2h"], 'conflicting filters "until" and "unused-for"'),
        (["type=a", "type=b"], '"type" filter expects only one value'),
        (["until=soon"], "\"until\" filter expects a duration (e.g., '24h'): time: invalid"),
        (["nokey"], "bad format of filter (expected name=value)"),
    ],
)
def test_filter_errors_in_buildx_words(values: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_filters(values)


def test_records_match_as_buildkit_matches_them() -> None:
    def selects(*values: str) -> list[str]:
        selectors = parse_filters(values).selectors
        return [r.id[:4] for r in (RUN, MOUNT) if record_matches(r, selectors)]

    assert selects() == ["6wqu", "ax7c"]
    assert selects("type=exec.cachemount") == ["ax7c"]
    assert selects("type!=exec.cachemount") == ["6wqu"]
    assert selects("id=^6wq") == ["6wqu"]  # buildx sends id as a regular expression
    assert selects("description~=COPY") == ["6wqu"]
    assert selects('description~="cached mount"') == ["ax7c"]
    assert selects("parents=bqx15bcewecz4wcg14b7iodvp") == ["6wqu"]
    assert selects("shared=") == ["6wqu"] and selects("private=") == ["ax7c"]
    assert selects("mutable=") == ["ax7c"] and selects("immutable=") == ["6wqu"]
    assert selects("shared=true") == []  # presence-only fields have the empty value
    assert selects("type=regular", "description~=nothing") == []
    with pytest.raises(UsageError, match="must be quoted"):
        selects("description~=cached mount")


def test_sizes_and_times_as_go_prints_them() -> None:
    sizes = [1_704_000_000, 318_000_000, 8224, 0, 999, 1_000_000_000_000_000]
    assert [human_size(s) for s in sizes] == ["1.704GB", "318MB", "8.224kB", "0B", "999B", "1PB"]
    assert go_time(1_749_743_042.5) == "2025-06-12 15:44:02.5 +0000 UTC"
    assert go_time(None) == "0001-01-01 00:00:00 +0000 UTC"


def test_table_pretty_and_summary_as_buildx() -> None:
    assert table([MOUNT, RUN], NOW) == (
        "ID                           RECLAIMABLE   SIZE       LAST ACCESSED\n"
        "ax7cov6kizxi9ufvcwsef4occ*   false         8.224kB    \n"
        "6wqu0v6hjdwvhh8yjozrepaof    true          1.653GB*   3 days ago\n"
    )
    assert pretty([RUN, MOUNT], NOW) == (
        "ID:           6wqu0v6hjdwvhh8yjozrepaof\n"
        "Parents:\n"
        " - bqx15bcewecz4wcg14b7iodvp\n"
        "Created at:   2025-06-12 15:44:02.5 +0000 UTC\n"
        "Mutable:      false\n"
        "Reclaimable:  true\n"
        "Shared:       true\n"
        "Size:         1.653GB\n"
        "Description:  [build-base 4/4] COPY . .\n"
        "Usage count:  1\n"
        "Last used:    3 days ago\n"
        "Type:         regular\n"
        "\n"
        "ID:           ax7cov6kizxi9ufvcwsef4occ\n"
        "Created at:   0001-01-01 00:00:00 +0000 UTC\n"
        "Mutable:      true\n"
        "Reclaimable:  false\n"
        "Shared:       false\n"
        "Size:         8.224kB\n"
        "Description:  cached mount /root/.cache\n"
        "Usage count:  0\n"
        "Type:         exec.cachemount\n"
        "\n"
    )
    assert summary([RUN, MOUNT]) == (
        "Shared:\t\t1.653GB\nPrivate:\t8.224kB\nReclaimable:\t1.653GB\nTotal:\t\t1.653GB\n"
    )
    assert summary([MOUNT]) == "Reclaimable:\t0B\nTotal:\t\t8.224kB\n"  # nothing shared


def test_du_on_this_machine_filters_its_own_records(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "cache-mounts" / "m1").mkdir(parents=True)
    (root / "cache-mounts" / "m1" / "f").write_bytes(b"x" * 1500)
    (root / "layers" / ("ab" * 32)).mkdir(parents=True)
    (root / "layers" / ("ab" * 32) / "g").write_bytes(b"y" * 20)
    done = run_cli(root, "du")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    width = 25 + 3  # the longest ID (25 characters) and tabwriter's padding
    assert lines[0] == "ID".ljust(width) + "RECLAIMABLE   SIZE      LAST ACCESSED"
    assert lines[1].startswith("ab" * 12 + "a   true          20B       ")
    assert lines[2].startswith("m1*".ljust(width) + "true          1.5kB     ")
    assert lines[3:] == ["Reclaimable:\t1.52kB", "Total:\t\t1.52kB"]
    mounts = run_cli(root, "du", "--filter", "type=exec.cachemount", "--verbose")
    assert mounts.returncode == 0, mounts.stderr
    assert mounts.stdout.startswith("ID:           m1\n") and mounts.stdout.count("ID:") == 1
    assert "Description:  cache mount m1\n" in mounts.stdout
    assert "Total:" not in mounts.stdout  # buildx prints no summary for a filtered list
