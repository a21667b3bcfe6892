"""CDI device requests of RUN steps (`RUN --device=NAME[,required]`), as the Dockerfile
gives them; executor/cdi resolves them against the host's CDI specs."""

from __future__ import annotations

from dataclasses import dataclass

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


__all__ = ["DeviceRequest", "parse_device_request"]
