"""CDI device specs: parsing (JSON and YAML), BuildKit's name resolution and grant rules, and
the runtime-spec edits a device brings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from polybuild.errors import ExecutionError, UsageError
from polybuild.executor.cdi import (
    ContainerEdits,
    DeviceGrants,
    apply_edits,
    devices_for,
    load_devices,
    parse_device_grant,
    resolve,
)
from polybuild.graph.devices import DeviceRequest, parse_device_request

NULL = os.stat("/dev/null")

YAML_SPEC = """\
cdiVersion: "0.6.0"
kind: "vendor1.com/device"
containerEdits:
  env: [COMMON=1]
devices:
- name: foo
  containerEdits:
    env: [FOO=injected]
    deviceNodes:
    - path: /dev/pbtest
      hostPath: /dev/null
- name: bar
  annotations:
    org.mobyproject.buildkit.device.autoallow: "true"
    org.mobyproject.buildkit.device.class: gpu
  containerEdits:
    env: [BAR=1]
"""


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    (tmp_path / "vendor1.yaml").write_text(YAML_SPEC)
    (tmp_path / "other.json").write_text(
        json.dumps(
            {
                "cdiVersion": "0.6.0",
                "kind": "example.org/net",
                "devices": [
                    {
                        "name": "tap0",
                        "containerEdits": {
                            "mounts": [{"hostPath": "/etc/hostname", "containerPath": "/hn"}],
                            "additionalGIDs": [44],
                        },
                    }
                ],
            }
        )
    )
    (tmp_path / "README").write_text("not a spec")
    return tmp_path


def test_specs_load_from_yaml_and_json_with_common_edits(spec_dir: Path) -> None:
    devices = {d.qualified: d for d in load_devices([spec_dir])}
    assert set(devices) == {"vendor1.com/device=foo", "vendor1.com/device=bar",
                            "example.org/net=tap0"}  # fmt: skip
    foo = devices["vendor1.com/device=foo"]
    assert foo.edits.env == ("COMMON=1", "FOO=injected")
    (node,) = foo.edits.device_nodes
    assert (node.path, node.type) == ("/dev/pbtest", "c")
    assert (node.major, node.minor) == (os.major(NULL.st_rdev), os.minor(NULL.st_rdev))
    assert devices["vendor1.com/device=bar"].auto_allowed and not foo.auto_allowed
    assert devices["example.org/net=tap0"].edits.additional_gids == (44,)


def test_a_broken_spec_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("cdiVersion: 1\nkind: [\n")
    with pytest.raises(ExecutionError, match="bad.yaml"):
        load_devices([tmp_path])
    (tmp_path / "bad.yaml").write_text('cdiVersion: "0.6.0"\nkind: nokind\ndevices: []\n')
    with pytest.raises(ExecutionError, match="invalid kind"):
        load_devices([tmp_path])


def test_missing_directories_are_no_devices(tmp_path: Path) -> None:
    assert load_devices([tmp_path / "none"]) == ()


def test_names_resolve_as_buildkit(spec_dir: Path) -> None:
    devices = load_devices([spec_dir])

    def names(request: str) -> list[str]:
        return [d.qualified for d in resolve(DeviceRequest(request), devices)]

    assert names("vendor1.com/device=foo") == ["vendor1.com/device=foo"]
    assert names("vendor1.com/device") == ["vendor1.com/device=foo"]  # the kind's first
    assert names("vendor1.com/device=*") == ["vendor1.com/device=foo", "vendor1.com/device=bar"]
    assert names("gpu") == ["vendor1.com/device=bar"]  # by class annotation
    assert names("vendor1.com/device=nope") == []


def test_grants(spec_dir: Path) -> None:
    devices = load_devices([spec_dir])
    foo = [DeviceRequest("vendor1.com/device=foo", required=True)]
    with pytest.raises(UsageError, match="device vendor1.com/device=foo is requested by the "
                       "build but not allowed"):  # fmt: skip
        devices_for(foo, DeviceGrants(), devices)
    assert devices_for(foo, DeviceGrants(all=True), devices)[0].qualified.endswith("foo")
    named = DeviceGrants.from_entitlements(["device=vendor1.com/device=foo"])
    assert devices_for(foo, named, devices)
    # an alias: the Dockerfile asks for "mydev", the grant maps it to the real device
    aliased = DeviceGrants.from_entitlements(["device=example.org/net=tap0,alias=mydev"])
    (got,) = devices_for([DeviceRequest("mydev", True)], aliased, devices)
    assert got.qualified == "example.org/net=tap0"
    # auto-allowed by its spec's annotation
    assert devices_for([DeviceRequest("gpu", True)], DeviceGrants(), devices)
    with pytest.raises(UsageError, match='required device "x.com/y=z" is not registered'):
        devices_for([DeviceRequest("x.com/y=z", True)], DeviceGrants(all=True), devices)
    assert devices_for([DeviceRequest("x.com/y=z")], DeviceGrants(all=True), devices) == ()
    assert DeviceGrants.from_entitlements(["network.host", "device"]).all


def test_request_and_grant_parsing() -> None:
    assert parse_device_request("vendor.com/gpu=0") == DeviceRequest("vendor.com/gpu=0")
    assert parse_device_request("name=a.com/b=c,required") == DeviceRequest("a.com/b=c", True)
    assert parse_device_request("a.com/b,required=false") == DeviceRequest("a.com/b")
    for bad in ("a.com/b,required=maybe", "a.com/b,name=c", "a.com/b,color=red", ""):
        with pytest.raises(UsageError):
            parse_device_request(bad)
    assert parse_device_grant("a.com/b=c,alias=x") == ("a.com/b=c", "x")
    with pytest.raises(UsageError, match="unknown device config key"):
        parse_device_grant("a.com/b=c,colour=x")


def test_edits_go_into_the_runtime_spec(spec_dir: Path) -> None:
    devices = {d.qualified: d for d in load_devices([spec_dir])}
    edits = ContainerEdits()
    for name in ("vendor1.com/device=foo", "example.org/net=tap0"):
        edits += devices[name].edits
    spec: dict[str, object] = {
        "process": {"env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}},
        "mounts": [],
        "linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]}},
    }
    apply_edits(spec, edits)
    assert spec["process"] == {
        "env": ["PATH=/bin", "COMMON=1", "FOO=injected"],
        "user": {"uid": 0, "gid": 0, "additionalGids": [44]},
    }
    major, minor = os.major(NULL.st_rdev), os.minor(NULL.st_rdev)
    linux = spec["linux"]
    assert isinstance(linux, dict)
    assert linux["devices"] == [{"path": "/dev/pbtest", "type": "c", "major": major,
                                 "minor": minor}]  # fmt: skip
    # the deny-all rule stays first; the device's allow rule follows it
    assert linux["resources"]["devices"][1] == {
        "allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"
    }  # fmt: skip
    assert spec["mounts"] == [
        {"destination": "/hn", "type": "bind", "source": "/etc/hostname", "options": []}
    ]
