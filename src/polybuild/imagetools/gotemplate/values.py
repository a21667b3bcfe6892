"""Go values as templates see them: structs with Go field names and JSON tags, maps, slices,
nil and "no value"; printed as Go's fmt %v and marshalled as Go's encoding/json."""

from __future__ import annotations

import base64
import decimal
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class _NoValue:
    """Go's invalid reflect.Value: a map key that is not there (prints `<no value>`)."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


@dataclass(frozen=True, slots=True)
class Field:
    """One struct field: its Go name, its JSON name and omitempty, and its value."""

    name: str
    value: Any
    json_name: str = ""
    omitempty: bool = False
    embedded: bool = False  # an anonymous struct field: its fields are promoted and inlined


@dataclass(frozen=True, slots=True)
class Struct:
    """A Go struct value (`type_name` as Go prints it, e.g. v1.Descriptor); `methods` are
    niladic methods a template may call (Go's `.SBOM`)."""

    type_name: str
    fields: tuple[Field, ...]
    methods: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    pointer: bool = False  # a *T: %v prints &{...}

    def lookup(self, name: str) -> tuple[bool, Any]:
        """(found, value) of a field, a promoted field of an embedded struct, or a method."""
        for item in self.fields:
            if item.name == name:
                return True, item.value
        if name in self.methods:
            return True, self.methods[name]()
        for item in self.fields:
            if item.embedded and isinstance(item.value, Struct):
                found, value = item.value.lookup(name)
                if found:
                    return True, value
        return False, None


class GoMap(dict[str, Any]):
    """A Go map with a known element type: `zero` is what `index` gives for a missing key."""

    def __init__(self, items: Mapping[str, Any], type_name: str, zero: Any) -> None:
        super().__init__(items)
        self.type_name = type_name
        self.zero = zero


@dataclass(frozen=True, slots=True)
class Nil:
    """A nil slice or map of a known type: prints [] or map[], marshals as null."""

    type_name: str

    @property
    def printed(self) -> str:
        return "map[]" if self.type_name.startswith("map[") else "[]"

    def __len__(self) -> int:
        return 0


NIL_STRINGS = Nil("[]string")
NIL_STRING_MAP = Nil("map[string]string")


@dataclass(frozen=True, slots=True)
class Time:
    """A time.Time, kept as the RFC 3339 text encoding/json writes for it."""

    text: str

    def go_string(self) -> str:
        """Time.String(): `2006-01-02 15:04:05.999999999 -0700 MST` (UTC for Z)."""
        match = _RFC3339.match(self.text)
        if match is None:
            return self.text
        date, clock, fraction, zone = match.groups()
        if zone == "Z":
            offset, name = "+0000", "UTC"
        else:
            offset = zone.replace(":", "")
            name = offset
        return f"{date} {clock}{fraction or ''} {offset} {name}"


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def type_name(value: Any) -> str:
    """The Go type of a value, as Go's error messages name it."""
    if isinstance(value, Struct):
        return ("*" if value.pointer else "") + value.type_name
    if isinstance(value, GoMap | Nil):
        return value.type_name
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "[]uint8"
    if isinstance(value, Time):
        return "time.Time"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    if callable(value):
        return "func"
    return "<nil>"


def format_float(value: float, *, json_style: bool = False) -> str:
    """float64 as Go's %v prints it (strconv's shortest 'g': an exponent when it is < -4 or
    >= 6), or as encoding/json writes it (`json_style`: only below 1e-6 or from 1e21)."""
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, numerals, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, numerals))
    point = len(text) + exponent  # where the decimal point goes in `text`
    exp = point - 1
    use_exp = abs(value) < 1e-6 or abs(value) >= 1e21 if json_style else exp < -4 or exp >= 6
    if use_exp:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        width = 1 if json_style else 2
        result = f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):0{width}d}"
    elif point <= 0:
        result = "0." + "0" * -point + text
    elif point >= len(text):
        result = text + "0" * (point - len(text))
    else:
        result = text[:point] + "." + text[point:]
    return ("-" if sign else "") + result


def go_print(value: Any, *, plus: bool = False, depth: int = 0) -> str:
    """A value as Go's fmt %v prints it (%+v with `plus`): structs {a b}, maps map[k:v] with
    sorted keys, slices [a b], nil as <nil>."""
    if value is NO_VALUE:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, Nil):
        return value.printed
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Time):
        return value.go_string()
    if isinstance(value, bytes):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, Struct):
        parts = []
        for item in value.fields:
            text = go_print(item.value, plus=plus, depth=depth + 1)
            parts.append(f"{item.name}:{text}" if plus else text)
        return ("&" if value.pointer else "") + "{" + " ".join(parts) + "}"
    if isinstance(value, Mapping):
        return (
            "map["
            + " ".join(
                f"{k}:{go_print(value[k], plus=plus, depth=depth + 1)}" for k in sorted(value)
            )
            + "]"
        )
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_print(v, plus=plus, depth=depth + 1) for v in value) + "]"
    return str(value)


def is_empty(value: Any) -> bool:
    """encoding/json's omitempty: false, 0, "", nil, and empty maps, slices and strings."""
    if value is None or value is NO_VALUE or isinstance(value, Nil):
        return True
    if isinstance(value, bool | int | float):
        return not value
    if isinstance(value, str | bytes | Mapping | list | tuple):
        return len(value) == 0
    return False


def to_plain(value: Any) -> Any:
    """A value as plain JSON data in encoding/json's shape: struct fields in order under their
    JSON names (omitempty honoured, embedded structs inlined), map keys sorted."""
    if isinstance(value, Struct):
        out: dict[str, Any] = {}
        for item in value.fields:
            if item.embedded and isinstance(item.value, Struct):
                out.update(to_plain(item.value))
                continue
            if item.omitempty and not isinstance(item.value, Struct) and is_empty(item.value):
                continue
            out[item.json_name or item.name] = to_plain(item.value)
        return out
    if isinstance(value, Mapping):
        return {str(k): to_plain(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, Time):
        return value.text
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if value is NO_VALUE or isinstance(value, Nil):
        return None
    return value


def marshal_indent(value: Any) -> str:
    """json.MarshalIndent(v, "", "  ") as Go writes it, HTML characters escaped."""
    text = json.dumps(to_plain(value), indent=2, ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def from_json(value: Any) -> Any:
    """Decoded JSON as Go decodes it into `any`: every number a float64."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [from_json(v) for v in value]
    return value
