"""Go's text/tabwriter (and the docker CLI's copy of it) for rows of cells: what buildx and
BuildKit print their tables with."""

from __future__ import annotations

from collections.abc import Sequence


def tabwriter(rows: Sequence[Sequence[str]], padding: int, minwidth: int = 0) -> str:
    """tabwriter.NewWriter(w, minwidth, _, padding, ' ', 0) over rows whose cells but the
    last end in a tab: each such cell padded with spaces to its column's width (its widest
    cell plus `padding`, at least `minwidth`); the last cell of a row is not padded."""
    columns = max((len(row) for row in rows), default=1) - 1
    widths = [
        max([minwidth, *(len(row[i]) + padding for row in rows if len(row) > i + 1)])
        for i in range(columns)
    ]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + row[-1] + "\n")
    return "".join(lines)


__all__ = ["tabwriter"]
