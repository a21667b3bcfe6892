"""The secrets a build was given (`--secret`, `--ssh`): one value every layer passes down."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BuildSecrets:
    """What `--secret` and `--ssh` provided: never written into layers, cache or config."""

    secrets: dict[str, bytes] = field(default_factory=dict)
    ssh: dict[str, str] = field(default_factory=dict)  # id -> agent socket path
    # --ssh ID=KEYFILE[,KEYFILE]: keys an agent started for the build serves (then in `ssh`)
    ssh_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
