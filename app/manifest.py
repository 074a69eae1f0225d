"""manifest.json: the single source of what Hub24 registers in a portal (scopes, events, placements, robots)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = ROOT / "manifest.json"
SCHEMA_PATH = ROOT / "manifest.schema.json"


class ManifestError(ValueError):
    """manifest.json does not match manifest.schema.json or repeats an entry."""


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    """Read and validate the manifest; raises ManifestError with the first problem found."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path.name}: cannot read: {exc}") from None
    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise ManifestError(f"{path.name}: {where}: {exc.message}") from None
    for kind, key in (("events", "event"), ("placements", "placement"), ("robots", "code")):
        seen = [item[key] for item in data[kind]]
        dupes = sorted({k for k in seen if seen.count(k) > 1})
        if dupes:
            raise ManifestError(f"{path.name}: {kind}: repeated {key} {', '.join(dupes)}")
    return data


def handler_paths(manifest: dict[str, Any]) -> list[str]:
    """Every handler path the manifest points the portal at."""
    return [item["handler"] for kind in ("events", "placements", "robots") for item in manifest[kind]]
