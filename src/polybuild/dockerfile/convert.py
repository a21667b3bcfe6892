"""Stages -> build graph for ONE target platform, with BuildKit's argument and stage rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from polybuild.dockerfile.dispatch import DEFAULT_PATH, Context, StageState, dispatch
from polybuild.dockerfile.flags import suggest
from polybuild.dockerfile.instructions import Command, Copy, Run, parse_instruction
from polybuild.dockerfile.mounts import parse_mount
from polybuild.dockerfile.named import NamedContexts, named_root
from polybuild.dockerfile.parser import parse
from polybuild.dockerfile.shell import expand_word
from polybuild.dockerfile.stage_order import Dependencies, check_order, needed_stages
from polybuild.dockerfile.stages import Dockerfile, Stage, load
from polybuild.dockerfile.syntax import Location, Warning_
from polybuild.errors import DockerfileError, InvalidReferenceError, PlatformError, PolybuildError
from polybuild.graph import ImageSource, LocalSource, Op, walk
from polybuild.image import reference
from polybuild.image.config import ImageConfig
from polybuild.platforms import Platform, default_platform, format_platform
from polybuild.platforms import parse as parse_platform

# A stage's base: an earlier stage's index, an image reference (or scratch), a named directory.
Base = int | str | LocalSource

# Resolves a base image to its config (env, workdir, user, onbuild...); None: not known yet.
ImageResolver = Callable[[str, Platform], ImageConfig | None]
# Told every needed stage's base image before the first stage converts (to fetch it early).
ImagePrefetch = Callable[[str, Platform], None]


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """What a build asks of the frontend besides the Dockerfile itself."""

    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    target_platform: Platform | None = None  # default: the build platform
    build_platform: Platform | None = None  # default: this machine's default platform
    filename: str = "Dockerfile"
    labels: Mapping[str, str] = field(default_factory=dict)
    context_name: str = "context"
    ignore_patterns: tuple[str, ...] = ()  # .dockerignore patterns for the context
    all_stages: bool = False  # convert every stage, not only those the target needs
    # --build-context: FROM NAME and --from=NAME are the image REF (docker-image://REF, or an
    # OCI layout's image under a reference of its own) or the directory (its LocalSource has
    # the patterns given here excluded), a stage of that name included, as BuildKit
    # overrides it
    named_images: Mapping[str, str] = field(default_factory=dict)
    named_dirs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StageGraph:
    """One converted stage: the op for its root filesystem and its image config."""

    index: int
    name: str
    base: str  # the expanded FROM value (a normalised reference, a stage name, or scratch)
    platform: Platform
    root: Op | None  # None: an empty filesystem (FROM scratch with no changes)
    config: ImageConfig
    location: Location


@dataclass(frozen=True, slots=True)
class BuildGraph:
    """The result of converting a Dockerfile for one target platform."""

    target: StageGraph
    stages: tuple[StageGraph, ...]  # the converted stages, in Dockerfile order
    target_platform: Platform
    build_platform: Platform
    global_args: tuple[tuple[str, str], ...]
    warnings: tuple[Warning_, ...]

    @property
    def config(self) -> ImageConfig:
        return self.target.config

    def ops(self) -> tuple[Op, ...]:
        """Every op the target needs, inputs first."""
        return walk((self.target.root,))


def normalize_reference(ref: str) -> str:
    """docker.io-style normalisation: `alpine` -> `docker.io/library/alpine:latest`.

    The grammar is image.reference's; ValueError says what is wrong, in BuildKit's words.
    """
    try:
        return str(reference.parse(ref))
    except InvalidReferenceError as exc:
        if "must be lowercase" in exc.message:
            message = f"invalid reference format: repository name must be lowercase: {ref}"
            raise ValueError(message) from None
        raise ValueError(exc.message) from None


def default_args(target: Platform, build: Platform, stage: str) -> dict[str, str]:
    """The automatic platform args BuildKit defines in the global scope."""
    return {
        "BUILDPLATFORM": format_platform(build),
        "BUILDOS": build.os,
        "BUILDOSVERSION": "",
        "BUILDARCH": build.architecture,
        "BUILDVARIANT": build.variant,
        "TARGETPLATFORM": format_platform(target),
        "TARGETOS": target.os,
        "TARGETOSVERSION": "",
        "TARGETARCH": target.architecture,
        "TARGETVARIANT": target.variant,
        "TARGETSTAGE": stage,
    }


class _Converter:
    def __init__(self, df: Dockerfile, options: BuildOptions, target: Platform,
                 resolve: ImageResolver | None) -> None:  # fmt: skip
        self.df, self.options, self.resolve = df, options, resolve
        self.target_platform = target
        self.build_platform = options.build_platform or default_platform()
        self.file = df.filename
        self.states: dict[int, StageState] = {}
        self.images: dict[tuple[str, Platform], ImageSource] = {}
        self.named = NamedContexts(options.named_images, options.named_dirs)

    def error(self, message: str, location: Location, hint: str | None = None) -> DockerfileError:
        return DockerfileError(
            message, line=location.start, end_line=location.end, filename=self.file, hint=hint
        )

    def expand(self, word: str, env: Mapping[str, str], location: Location) -> str:
        try:
            return expand_word(word, env, escape=self.df.escape_token)
        except ValueError as exc:
            raise self.error(str(exc), location) from None

    def global_scope(self, target_name: str) -> dict[str, str]:
        args = self.options.build_args
        scope = default_args(self.target_platform, self.build_platform, target_name)
        scope.update({k: args[k] for k in scope if k in args})
        for cmd in self.df.global_args:
            for arg in cmd.args:
                if arg.key in args:
                    scope[arg.key] = args[arg.key]
                elif arg.default is not None:
                    scope[arg.key] = self.expand(arg.default, scope, cmd.location)
        return scope

    def stage_ref(self, ref: str, before: int, location: Location) -> int | str | LocalSource:
        """An index of an earlier stage for `--from`/`from=`, an image reference, or a named
        directory."""
        if re.fullmatch(r"-?[0-9]+", ref):
            index = int(ref)
            if not 0 <= index < len(self.df.stages):
                raise self.error(f"invalid stage index {index}", location)
            return index
        named = self.named.find(ref, self.build_platform, self.target_platform)
        if named is not None:
            return named
        stage = self.df.stage_by_name(ref)
        return stage.index if stage is not None else ref

    def image(self, ref: str, platform: Platform, location: Location) -> ImageSource:
        try:
            normalized = normalize_reference(ref)
        except ValueError as exc:
            names = [s.name for s in self.df.stages if s.name]
            guess = suggest(ref, names)
            raise self.error(
                f"failed to parse stage name {ref!r}: {exc}",
                location,
                hint=f"did you mean the stage {guess}?" if guess else None,
            ) from None
        key = (normalized, platform)
        if key not in self.images:
            self.images[key] = ImageSource(normalized, platform)
        return self.images[key]


def _command_refs(command: Command) -> list[str]:
    if isinstance(command, Copy) and command.from_:
        return [command.from_]
    if isinstance(command, Run):
        return [m.from_ for m in (parse_mount(v) for v in command.mounts) if m.from_]
    return []


def convert(
    dockerfile: str | bytes | Dockerfile,
    options: BuildOptions | None = None,
    target_platform: Platform | None = None,
    *,
    resolve_image: ImageResolver | None = None,
    prefetch_image: ImagePrefetch | None = None,
) -> BuildGraph:
    """Convert a Dockerfile into the build graph and image config for one target platform."""
    options = options or BuildOptions()
    df = (
        dockerfile
        if isinstance(dockerfile, Dockerfile)
        else load(dockerfile, filename=options.filename)
    )
    build = options.build_platform or default_platform()
    target = target_platform or options.target_platform or build
    conv = _Converter(df, options, target, resolve_image)
    target_stage = _find_target(conv, options.target)
    scope = conv.global_scope(target_stage.name)
    bases, platforms = _resolve_bases(conv, scope)
    deps = _dependencies(conv, bases)
    check_order(df.stages, deps, lambda message, at, hint: conv.error(message, at, hint))
    needed = needed_stages(target_stage.index, deps, len(df.stages), options.all_stages)
    if prefetch_image is not None:
        _prefetch(prefetch_image, bases, platforms, needed, target)
    context = LocalSource(options.context_name, build, tuple(options.ignore_patterns))
    graphs: dict[int, StageGraph] = {}
    for stage in df.stages:
        if stage.index in needed:
            graphs[stage.index] = _convert_stage(conv, stage, bases, platforms, scope, context)
    result = graphs[target_stage.index]
    config = result.config.with_platform(target)
    if options.labels:
        labels = dict(config.config.labels) | dict(options.labels)
        config = replace(config, config=replace(config.config, labels=labels))
    result = replace(result, config=config)
    graphs[target_stage.index] = result
    return BuildGraph(
        target=result,
        stages=tuple(graphs[i] for i in sorted(graphs)),
        target_platform=target,
        build_platform=build,
        global_args=tuple(sorted(scope.items())),
        warnings=df.warnings,
    )


def _prefetch(
    prefetch: ImagePrefetch,
    bases: dict[int, Base],
    platforms: dict[int, Platform | None],
    needed: set[int],
    target: Platform,
) -> None:
    """Name each needed stage's base image (as the stage will resolve it) to `prefetch`."""
    for index in sorted(needed):
        base = bases[index]
        if not isinstance(base, str) or base == "scratch":
            continue
        try:
            ref = normalize_reference(base)
        except ValueError:
            continue  # the stage's conversion reports it, with its line
        prefetch(ref, platforms[index] or target)


def _find_target(conv: _Converter, name: str) -> Stage:
    if not name:
        return conv.df.stages[-1]
    stage = conv.df.stage_by_name(name)
    if stage is None:
        names = [s.name for s in conv.df.stages if s.name]
        guess = suggest(name, names)
        raise DockerfileError(
            f'target stage "{name}" could not be found',
            filename=conv.file,
            hint=(f"did you mean {guess}? " if guess else "")
            + "stages: "
            + (", ".join(names) or "(none named)"),
        )
    return stage


def _resolve_bases(
    conv: _Converter, scope: dict[str, str]
) -> tuple[dict[int, Base], dict[int, Platform | None]]:
    """Each stage's expanded base (an earlier stage's index or an image) and its --platform."""
    bases: dict[int, Base] = {}
    platforms: dict[int, Platform | None] = {}
    names: dict[str, int] = {}
    for stage in conv.df.stages:
        base = conv.expand(stage.base, scope, stage.location)
        if not base:
            raise conv.error(f"base name ({stage.base}) should not be blank", stage.location)
        platforms[stage.index] = None
        if stage.platform:
            value = conv.expand(stage.platform, scope, stage.location)
            if not value:
                raise conv.error(
                    f"empty platform value from expression {stage.platform}",
                    stage.location,
                    hint="inside FROM, use the automatic args such as $BUILDPLATFORM",
                )
            try:
                platforms[stage.index] = parse_platform(value)
            except PlatformError as exc:
                raise conv.error(
                    f"failed to parse platform {stage.platform}: {exc}", stage.location
                ) from None
        wanted = platforms[stage.index] or conv.target_platform
        named = conv.named.find(base, conv.build_platform, wanted)
        bases[stage.index] = named if named is not None else names.get(base, base)
        if stage.name:
            names[stage.name] = stage.index
    return bases, platforms


def _dependencies(conv: _Converter, bases: dict[int, Base]) -> Dependencies:
    deps: Dependencies = {}
    for stage in conv.df.stages:
        edges = deps.setdefault(stage.index, [])
        base = bases[stage.index]
        if isinstance(base, int):
            edges.append((base, stage.location))
        for command in stage.commands:
            for ref in _command_refs(command):
                found = conv.stage_ref(ref, stage.index, command.location)
                if isinstance(found, int):
                    edges.append((found, command.location))
    return deps


def _initial_state(
    conv: _Converter, stage: Stage, base: Base, platform: Platform | None
) -> StageState:
    if isinstance(base, int):
        parent = conv.states[base]
        return StageState(
            parent.root, parent.platform, parent.config, dict(parent.env), parent.workdir,
            list(parent.build_args), parent.cmd_set,
        )  # fmt: skip
    platform = platform or conv.target_platform
    if base == "scratch" or isinstance(base, LocalSource):
        root: Op | None = named_root(base, platform) if isinstance(base, LocalSource) else None
        # BuildKit's empty image: WorkingDir "/" (and PATH, below) in the config it writes.
        empty = ImageConfig.empty(platform)
        config = replace(empty, config=replace(empty.config, working_dir="/"))
    else:
        source = conv.image(base, platform, stage.location)
        root = source
        config = _resolve_base(conv, source.ref, platform, stage) or ImageConfig.empty(platform)
    container = config.config
    if container.env_value("PATH") is None:
        container = replace(container, env=(*container.env, f"PATH={DEFAULT_PATH}"))
        config = replace(config, config=container)
    env = dict(item.partition("=")[::2] for item in container.env)
    return StageState(root, platform, config, env, container.working_dir or "/")


def _resolve_base(
    conv: _Converter, ref: str, platform: Platform, stage: Stage
) -> ImageConfig | None:
    """The base image's config from the resolver; its errors get the FROM line's location."""
    if conv.resolve is None:
        return None
    try:
        return conv.resolve(ref, platform)
    except DockerfileError:
        raise
    except PolybuildError as exc:
        raise type(exc)(
            f"{conv.file}:{stage.location.start}: {exc.message}", hint=exc.hint
        ) from exc


def _onbuild_triggers(conv: _Converter, state: StageState, stage: Stage) -> list[Command]:
    commands: list[Command] = []
    for expression in state.config.config.on_build:
        result = parse(expression, filename=conv.file)
        for node in result.nodes:
            moved = replace(node, location=stage.location)
            instruction = parse_instruction(moved, filename=conv.file)
            commands.append(instruction)  # type: ignore[arg-type]
    state.config = replace(state.config, config=replace(state.config.config, on_build=()))
    return commands


def _base_name(conv: _Converter, base: Base) -> str:
    if isinstance(base, int):
        return conv.df.stages[base].display_name
    if isinstance(base, LocalSource):
        return base.name
    return base if base == "scratch" else normalize_reference(base)


def _convert_stage(
    conv: _Converter, stage: Stage, bases: dict[int, Base],
    platforms: dict[int, Platform | None], scope: dict[str, str], context: Op,
) -> StageGraph:  # fmt: skip
    state = _initial_state(conv, stage, bases[stage.index], platforms[stage.index])
    state.cmd_set = False

    def source_for(ref: str, location: Location) -> Op | None:
        found = conv.stage_ref(ref, stage.index, location)
        if isinstance(found, int):
            return conv.states[found].root
        if isinstance(found, LocalSource):
            return found
        return conv.image(found, conv.target_platform, location)

    epoch = conv.options.build_args.get("SOURCE_DATE_EPOCH")
    ctx = Context(
        filename=conv.file,
        escape=conv.df.escape_token,
        global_args=scope,
        build_args=dict(conv.options.build_args),
        context=context,
        source_for=source_for,
        epoch=int(epoch) if epoch and epoch.isdigit() else None,
    )
    for command in [*_onbuild_triggers(conv, state, stage), *stage.commands]:
        dispatch(state, command, ctx)
    conv.states[stage.index] = state
    base = bases[stage.index]
    return StageGraph(
        index=stage.index,
        name=stage.name,
        base=_base_name(conv, base),
        platform=state.platform,
        root=state.root,
        config=state.config,
        location=stage.location,
    )
