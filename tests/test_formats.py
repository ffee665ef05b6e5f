"""On-disk formats beneath the build and the runtime: the manifest's schema is checked on read."""

from __future__ import annotations

import json

import pytest

from slimbench.errors import ArtifactError
from slimbench.formats.manifest import MANIFEST, MANIFEST_SCHEMA, read_manifest


def test_a_manifest_of_another_schema_is_refused_with_the_fix(tmp_path):
    (tmp_path / MANIFEST).write_text(json.dumps({"schema": MANIFEST_SCHEMA + 1, "format": "onnx"}))
    with pytest.raises(ArtifactError, match=r"manifest schema 2, this slimbench reads schema 1.*slimbench build --force"):
        read_manifest(tmp_path)


def test_a_manifest_of_this_schema_and_a_build_s_probe_manifest_are_read(tmp_path):
    (tmp_path / MANIFEST).write_text(json.dumps({"schema": MANIFEST_SCHEMA, "format": "onnx"}))
    assert read_manifest(tmp_path)["format"] == "onnx"
    (tmp_path / MANIFEST).write_text(json.dumps({"format": "onnx", "model_file": "model.onnx"}))  # mid-build
    assert read_manifest(tmp_path)["model_file"] == "model.onnx"


@pytest.mark.parametrize("content, message", [("{not json", "is corrupt"), ("[1, 2]", "not a JSON object")])
def test_a_corrupt_manifest_names_the_file(tmp_path, content, message):
    (tmp_path / MANIFEST).write_text(content)
    with pytest.raises(ArtifactError, match=message):
        read_manifest(tmp_path)
