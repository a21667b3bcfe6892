"""Go's text/tabwriter (and the docker CLI's copy of it) for rows of cells or for text: what
buildx and BuildKit print their tables with."""

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


def tabwrite(text: str, padding: int, minwidth: int = 0) -> str:
    """Go's tabwriter over text as it was written (padchar ' ', no flags): tab-terminated
    cells of contiguous lines make a column block, each block as wide as its widest cell plus
    `padding` (at least `minwidth`); a line's last cell is not padded, so rows of differing
    cell counts align as Go aligns them."""
    lines = [line.split("\t") for line in text.split("\n")]
    trailing = lines.pop() if lines and lines[-1] == [""] else None
    out: list[str] = []
    _blocks(lines, 0, len(lines), [], padding, minwidth, out)
    return "\n".join(out) + ("\n" if trailing is not None else "")


def _blocks(
    lines: list[list[str]],
    start: int,
    end: int,
    widths: list[int],
    padding: int,
    minwidth: int,
    out: list[str],
) -> None:
    """Go's Writer.format: lines [start, end) with the widths of the enclosing blocks."""
    column = len(widths)
    this = start
    while this < end:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        _emit(lines, start, this, widths, out)
        start = this
        width = minwidth
        while this < end and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + padding)
            this += 1
        _blocks(lines, start, this, [*widths, width], padding, minwidth, out)
        start = this
    _emit(lines, start, end, widths, out)


def _emit(lines: list[list[str]], start: int, end: int, widths: list[int], out: list[str]) -> None:
    for cells in lines[start:end]:
        out.append(
            "".join(c.ljust(widths[j]) if j < len(widths) else c for j, c in enumerate(cells))
        )


__all__ = ["tabwrite", "tabwriter"]
