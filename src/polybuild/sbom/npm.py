"""npm packages: node_modules/<name>/package.json and node_modules/@<scope>/<name>/package.json."""

from __future__ import annotations

import json

from packageurl import PackageURL

from polybuild.sbom.package import Package


def is_package_json(path: str) -> bool:
    """A package.json at the top of an installed package (not one of its test fixtures)."""
    parts = path.split("/")
    if len(parts) < 4 or parts[-1] != "package.json":
        return False
    if parts[-3] == "node_modules":
        return not parts[-2].startswith("@")
    return parts[-4] == "node_modules" and parts[-3].startswith("@") and len(parts[-3]) > 1


def _license(document: dict[str, object]) -> str:
    value = document.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, str):
        return value.strip()
    legacy = document.get("licenses")  # the deprecated [{"type": ..., "url": ...}]
    if isinstance(legacy, list):
        types = [
            str(item["type"]).strip()
            for item in legacy
            if isinstance(item, dict) and isinstance(item.get("type"), str)
        ]
        if len(types) == 1:
            return types[0]
        if types:
            return " OR ".join(f"({name})" if " " in name else name for name in types)
    return ""


def parse_package_json(data: bytes, evidence: str) -> Package | None:
    """The package a package.json names, or None (not JSON, no name or version)."""
    try:
        document = json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    name, version = document.get("name"), document.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    scope, slash, bare = name.partition("/")
    namespace = scope if slash and scope.startswith("@") else None
    return Package(
        kind="npm",
        name=name,
        version=version,
        purl=PackageURL(
            type="npm", namespace=namespace, name=bare if namespace else name, version=version
        ).to_string(),
        license=_license(document),
        evidence=(evidence,),
    )
