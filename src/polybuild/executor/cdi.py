"""CDI devices for `RUN --device=NAME` (the Container Device Interface, as BuildKit >= 0.20).

A host describes its devices in CDI spec files (JSON or YAML) under /etc/cdi and
/var/run/cdi (or the colon-separated directories in $POLYBUILD_CDI_SPEC_DIRS); each names
devices `vendor.com/class=name` and the edits a container using them gets: environment
variables, device nodes, bind mounts, hooks and extra groups. A RUN step asks for a device by
its qualified name, by its kind (`vendor.com/class`: the first such device; `kind=*`: all of
them) or by the class annotation `org.mobyproject.buildkit.device.class`, as BuildKit's CDI
manager resolves them; the build must be granted it (`--allow device`, `--allow
device=NAME[,alias=A]`) unless the spec marks it `org.mobyproject.buildkit.device.autoallow`.

Spec files are the host administrator's configuration (root-owned directories), read as such:
a file that does not parse is an error naming it, not a device quietly missing.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from polybuild.errors import ExecutionError, UsageError
from polybuild.graph.devices import DeviceGrants, DeviceRequest, parse_device_grant

DEFAULT_SPEC_DIRS = ("/etc/cdi", "/var/run/cdi")
SPEC_DIRS_ENV = "POLYBUILD_CDI_SPEC_DIRS"
CLASS_ANNOTATION = "org.mobyproject.buildkit.device.class"
AUTOALLOW_ANNOTATION = "org.mobyproject.buildkit.device.autoallow"
_KIND = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9.-]*[a-zA-Z0-9]?/[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.:-]*$")


class _DeviceNodeJSON(msgspec.Struct, rename="camel", omit_defaults=True):
    path: str
    host_path: str = ""
    type: str = ""
    major: int | None = None
    minor: int | None = None
    file_mode: int | None = None
    permissions: str = ""
    uid: int | None = None
    gid: int | None = None


class _MountJSON(msgspec.Struct, rename="camel", omit_defaults=True):
    host_path: str
    container_path: str
    options: list[str] = []
    type: str = ""


class _HookJSON(msgspec.Struct, rename="camel", omit_defaults=True):
    hook_name: str
    path: str
    args: list[str] = []
    env: list[str] = []
    timeout: int | None = None


class _EditsJSON(msgspec.Struct, rename="camel", omit_defaults=True):
    env: list[str] = []
    device_nodes: list[_DeviceNodeJSON] = []
    mounts: list[_MountJSON] = []
    hooks: list[_HookJSON] = []
    additional_gids: list[int] = msgspec.field(default_factory=list, name="additionalGIDs")


class _DeviceJSON(msgspec.Struct, rename="camel"):
    name: str
    container_edits: _EditsJSON = msgspec.field(default_factory=_EditsJSON)
    annotations: dict[str, str] = {}


class _SpecJSON(msgspec.Struct, rename="camel"):
    cdi_version: str
    kind: str
    devices: list[_DeviceJSON]
    container_edits: _EditsJSON = msgspec.field(default_factory=_EditsJSON)
    annotations: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class DeviceNode:
    """A device node the container gets: its path inside, the host's node and its numbers."""

    path: str
    type: str
    major: int
    minor: int
    file_mode: int | None = None
    permissions: str = "rwm"
    uid: int | None = None
    gid: int | None = None


@dataclass(frozen=True, slots=True)
class ContainerEdits:
    """What using one or more CDI devices changes in a container's runtime spec."""

    env: tuple[str, ...] = ()
    device_nodes: tuple[DeviceNode, ...] = ()
    mounts: tuple[tuple[str, str, tuple[str, ...], str], ...] = ()  # host, inside, opts, type
    hooks: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], int | None], ...] = ()
    additional_gids: tuple[int, ...] = ()

    def __add__(self, other: ContainerEdits) -> ContainerEdits:
        return ContainerEdits(
            self.env + other.env,
            self.device_nodes + other.device_nodes,
            self.mounts + other.mounts,
            self.hooks + other.hooks,
            self.additional_gids + other.additional_gids,
        )


@dataclass(frozen=True, slots=True)
class CdiDevice:
    """One device of a spec: `kind=name`, its annotations and the edits it brings (the
    spec's own edits included)."""

    qualified: str
    annotations: Mapping[str, str]
    edits: ContainerEdits

    @property
    def kind(self) -> str:
        return self.qualified.partition("=")[0]

    @property
    def auto_allowed(self) -> bool:
        return self.annotations.get(AUTOALLOW_ANNOTATION, "").lower() in ("1", "t", "true")


def spec_dirs() -> tuple[Path, ...]:
    configured = os.environ.get(SPEC_DIRS_ENV)
    if configured is not None:
        return tuple(Path(p) for p in configured.split(":") if p)
    return tuple(Path(p) for p in DEFAULT_SPEC_DIRS)


def load_devices(dirs: Sequence[Path] | None = None) -> tuple[CdiDevice, ...]:
    """Every device of the spec files (`*.json`, `*.yaml`, `*.yml`) in `dirs`, in order;
    a later directory's device of the same name replaces an earlier one's (CDI's rule)."""
    found: dict[str, CdiDevice] = {}
    for directory in spec_dirs() if dirs is None else dirs:
        try:
            names = sorted(os.listdir(directory))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ExecutionError(f"CDI spec directory {directory}: {exc.strerror}") from None
        for name in names:
            if name.endswith((".json", ".yaml", ".yml")):
                for device in _load_spec(directory / name):
                    found[device.qualified] = device
    return tuple(found.values())


def _load_spec(path: Path) -> list[CdiDevice]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ExecutionError(f"CDI spec {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".json":
            spec = msgspec.json.decode(raw, type=_SpecJSON)
        else:
            from msgspec import yaml  # PyYAML underneath: loaded only for a YAML spec

            spec = yaml.decode(raw, type=_SpecJSON)
    except (msgspec.DecodeError, ValueError) as exc:
        raise ExecutionError(f"CDI spec {path}: {exc}") from None
    if not _KIND.match(spec.kind):
        raise ExecutionError(f"CDI spec {path}: invalid kind {spec.kind!r} (vendor.com/class)")
    common = _edits(spec.container_edits, path)
    devices = []
    for device in spec.devices:
        if not _NAME.match(device.name):
            raise ExecutionError(f"CDI spec {path}: invalid device name {device.name!r}")
        devices.append(
            CdiDevice(
                f"{spec.kind}={device.name}",
                {**spec.annotations, **device.annotations},
                common + _edits(device.container_edits, path),
            )
        )
    return devices


def _edits(raw: _EditsJSON, path: Path) -> ContainerEdits:
    return ContainerEdits(
        env=tuple(raw.env),
        device_nodes=tuple(_device_node(n, path) for n in raw.device_nodes),
        mounts=tuple(
            (m.host_path, m.container_path, tuple(m.options), m.type or "bind") for m in raw.mounts
        ),
        hooks=tuple(
            (h.hook_name, h.path, tuple(h.args), tuple(h.env), h.timeout) for h in raw.hooks
        ),
        additional_gids=tuple(raw.additional_gids),
    )


def _device_node(node: _DeviceNodeJSON, path: Path) -> DeviceNode:
    if not node.path.startswith("/"):
        raise ExecutionError(f"CDI spec {path}: device node path {node.path!r} is not absolute")
    kind, major, minor = node.type, node.major, node.minor
    if major is None or minor is None or not kind:
        host = node.host_path or node.path
        try:
            info = os.stat(host)
        except OSError as exc:
            raise ExecutionError(f"CDI spec {path}: device node {host}: {exc.strerror}") from None
        if stat.S_ISCHR(info.st_mode):
            found = "c"
        elif stat.S_ISBLK(info.st_mode):
            found = "b"
        else:
            raise ExecutionError(f"CDI spec {path}: {host} is not a device node")
        kind = kind or found
        major = os.major(info.st_rdev) if major is None else major
        minor = os.minor(info.st_rdev) if minor is None else minor
    if kind not in ("c", "b", "u", "p"):
        raise ExecutionError(f"CDI spec {path}: device node {node.path}: unknown type {kind!r}")
    return DeviceNode(
        node.path, kind, major, minor, node.file_mode, node.permissions or "rwm", node.uid, node.gid
    )


def resolve(request: DeviceRequest, devices: Sequence[CdiDevice]) -> list[CdiDevice]:
    """The devices a request names (BuildKit's rules: `kind=name`, `kind` = its first device,
    `kind=*` = all of them, else the class annotation)."""
    kind, sep, name = request.name.partition("=")
    found: list[CdiDevice] = []
    if _KIND.match(kind):
        if not sep or not name:
            found = [d for d in devices if d.kind == kind][:1]
        elif name == "*":
            found = [d for d in devices if d.kind == kind]
        else:
            found = [d for d in devices if d.qualified == request.name]
    if not found:
        found = [d for d in devices if d.annotations.get(CLASS_ANNOTATION) == request.name]
    return found


def devices_for(
    requests: Sequence[DeviceRequest],
    grants: DeviceGrants,
    devices: Sequence[CdiDevice],
    warn: Any = None,
) -> tuple[CdiDevice, ...]:
    """The devices a RUN step gets, checked against the build's grants: a required device
    that is not registered and a device neither granted nor auto-allowed are UsageErrors
    worded as BuildKit's."""
    chosen: dict[str, CdiDevice] = {}
    forbidden: list[str] = []
    granted: set[str] = set()
    for wanted in grants.names.values():
        granted.update(d.qualified for d in resolve(DeviceRequest(wanted), devices))
    for request in requests:
        aliased = grants.names.get(request.name)
        target = DeviceRequest(aliased, request.required) if aliased else request
        found = resolve(target, devices)
        if not found:
            if request.required:
                raise UsageError(f'required device "{request.name}" is not registered')
            if warn is not None:
                warn(f'optional device "{request.name}" is not registered')
            continue
        for device in found:
            if not (grants.all or aliased or device.qualified in granted or device.auto_allowed):
                forbidden.append(device.qualified)
            chosen[device.qualified] = device
    if forbidden:
        what = (
            f"device {forbidden[0]} is"
            if len(forbidden) == 1
            else ("devices " + ", ".join(forbidden) + " are")
        )
        raise UsageError(
            f"{what} requested by the build but not allowed",
            hint="grant it with --allow device (every device) or --allow device=NAME",
        )
    return tuple(chosen.values())


def apply_edits(spec: dict[str, Any], edits: ContainerEdits) -> None:
    """Add the edits to an OCI runtime spec (config.json as a dict)."""
    process = spec["process"]
    process["env"] = [*process.get("env", []), *edits.env]
    if edits.additional_gids:
        user = process["user"]
        user["additionalGids"] = [*user.get("additionalGids", []), *edits.additional_gids]
    linux = spec["linux"]
    nodes = linux.setdefault("devices", [])
    rules = linux.setdefault("resources", {}).setdefault("devices", [])
    for node in edits.device_nodes:
        entry: dict[str, Any] = {"path": node.path, "type": node.type}
        if node.type != "p":
            entry |= {"major": node.major, "minor": node.minor}
        for key, value in (("fileMode", node.file_mode), ("uid", node.uid), ("gid", node.gid)):
            if value is not None:
                entry[key] = value
        nodes.append(entry)
        if node.type in ("c", "b"):
            rules.append(
                {
                    "allow": True,
                    "type": node.type,
                    "major": node.major,
                    "minor": node.minor,
                    "access": node.permissions,
                }
            )
    for host, inside, options, kind in edits.mounts:
        spec["mounts"].append(
            {"destination": inside, "type": kind, "source": host, "options": list(options)}
        )
    for name, path, args, env, timeout in edits.hooks:
        hook: dict[str, Any] = {"path": path}
        if args:
            hook["args"] = list(args)
        if env:
            hook["env"] = list(env)
        if timeout is not None:
            hook["timeout"] = timeout
        spec.setdefault("hooks", {}).setdefault(name, []).append(hook)


__all__ = [
    "CdiDevice",
    "ContainerEdits",
    "DeviceGrants",
    "DeviceNode",
    "apply_edits",
    "devices_for",
    "load_devices",
    "parse_device_grant",
    "resolve",
    "spec_dirs",
]
