"""CDI device requests of RUN steps (`RUN --device=NAME[,required]`), as the Dockerfile
gives them, and the `--allow device[=NAME[,alias=A]]` grants a build holds; executor/cdi
resolves both against the host's CDI specs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from polybuild.errors import UsageError


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """`RUN --device=NAME[,required]`: a device name as the Dockerfile gives it."""

    name: str
    required: bool = False


def parse_device_request(value: str) -> DeviceRequest:
    """`--device=` of RUN: `NAME`, `name=NAME`, `required`, `required=BOOL` (BuildKit's
    ParseDevice, whose names may themselves hold `=`: `vendor.com/gpu=0`)."""
    name = ""
    required = False
    for item in value.split(","):
        key, sep, val = item.partition("=")
        lowered = key.lower()
        if lowered == "required":
            if not sep:
                required = True
                continue
            if val.lower() not in ("1", "t", "true", "0", "f", "false"):
                raise UsageError(f"--device={value}: invalid value for required: {val}")
            required = val.lower() in ("1", "t", "true")
        elif lowered == "name" and sep:
            if name:
                raise UsageError(f"--device={value}: device name already set to {name}")
            name = val
        elif not name:
            name = item
        elif not sep:
            raise UsageError(f"--device={value}: invalid field {item!r} must be a key=value pair")
        else:
            raise UsageError(f"--device={value}: unexpected key {key!r} in {item!r}")
    if not name:
        raise UsageError(f"--device={value}: no device name")
    return DeviceRequest(name, required)


@dataclass(frozen=True, slots=True)
class DeviceGrants:
    """The `--allow device...` entitlements: every device, or named ones (alias -> name)."""

    all: bool = False
    names: Mapping[str, str] = field(default_factory=dict)  # requested name -> granted name

    @classmethod
    def from_entitlements(cls, entitlements: Iterable[str]) -> DeviceGrants:
        names: dict[str, str] = {}
        for item in entitlements:
            key, _, rest = item.partition("=")
            if key != "device":
                continue
            if not rest:
                return cls(all=True)
            name, alias = parse_device_grant(rest)
            names[alias or name] = name
        return cls(names=names)


def parse_device_grant(value: str) -> tuple[str, str]:
    """`NAME[,alias=ALIAS]` of `--allow device=...`: (name, alias or "")."""
    name, *fields = value.split(",")
    alias = ""
    for item in fields:
        key, sep, val = item.partition("=")
        if not sep:
            raise UsageError(f"--allow device={value}: invalid device config {item!r}")
        if key != "alias":
            raise UsageError(f"--allow device={value}: unknown device config key {key!r}")
        alias = val
    if not name:
        raise UsageError(f"--allow device={value}: no device name")
    return name, alias


__all__ = ["DeviceGrants", "DeviceRequest", "parse_device_grant", "parse_device_request"]
