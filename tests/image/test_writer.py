"""image.writer: the config a build writes, and image.convert's descriptor conversion."""

from __future__ import annotations

from polybuild.image import mediatypes as mt
from polybuild.image.config import ContainerConfig, History, ImageConfig
from polybuild.image.convert import convert_descriptor
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer
from polybuild.image.writer import built_config
from polybuild.platforms import parse

ARM64 = parse("linux/arm64")
BLOB, DIFF = Digest.of(b"blob"), Digest.of(b"tar")


def test_built_config_takes_platform_layers_and_times_from_the_build() -> None:
    base = ImageConfig(
        architecture="amd64",
        os="linux",
        os_version="10.0",
        created="2020-01-01T00:00:00Z",
        author="me",
        config=ContainerConfig(args_escaped=True, labels={"a": "1"}),
        diff_ids=(Digest.of(b"old"),),
        history=(
            History("2023-05-10T12:34:56.123456789Z", "x", author="who", empty_layer=True),
            History("garbage", "y", comment="c"),
            History(None, "z"),
        ),
    )
    layer = Layer(Descriptor(mt.OCI_LAYER_GZIP, BLOB, 4), DIFF)
    config = built_config(base, [layer], ARM64, 1_700_000_000)
    assert (config.architecture, config.os, config.os_version) == ("arm64", "linux", "")
    assert config.created == "2023-11-14T22:13:20Z"
    assert config.author == "me"
    assert config.diff_ids == (DIFF,)
    # ArgsEscaped stays as the frontend left it (BuildKit keeps a base's, sets it on CMD)
    assert config.config.args_escaped and dict(config.config.labels) == {"a": "1"}
    assert [(h.created, h.created_by, h.author, h.comment) for h in config.history] == [
        ("2023-05-10T12:34:56Z", "x", "", ""),
        ("2023-11-14T22:13:20Z", "y", "", "c"),
        ("2023-11-14T22:13:20Z", "z", "", ""),
    ]


def test_labels_are_a_read_only_copy() -> None:
    labels = {"a": "1"}
    config = ContainerConfig(labels=labels)
    labels["b"] = "2"
    assert dict(config.labels) == {"a": "1"}
    assert config == ContainerConfig(labels={"a": "1"})


def test_docker_descriptors_have_no_artifact_type() -> None:
    oci = Descriptor(mt.OCI_LAYER_GZIP, BLOB, 4, artifact_type="application/x.thing")
    docker = convert_descriptor(oci, docker=True)
    assert (docker.media_type, docker.artifact_type) == (mt.DOCKER_LAYER_GZIP, "")
    back = convert_descriptor(docker, docker=False)
    assert (back.media_type, back.artifact_type) == (mt.OCI_LAYER_GZIP, "")
    assert convert_descriptor(oci, docker=False) is oci
