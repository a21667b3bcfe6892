"""The `RUN --mount=...` grammar: bind, cache, tmpfs, secret and ssh mounts with all keys."""

from __future__ import annotations

import csv
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from polybuild.dockerfile.flags import FlagError, suggest

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_BOOL_KEYS = frozenset({"readonly", "ro", "readwrite", "rw", "required"})
_KEYS = frozenset(
    {"type", "from", "source", "src", "target", "dst", "destination", "id", "sharing", "mode"}
    | {"uid", "gid", "size", "env"}
    | _BOOL_KEYS
)
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtTpP]?)(i?[bB])?$")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


@dataclass(frozen=True, slots=True)
class MountSpec:
    """One `--mount` as written and expanded, with BuildKit's defaults filled in."""

    type: str
    target: str
    source: str = ""
    from_: str = ""
    readonly: bool = False
    id: str = ""
    sharing: str = "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    size: int = 0
    env: str = ""


def _identity(word: str) -> str:
    return word


def _parse_bool(key: str, value: str | None) -> bool:
    if value is None:
        return True
    lowered = value.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise FlagError(f"invalid value for {key}: {value}")


def _parse_int(key: str, value: str, base: int = 10) -> int:
    try:
        return int(value, base)
    except ValueError:
        raise FlagError(f"invalid value for {key}: {value}") from None


def _parse_size(value: str) -> int:
    match = _SIZE.match(value.strip())
    if match is None:
        raise FlagError(f"invalid value for size: {value}", hint="write sizes like 64m or 1g")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _fields(value: str) -> list[str]:
    try:
        rows = list(csv.reader([value], strict=True))
    except csv.Error as exc:
        raise FlagError(f"failed to parse --mount={value}: {exc}") from None
    return rows[0] if rows else []


def parse_mount(
    value: str, expand: Callable[[str], str] = _identity, *, ssh_index: int = 0
) -> MountSpec:
    """Parse one `--mount` value; `expand` applies the stage's variables to each value."""
    raw: dict[str, str | None] = {}
    for field in _fields(value):
        key, has_value, item = field.partition("=")
        key = key.strip().lower()
        if key not in _KEYS:
            guess = suggest(key, sorted(_KEYS))
            raise FlagError(
                f"unexpected key '{key}' in '{field}'",
                hint=f"did you mean {guess}?" if guess else None,
            )
        if not has_value and key not in _BOOL_KEYS:
            raise FlagError(f"invalid field '{field}' must be a key=value pair")
        raw[key] = expand(item) if has_value else None
    mount_type = (raw.get("type") or "bind").lower()
    if mount_type not in MOUNT_TYPES:
        guess = suggest(mount_type, MOUNT_TYPES)
        raise FlagError(
            f"invalid --mount type={mount_type}",
            hint=(f"did you mean {guess}? " if guess else "")
            + "mount types are: "
            + ", ".join(MOUNT_TYPES),
        )
    target = raw.get("target") or raw.get("dst") or raw.get("destination") or ""
    source = raw.get("source") or raw.get("src") or ""
    readonly = mount_type == "bind"
    for key in ("readonly", "ro"):
        if key in raw:
            readonly = _parse_bool(key, raw[key])
    for key in ("readwrite", "rw"):
        if key in raw:
            readonly = not _parse_bool(key, raw[key])
    sharing = (raw.get("sharing") or "shared").lower()
    if sharing not in SHARING_MODES:
        raise FlagError(
            f"unsupported sharing value {sharing!r}", hint="use shared, private or locked"
        )
    mode = _parse_int("mode", raw["mode"] or "", 8) if raw.get("mode") is not None else None
    uid = _parse_int("uid", raw["uid"] or "") if raw.get("uid") is not None else None
    gid = _parse_int("gid", raw["gid"] or "") if raw.get("gid") is not None else None
    size = _parse_size(raw["size"] or "") if raw.get("size") else 0
    required = _parse_bool("required", raw["required"]) if "required" in raw else False
    mount_id = raw.get("id") or ""
    env = raw.get("env") or ""
    if mount_type == "secret":
        if not mount_id:
            if not target:
                raise FlagError(
                    "one of source, target required",
                    hint="give the secret an id= (and optionally target= or env=)",
                )
            mount_id = posixpath.basename(target)
        if not target and not env:
            target = "/run/secrets/" + mount_id
        mode = 0o400 if mode is None else mode
    elif mount_type == "ssh":
        mount_id = mount_id or "default"
        target = target or f"/run/buildkit/ssh_agent.{ssh_index}"
        mode = 0o600 if mode is None else mode
    elif not target:
        raise FlagError(
            f"mount type={mount_type} requires a target", hint="add target=/path/in/container"
        )
    if mount_type == "cache":
        mount_id = mount_id or target
        mode = 0o755 if mode is None else mode
    if mount_type != "cache" and raw.get("sharing") is not None:
        raise FlagError("sharing is only allowed for cache mounts")
    if raw.get("from") and mount_type not in ("bind", "cache"):
        raise FlagError(f"from is not allowed for {mount_type} mounts")
    return MountSpec(
        type=mount_type,
        target=target,
        source=source,
        from_=raw.get("from") or "",
        readonly=readonly,
        id=mount_id,
        sharing=sharing,
        mode=mode,
        uid=uid,
        gid=gid,
        required=required,
        size=size,
        env=env,
    )
