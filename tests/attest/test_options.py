"""buildx's --attest/--provenance/--sbom semantics (util/buildflags/attests.go, build/opt.go)
and BuildKit's reading of the values (frontend/attestations/parse.go, llbsolver/provenance.go),
with their error texts."""

from __future__ import annotations

import pytest

from polybuild.attest.options import (
    DEFAULT_SBOM_GENERATOR,
    Attest,
    ProvenanceOptions,
    attached_to,
    canonicalize,
    parse_attest,
    parse_attestations,
)
from polybuild.errors import UsageError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", "type=provenance,disabled=false"),
        ("1", "type=provenance,disabled=false"),
        ("false", "type=provenance,disabled=true"),
        ("F", "type=provenance,disabled=true"),
        ("mode=max", "type=provenance,mode=max"),
        ("", ""),
    ],
)
def test_shorthand_flags_become_attest_values_as_buildx_makes_them(
    value: str, expected: str
) -> None:
    assert canonicalize("provenance", value) == expected


def test_an_attest_value_is_one_csv_record() -> None:
    assert parse_attest('type=sbom,"generator=img:1,x",Disabled=false') == Attest(
        "sbom", False, {"generator": "img:1,x"}
    )
    assert parse_attest("TYPE=provenance,mode=max").attrs == {"mode": "max"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mode=max", "attestation type not specified"),
        ("type=provenance,max", "invalid value max"),
        (
            "type=sbom,disabled=maybe",
            'invalid value disabled=maybe: strconv.ParseBool: parsing "maybe": invalid syntax',
        ),
    ],
)
def test_bad_attest_values_fail_with_buildxs_words(value: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_attest(value)
    assert str(caught.value.args[0]) == message


def test_without_flags_provenance_is_min_and_inline_only() -> None:
    found = parse_attestations(env={})
    assert found.provenance == ProvenanceOptions(mode="min", inline_only=True)
    assert found.provenance_is_default
    assert found.sbom is None
    assert found.frontend_attrs() == {"attest:provenance": "mode=min,inline-only=true"}


@pytest.mark.parametrize("value", ["1", "true", "TRUE"])
def test_no_default_attestations_turns_the_default_off(value: str) -> None:
    env = {"BUILDX_NO_DEFAULT_ATTESTATIONS": value}
    assert parse_attestations(env=env).provenance is None
    # ...but not what is asked for
    asked = parse_attestations(provenance="mode=max", env=env).provenance
    assert asked is not None and asked.mode == "max"


def test_a_bad_no_default_attestations_is_refused_as_buildx_refuses_it() -> None:
    with pytest.raises(UsageError) as caught:
        parse_attestations(env={"BUILDX_NO_DEFAULT_ATTESTATIONS": "yes"})
    assert caught.value.args[0] == (
        'invalid BUILDX_NO_DEFAULT_ATTESTATIONS: strconv.ParseBool: parsing "yes": invalid syntax'
    )


def test_provenance_true_is_buildkits_default_max_v1() -> None:
    found = parse_attestations(provenance="true", env={})
    assert found.provenance == ProvenanceOptions(mode="max", version="v1")
    assert not found.provenance_is_default
    assert parse_attestations(provenance="false", env={}).provenance is None


def test_provenance_fields() -> None:
    found = parse_attestations(
        provenance="mode=min,version=v0.2,builder-id=https://ci/1,reproducible=true", env={}
    ).provenance
    assert found == ProvenanceOptions(
        mode="min", version="v0.2", builder_id="https://ci/1", reproducible=True
    )
    assert found.predicate_type == "https://slsa.dev/provenance/v0.2"
    full = parse_attestations(attests=["type=provenance,mode=full"], env={}).provenance
    assert full is not None and full.mode == "max"


def test_the_first_value_of_a_type_wins_as_in_buildxs_to_map() -> None:
    found = parse_attestations(
        attests=["type=provenance,mode=max"], provenance="false", env={}
    ).provenance
    assert found is not None and found.mode == "max"
    off = parse_attestations(attests=["type=provenance,disabled=true"], provenance="mode=max")
    assert off.provenance is None and not off.provenance_is_default


def test_sbom_fields() -> None:
    found = parse_attestations(sbom="true", env={}).sbom
    assert found is not None and found.generator == DEFAULT_SBOM_GENERATOR
    assert found.scan_stage is None
    staged = parse_attestations(
        attests=["type=sbom,scan-stage=true,generator=me/scan:1,extra=x"], env={}
    ).sbom
    assert staged is not None
    assert (staged.generator, staged.scan_stage, dict(staged.params)) == (
        "me/scan:1",
        True,
        {"extra": "x"},
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attests": ["type=cyclonedx"]}, 'unknown attestation type "cyclonedx"'),
        ({"provenance": "mode=medium"}, '--attest type=provenance: invalid mode "medium"'),
        (
            {"provenance": "version=v3"},
            "--attest type=provenance: invalid provenance SLSA version: v3",
        ),
        (
            {"provenance": "reproducible=sure"},
            "--attest type=provenance: failed to parse reproducible flag 'sure': "
            'strconv.ParseBool: parsing "sure": invalid syntax',
        ),
        (
            {"sbom": "scan-stage=please"},
            "--attest type=sbom: failed to parse scan-stage flag 'please': "
            'strconv.ParseBool: parsing "please": invalid syntax',
        ),
    ],
)
def test_values_buildkit_refuses_are_refused_before_the_build(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        parse_attestations(env={}, **kwargs)  # type: ignore[arg-type]
    assert caught.value.args[0] == message


@pytest.mark.parametrize(
    ("inline_only", "exporter", "multi", "attached"),
    [
        # buildx's default (inline-only): a pushed or stored image always carries it ...
        (True, "image", False, True),
        (True, "image", True, True),
        # ... an OCI or docker archive only when it is an index anyway ...
        (True, "oci", False, False),
        (True, "oci", True, True),
        (True, "docker", False, False),
        # ... local and tar outputs never
        (True, "local", True, False),
        (True, "tar", False, False),
        # asked for: everywhere (a single-platform archive becomes an index)
        (False, "oci", False, True),
        (False, "docker", False, True),
        (False, "local", False, True),
    ],
)
def test_which_outputs_carry_an_attestation(
    inline_only: bool, exporter: str, multi: bool, attached: bool
) -> None:
    assert attached_to(inline_only, exporter, multi_platform=multi) is attached


def test_attestation_inline_false_keeps_a_single_platform_image_plain() -> None:
    assert not attached_to(True, "image", multi_platform=False, force_inline=False)


def test_frontend_attrs_are_what_buildx_sends() -> None:
    found = parse_attestations(
        attests=['type=sbom,"generator=me/scan:1,x",scan-stage=true'],
        provenance="mode=max,version=v0.2",
        env={},
    )
    assert found.frontend_attrs() == {
        "attest:sbom": 'type=sbom,"generator=me/scan:1,x",scan-stage=true',
        "attest:provenance": "type=provenance,mode=max,version=v0.2",
    }
    assert parse_attestations(provenance="false", env={}).frontend_attrs() == {}
