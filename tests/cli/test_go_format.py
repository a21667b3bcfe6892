"""docker's formatter as buildx's ls, du and history ls run `--format` (cli/go_format.py):
the table prefix, headers from the template run over the column names, json lines, docker's
template functions, errors as docker words them; and Go's tabwriter over text."""

from __future__ import annotations

import pytest

from polybuild.cli.go_format import Format, Item, item, write
from polybuild.errors import TemplateError
from polybuild.tabwriter import tabwrite

HEADERS = {"Name": "NAME", "Size": "SIZE", "Tags": "TAGS"}


def thing(name: str, size: str, tags: list[str]) -> Item:
    methods = {"Name": lambda: name, "Size": lambda: size, "Tags": lambda: tags}
    return item("commands.thingContext", methods, lambda: '{"Name":"' + name + '","x":"<&>"}')


ITEMS = [thing("alpha", "1.5kB", ["a", "b"]), thing("a-much-longer-name", "20B", [])]


def test_format_keys_as_docker_preprocesses_them() -> None:
    assert Format(r"table {{.Name}}\t{{.Size}}").template() == "{{.Name}}\t{{.Size}}"
    assert Format("  {{.Name}}\\n ").template() == "{{.Name}}\n"  # spaces trimmed, not escapes
    assert Format("json").template() == "{{json .}}"
    assert Format("table").template() == ""
    assert Format("tablefoo").is_table and not Format("{{json .}}").is_json


def test_table_has_a_header_row_from_the_column_names() -> None:
    out = write(Format(r"table {{.Name}}\t{{.Size}}"), ITEMS, HEADERS)
    assert out == (
        "NAME                 SIZE\n"  # minwidth 10, padding 3, as docker's table writer
        "alpha                1.5kB\n"
        "a-much-longer-name   20B\n"
    )
    narrow = write(Format(r"table {{.Size}}\t{{.Name}}"), ITEMS, HEADERS)
    assert narrow.splitlines()[0] == "SIZE      NAME"


def test_header_functions_keep_the_names_and_unknown_columns_show_no_value() -> None:
    out = write(Format(r"table {{upper .Name}}\t{{join .Tags `,`}}\t{{.Nope}}"), [], HEADERS)
    assert out == "NAME      TAGS      <no value>\n"
    # pad is not replaced for headers (it keeps the columns aligned), truncate is
    assert write(Format("table {{pad .Name 2 1}}|{{truncate .Size 1}}"), [], HEADERS) == (
        "  NAME |SIZE\n"
    )


def test_bare_template_prints_one_line_per_item_without_header() -> None:
    out = write(Format("{{.Name}}: {{.Size}} {{len .Tags}}"), ITEMS, HEADERS)
    assert out == "alpha: 1.5kB 2\na-much-longer-name: 20B 0\n"


def test_json_is_each_items_marshalled_json_on_a_line() -> None:
    out = write(Format("json"), ITEMS, HEADERS)
    assert out.splitlines() == [
        '{"Name":"alpha","x":"<&>"}',
        '{"Name":"a-much-longer-name","x":"<&>"}',
    ]
    # docker's json function: compact, no HTML escaping, values as encoding/json writes them
    assert write(Format("{{json .Tags}} {{json .Name}}"), ITEMS[:1], HEADERS) == (
        '["a","b"] "alpha"\n'
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{split "a,b,c" ","}}', "[a b c]"),
        ('{{join (split "a b" " ") "+"}}', "a+b"),
        ('{{title "hello wide-world"}}', "Hello Wide-World"),
        ('{{lower "ABC"}} {{upper "abc"}}', "abc ABC"),
        ('[{{pad "x" 1 2}}][{{pad "" 1 2}}]', "[ x  ][]"),
        ('{{truncate "abcdef" 3}} {{truncate "ab" 3}}', "abc ab"),
        ('{{printf "%5s|" .Name}}', "alpha|"),
    ],
)
def test_docker_template_functions(template: str, expected: str) -> None:
    assert write(Format(template), ITEMS[:1], HEADERS) == expected + "\n"


def test_errors_are_gos_prefixed_as_docker_and_print_nothing() -> None:
    with pytest.raises(TemplateError) as parse_error:
        write(Format("{{.Name"), ITEMS, HEADERS)
    assert str(parse_error.value) == "template parsing error: template: :1: unclosed action"
    assert parse_error.value.hint is not None and "--format" in parse_error.value.hint
    with pytest.raises(TemplateError) as exec_error:
        write(Format("{{.Name}} {{.Nope}}"), ITEMS, HEADERS)
    assert str(exec_error.value) == (
        'template parsing error: template: :1:12: executing "" at <.Nope>: '
        "can't evaluate field Nope in type *commands.thingContext"
    )
    with pytest.raises(TemplateError, match='function "bogus" not defined'):
        write(Format("{{bogus .Name}}"), ITEMS, HEADERS)
    with pytest.raises(TemplateError, match="error calling upper: wrong type for value"):
        write(Format("{{upper .Tags}}"), ITEMS, HEADERS)


def test_tabwrite_aligns_column_blocks_as_go() -> None:
    # text/tabwriter's own example: b and c are in distinct columns, d and e in none
    text = "aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n"
    assert tabwrite(text, padding=1) == "aaaa bbb d\naa   b   dd\na    \naa   cccc eee\n"
    # an empty last cell leaves the padding of the cells before it, as Go writes it
    assert tabwrite("NAME\tX\na\t\n", padding=3, minwidth=10) == "NAME      X\na         \n"
    assert tabwrite("no tabs", padding=3) == "no tabs"
