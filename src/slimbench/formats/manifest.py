"""The artifact manifest (`manifest.json`): what a build wrote, read back with its schema checked.

Every artifact directory holds one. The build writes it last (`slimbench.build.pipeline`); the
runtime, the probes and the report read it. A manifest from a slimbench whose schema differs is
refused with the command that fixes it, instead of being half understood. While a build is still
checking its own output it writes a short "probe" manifest (format, model file, max_length,
truncation) without a schema; that one is accepted too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slimbench.errors import ArtifactError

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = 1


def read_manifest(artifact_dir: Path) -> dict[str, Any]:
    """The manifest of a built artifact, as a dict; ArtifactError naming the file and the fix."""
    path = Path(artifact_dir) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{artifact_dir} is not a built variant (no {MANIFEST}); run `slimbench build`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ArtifactError(f"{path} is corrupt ({err}); delete {artifact_dir} and rebuild") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} is corrupt (not a JSON object); delete {artifact_dir} and rebuild")
    schema = manifest.get("schema", MANIFEST_SCHEMA)
    if schema != MANIFEST_SCHEMA:
        raise ArtifactError(f"{path} has manifest schema {schema!r}, this slimbench reads schema {MANIFEST_SCHEMA}: "
                            f"it was built by another slimbench version; rebuild it (`slimbench build --force`)")
    return manifest


def runtime_files(artifact_dir: Path) -> list[Path]:
    """Every file the variant needs to run (weights, config, tokenizer); not our manifest."""
    return sorted(p for p in Path(artifact_dir).iterdir() if p.is_file() and p.name != MANIFEST)
