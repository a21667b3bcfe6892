"""The registry of BuildKit's Dockerfile lint rules: names, descriptions, docs URLs and the
messages each rule's warnings carry (BuildKit v0.32.2, frontend/dockerfile/linter)."""

from __future__ import annotations

from dataclasses import dataclass

DOCS = "https://docs.docker.com/go/dockerfile/rule/"


@dataclass(frozen=True, slots=True)
class Rule:
    """One lint rule; `url` is "" for a rule with no docs page, `experimental` rules run only
    when `# check=experimental=...` names them."""

    name: str
    description: str
    url: str = ""
    experimental: bool = False


def _rule(name: str, slug: str, description: str, *, experimental: bool = False) -> Rule:
    return Rule(name, description, f"{DOCS}{slug}/" if slug else "", experimental)


STAGE_NAME_CASING = _rule("StageNameCasing", "stage-name-casing", "Stage names should be lowercase")
FROM_AS_CASING = _rule(
    "FromAsCasing",
    "from-as-casing",
    "The 'as' keyword should match the case of the 'from' keyword",
)
NO_EMPTY_CONTINUATION = _rule(
    "NoEmptyContinuation",
    "no-empty-continuation",
    "Empty continuation lines will become errors in a future release",
)
CONSISTENT_INSTRUCTION_CASING = _rule(
    "ConsistentInstructionCasing",
    "consistent-instruction-casing",
    "All commands within the Dockerfile should use the same casing (either upper or lower)",
)
DUPLICATE_STAGE_NAME = _rule(
    "DuplicateStageName", "duplicate-stage-name", "Stage names should be unique"
)
RESERVED_STAGE_NAME = _rule(
    "ReservedStageName",
    "reserved-stage-name",
    "Reserved words should not be used as stage names",
)
JSON_ARGS_RECOMMENDED = _rule(
    "JSONArgsRecommended",
    "json-args-recommended",
    "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to"
    " OS signals",
)
MAINTAINER_DEPRECATED = _rule(
    "MaintainerDeprecated",
    "maintainer-deprecated",
    "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
)
UNDEFINED_ARG_IN_FROM = _rule(
    "UndefinedArgInFrom", "undefined-arg-in-from", "FROM command must use declared ARGs"
)
WORKDIR_RELATIVE_PATH = _rule(
    "WorkdirRelativePath",
    "workdir-relative-path",
    "Relative workdir without an absolute workdir declared within the build can have"
    " unexpected results if the base image changes",
)
UNDEFINED_VAR = _rule(
    "UndefinedVar", "undefined-var", "Variables should be defined before their use"
)
MULTIPLE_INSTRUCTIONS_DISALLOWED = _rule(
    "MultipleInstructionsDisallowed",
    "multiple-instructions-disallowed",
    "Multiple instructions of the same type should not be used in the same stage",
)
LEGACY_KEY_VALUE_FORMAT = _rule(
    "LegacyKeyValueFormat",
    "legacy-key-value-format",
    "Legacy key/value format with whitespace separator should not be used",
)
INVALID_BASE_IMAGE_PLATFORM = _rule(
    "InvalidBaseImagePlatform",
    "",
    "Base image platform does not match expected target platform",
)
REDUNDANT_TARGET_PLATFORM = _rule(
    "RedundantTargetPlatform",
    "redundant-target-platform",
    "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the"
    " default behavior",
)
SECRETS_USED_IN_ARG_OR_ENV = _rule(
    "SecretsUsedInArgOrEnv",
    "secrets-used-in-arg-or-env",
    "Sensitive data should not be used in the ARG or ENV commands",
)
INVALID_DEFAULT_ARG_IN_FROM = _rule(
    "InvalidDefaultArgInFrom",
    "invalid-default-arg-in-from",
    "Default value for global ARG results in an empty or invalid base image name",
)
FROM_PLATFORM_FLAG_CONST_DISALLOWED = _rule(
    "FromPlatformFlagConstDisallowed",
    "from-platform-flag-const-disallowed",
    "FROM --platform flag should not use a constant value",
)
COPY_IGNORED_FILE = _rule(
    "CopyIgnoredFile",
    "copy-ignored-file",
    "Attempting to Copy file that is excluded by .dockerignore",
)
INVALID_DEFINITION_DESCRIPTION = _rule(
    "InvalidDefinitionDescription",
    "invalid-definition-description",
    "Comment for build stage or argument should follow the format: `# <arg/stage name>"
    " <description>`. If this is not intended to be a description comment, add an empty"
    " line or comment between the instruction and the comment.",
    experimental=True,
)
EXPOSE_PROTO_CASING = _rule(
    "ExposeProtoCasing",
    "expose-proto-casing",
    "Protocol in EXPOSE instruction should be lowercase",
)
EXPOSE_INVALID_FORMAT = _rule(
    "ExposeInvalidFormat",
    "expose-invalid-format",
    "IP address and host-port mapping should not be used in EXPOSE instruction. This will"
    " become an error in a future release",
)

RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        STAGE_NAME_CASING,
        FROM_AS_CASING,
        NO_EMPTY_CONTINUATION,
        CONSISTENT_INSTRUCTION_CASING,
        DUPLICATE_STAGE_NAME,
        RESERVED_STAGE_NAME,
        JSON_ARGS_RECOMMENDED,
        MAINTAINER_DEPRECATED,
        UNDEFINED_ARG_IN_FROM,
        WORKDIR_RELATIVE_PATH,
        UNDEFINED_VAR,
        MULTIPLE_INSTRUCTIONS_DISALLOWED,
        LEGACY_KEY_VALUE_FORMAT,
        INVALID_BASE_IMAGE_PLATFORM,
        REDUNDANT_TARGET_PLATFORM,
        SECRETS_USED_IN_ARG_OR_ENV,
        INVALID_DEFAULT_ARG_IN_FROM,
        FROM_PLATFORM_FLAG_CONST_DISALLOWED,
        COPY_IGNORED_FILE,
        INVALID_DEFINITION_DESCRIPTION,
        EXPOSE_PROTO_CASING,
        EXPOSE_INVALID_FORMAT,
    )
}


def go_quote(text: str) -> str:
    """Go's %q of a string of printable characters (what the messages quote)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'
