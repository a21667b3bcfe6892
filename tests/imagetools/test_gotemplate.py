"""Go's text/template as buildx runs it: each case's expected output is what Go's text/template
(with buildx's json function) prints for it, worked out from Go's documentation and fmt rules."""

from __future__ import annotations

from typing import Any

import pytest

from polybuild.errors import TemplateError
from polybuild.imagetools.gotemplate import Field, GoMap, Nil, Struct, Time, render

PLATFORM = Struct(
    "v1.Platform",
    (
        Field("Architecture", "arm", "architecture"),
        Field("OS", "linux", "os"),
        Field("OSVersion", "", "os.version", True),
        Field("OSFeatures", Nil("[]string"), "os.features", True),
        Field("Variant", "v7", "variant", True),
    ),
)
DATA: dict[str, Any] = {
    "Name": "reg/app:1",
    "List": ["a", "b", "c"],
    "Numbers": [3, 1, 2],
    "Map": {"b": "2", "a": "1"},
    "Empty": [],
    "Zero": 0,
    "Float": 1.5,
    "Big": 1000000.0,
    "Html": "<a&b>",
    "Platform": PLATFORM,
    "Labels": GoMap({"x": "y"}, "map[string]string", ""),
    "Created": Time("2024-05-01T10:00:00.5Z"),
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain text", "plain text"),
        ("{{.Name}}", "reg/app:1"),
        ("a  {{- .Name -}}  \n b", "areg/app:1b"),
        ("{{/* a comment */}}x{{- /* trimmed */ -}} y", "xy"),
        ('{{.Name | printf "%s!"}}', "reg/app:1!"),
        ("{{.List}} {{.Map}} {{.Empty}}", "[a b c] map[a:1 b:2] []"),
        ("{{range .List}}<{{.}}>{{end}}", "<a><b><c>"),
        ("{{range $i, $e := .List}}{{$i}}:{{$e}} {{end}}", "0:a 1:b 2:c "),
        ("{{range $k, $v := .Map}}{{$k}}={{$v}};{{end}}", "a=1;b=2;"),
        ("{{range .Empty}}x{{else}}none{{end}}", "none"),
        ("{{range 3}}{{.}}{{end}}", "012"),
        ('{{range .List}}{{if eq . "b"}}{{break}}{{end}}{{.}}{{end}}', "a"),
        ('{{range .List}}{{if eq . "b"}}{{continue}}{{end}}{{.}}{{end}}', "ac"),
        ("{{if .Zero}}yes{{else if .Empty}}empty{{else}}no{{end}}", "no"),
        ("{{with .Platform}}{{.OS}}/{{.Architecture}}/{{.Variant}}{{end}}", "linux/arm/v7"),
        ("{{with .Empty}}x{{else with .Name}}{{.}}{{end}}", "reg/app:1"),
        ("{{$n := .Name}}{{range .List}}{{$n}}{{end}}", "reg/app:1reg/app:1reg/app:1"),
        ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
        ("{{range .List}}{{$.Name}}{{break}}{{end}}", "reg/app:1"),
        ('{{and 1 0 2}} {{and 1 2}} {{or 0 "" "z"}} {{not .Empty}}', "0 2 z true"),
        (
            '{{eq .Zero 0}} {{ne .Name "x"}} {{lt 1 2}} {{le 2 2}} {{gt 1.5 2.5}} {{ge "b" "a"}}',
            "true true true true false true",
        ),
        ('{{eq .Name "x" "reg/app:1"}}', "true"),
        ("{{len .List}} {{len .Map}} {{len .Name}} {{len .Empty}}", "3 2 9 0"),
        ('{{index .List 1}} {{index .Map "a"}} {{index .Labels "none"}}|', "b 1 |"),
        ('{{index .Map "none"}} {{.Map.none}}', "<nil> <no value>"),
        ("{{slice .List 1}} {{slice .Name 0 3}}", "[b c] reg"),
        ('{{print 1 2 "a" 3 "b"}}', "1 2a3b"),
        ('{{println 1 "a"}}', "1 a\n"),
        (
            '{{printf "%d|%5d|%-5d|%05d|%x|%X|%o|%b|%c|%U" 42 42 42 42 255 255 8 5 65 65}}',
            "42|   42|42   |00042|ff|FF|10|101|A|U+0041",
        ),
        (
            '{{printf "%s|%q|%v|%10s|%-4s|%.2s|%x" .Name .Name .List "r" "l" "abc" "hi"}}',
            'reg/app:1|"reg/app:1"|[a b c]|         r|l   |ab|6869',
        ),
        (
            '{{printf "%t %v %.2f %e %g %v" true .Float 3.14159 1234.5 0.5 .Big}}',
            "true 1.5 3.14 1.234500e+03 0.5 1e+06",
        ),
        (
            '{{printf "%v|%+v" .Platform .Platform}}',
            "{arm linux  [] v7}|{Architecture:arm OS:linux OSVersion: OSFeatures:[] Variant:v7}",
        ),
        ('{{printf "%d %s" "x" 3}}', "%!d(string=x) %!s(int=3)"),
        ('{{printf "%d %d" 1}}', "1 %!d(MISSING)"),
        ('{{printf "%d" 1 2}}', "1%!(EXTRA int=2)"),
        ('{{printf "100%%"}}', "100%"),
        ("{{json .Map}}", '{\n  "a": "1",\n  "b": "2"\n}'),
        (
            "{{json .Platform}}",
            '{\n  "architecture": "arm",\n  "os": "linux",\n  "variant": "v7"\n}',
        ),
        ("{{json .Html}}", '"\\u003ca\\u0026b\\u003e"'),
        ("{{json .Big}} {{json .Empty}} {{json .Labels}}", '1000000 [] {\n  "x": "y"\n}'),
        ('{{html .Html}} {{urlquery "a b&c"}} {{js "it\'s"}}', "&lt;a&amp;b&gt; a+b%26c it\\'s"),
        (
            "{{`raw\\n`}} {{\"esc\\t\"}} {{'a'}} {{0x10}} {{1e3}} {{-2}}",
            "raw\\n esc\t 97 16 1000 -2",
        ),
        (
            '{{define "T"}}[{{.}}]{{end}}{{template "T" .Name}}{{block "B" 1}}<{{.}}>{{end}}',
            "[reg/app:1]<1>",
        ),
        ("{{(index .List 2)}} {{(.Platform).OS}}", "c linux"),
        (
            "{{.Created}} {{json .Created}}",
            '2024-05-01 10:00:00.5 +0000 UTC "2024-05-01T10:00:00.5Z"',
        ),
        ('{{.Platform.OS | len | printf "%03d"}}', "005"),
    ],
)
def test_render_as_go(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.Name", "template: :1: unclosed action"),
        ("{{foo}}", 'template: :1: function "foo" not defined'),
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{else}}", "template: :1: unexpected {{else}}"),
        ("{{if .Name}}x", "template: :1: unexpected EOF"),
        ("{{if}}{{end}}", "template: :1: missing value for if"),
        ("a\nb\n{{$x}}", 'template: :3: undefined variable "$x"'),
        ("{{break}}", "template: :1: {{break}} outside {{range}}"),
        ('{{"abc}}', "template: :1: unterminated quoted string"),
        ("{{/* x }}", "template: :1: unclosed comment"),
        ("{{.Name)}}", "template: :1: unexpected right paren"),
        (
            "{{.Name.Nope}}",
            'template: :1:2: executing "" at <.Name.Nope>: '
            "can't evaluate field Nope in type string",
        ),
        (
            "x\n  {{.Platform.Nope}}",
            'template: :2:4: executing "" at <.Platform.Nope>: '
            "can't evaluate field Nope in type v1.Platform",
        ),
        (
            "{{index .List 5}}",
            'template: :1:2: executing "" at <index .List 5>: '
            "error calling index: index out of range: 5",
        ),
        (
            "{{len .Zero}}",
            'template: :1:2: executing "" at <len .Zero>: error calling len: len of type int',
        ),
        (
            "{{len}}",
            'template: :1:2: executing "" at <len>: wrong number of args for len: want 1 got 0',
        ),
        (
            '{{eq .Zero "0"}}',
            'template: :1:2: executing "" at <eq .Zero "0">: '
            "error calling eq: incompatible types for comparison",
        ),
        (
            "{{range true}}{{end}}",
            'template: :1:8: executing "" at <true>: range can\'t iterate over true',
        ),
        (
            "{{.Name 1}}",
            'template: :1:2: executing "" at <.Name>: Name is not a method but has arguments',
        ),
    ],
)
def test_errors_as_go(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, DATA)
    assert str(caught.value) == message
