"""Which lint rules run and whether warnings fail the build: the `# check=` directive, the
BUILDKIT_DOCKERFILE_CHECK build argument and per-instruction `# check=` comments, parsed as
BuildKit's linter.ParseLintOptions reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from polybuild.errors import DockerfileError

# strconv.ParseBool's spellings
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_COMMENT_DIRECTIVE = re.compile(
    r"^[\t\n\f\r ]*check[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$", re.I
)


@dataclass(frozen=True, slots=True)
class LintConfig:
    """`skip`: rule names not run (`skip_all`: none runs); `experimental`: experimental rules
    that run (`experimental_all`: every one); `error`: warnings fail the build."""

    skip: frozenset[str] = frozenset()
    skip_all: bool = False
    experimental: frozenset[str] = frozenset()
    experimental_all: bool = False
    error: bool = False

    def runs(self, name: str, experimental: bool) -> bool:
        if experimental:
            return self.experimental_all or name in self.experimental
        return not (self.skip_all or name in self.skip)

    def merged(self, other: LintConfig) -> LintConfig:
        """This config with `other`'s skips and experimental rules added (BuildKit's
        WithMergedConfig: `error` is not merged)."""
        return replace(
            self,
            skip=self.skip | other.skip,
            skip_all=self.skip_all or other.skip_all,
            experimental=self.experimental | other.experimental,
            experimental_all=self.experimental_all or other.experimental_all,
        )


def _names(value: str) -> tuple[frozenset[str], bool]:
    value = value.strip()
    if value == "all":
        return frozenset(), True
    return frozenset(name.strip() for name in value.split(",")), False


def parse_check_options(text: str) -> LintConfig:
    """`skip=A,B;experimental=C;error=true` -> LintConfig; ValueError with BuildKit's words."""
    text = text.strip()
    if not text:
        return LintConfig()
    config = LintConfig()
    for part in text.split(";", 2):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"invalid check option {_q(part)}")
        key = key.strip()
        if key == "skip":
            names, every = _names(value)
            config = replace(config, skip=names, skip_all=every)
        elif key == "experimental":
            names, every = _names(value)
            config = replace(config, experimental=names, experimental_all=every)
        elif key == "error":
            flag = value.strip()
            if flag not in _TRUE and flag not in _FALSE:
                raise ValueError(
                    f"failed to parse check option {_q(part)}: strconv.ParseBool: parsing"
                    f" {_q(flag)}: invalid syntax"
                )
            config = replace(config, error=flag in _TRUE)
        else:
            raise ValueError(f"invalid check option {_q(key)}")
    return config


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_config(directive: str | None, build_arg: str | None, filename: str) -> LintConfig:
    """The file's config: BUILDKIT_DOCKERFILE_CHECK when given (it replaces the directive),
    else the `# check=` directive; a bad value is a DockerfileError as BuildKit fails."""
    if build_arg is not None:
        try:
            return parse_check_options(build_arg)
        except ValueError as exc:
            raise DockerfileError(
                f"failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: {exc}", filename=filename
            ) from None
    try:
        return parse_check_options(directive or "")
    except ValueError as exc:
        raise DockerfileError(f"failed to parse check options: {exc}", filename=filename) from None


def with_comments(config: LintConfig, comments: tuple[str, ...]) -> LintConfig:
    """The config for one instruction: the first `check=` among the comments right above
    it merged in (an unparsable one leaves the config as it is), as BuildKit does."""
    for comment in comments:
        match = _COMMENT_DIRECTIVE.match(comment)
        if match is None:
            continue
        value = match.group(1).split(" ", 1)[0]
        try:
            return config.merged(parse_check_options(value))
        except ValueError:
            return config
    return config
