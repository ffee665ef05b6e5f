from __future__ import annotations

from pathlib import Path

import pytest

from slimbench.errors import SpecError
from slimbench.spec.schema import spec_from_dict
from slimbench.spec.zoo import Zoo, default_models_dir

REPO = Path(__file__).resolve().parents[1]


def test_default_zoo_has_its_variants_in_order():
    zoo = Zoo.load(REPO / "src" / "slimbench" / "default_zoo")
    assert zoo.names == ["standard", "light", "ultra-light", "quantized", "onnx", "onnx-int8", "onnx-static-int8",
                         "ultra-light-onnx-int8", "pruned-heads", "sparse-50", "standard-numpy",
                         "ultra-light-numpy"]
    ul = zoo.get("ultra-light")
    assert ul.architecture == {"num_hidden_layers": 2, "num_attention_heads": 2, "hidden_size": 128,
                               "intermediate_size": 512, "max_position_embeddings": 32}
    assert ul.max_length == 32 and ul.method == "distill" and ul.source == "standard"
    assert zoo.get("onnx-int8").runtime == "onnxruntime" and zoo.get("onnx-int8").precision == "int8"
    assert [s.name for s in zoo.ancestors("ultra-light-onnx-int8")] == ["standard", "ultra-light",
                                                                         "ultra-light-onnx-int8"]
    assert default_models_dir() == REPO / "src" / "slimbench" / "default_zoo"


def test_unknown_variant_lists_the_known_ones():
    zoo = Zoo.load(REPO / "src" / "slimbench" / "default_zoo")
    with pytest.raises(SpecError, match=r"unknown variant 'ultralight'; known variants: standard, light"):
        zoo.get("ultralight")
    with pytest.raises(SpecError, match="unknown variant 'nope'"):
        zoo.select("standard,nope")


@pytest.mark.parametrize("patch, message", [
    ({"architecture": {"num_hidden_layers": -2}}, "num_hidden_layers must be positive, got -2"),
    ({"architecture": {"num_hidden_layers": "two"}}, "num_hidden_layers must be int, got 'two'"),
    ({"architecture": {"layers": 2}}, r"unknown key\(s\) \['layers'\]; known keys are"),
    ({"colour": "red"}, r"unknown key\(s\) \['colour'\]"),
    ({"runtime": "tensorflow"}, "runtime must be one of"),
    ({"steps": ["export-onnx"]}, "runtime 'torch' does not match steps"),
    ({"train": {"method": "distill", "epochs": 0}}, "epochs must be positive"),
    ({"architecture": {"hidden_size": 100, "num_attention_heads": 3}}, "not divisible"),
    ({"max_length": 4}, "max_length must be an integer in 8..512"),
    ({"name": "a b"}, "name must be a non-empty string"),
    ({"prune": {"sparsity": 1.5}}, r"sparsity is a fraction in \[0, 1\), got 1.5"),
    ({"prune": {"heads": 0.0}}, "give at least one of heads, ffn, sparsity > 0"),
    ({"prune": {"sparsity": 0.5, "scope": "row"}}, "scope must be 'global' or 'layer'"),
    ({"prune": {"heads": 0.5, "rounds": 3}}, "rounds > 1 .progressive pruning. applies to 'sparsity'"),
    ({"prune": {"sparsity": 0.5}, "train": {"method": "finetune"}}, "recovery is train.method"),
    ({"prune": {"sparsity": 0.5}, "steps": ["export-onnx"], "runtime": "onnxruntime"}, "has no steps"),
    ({"prune": {"density": 0.5}}, r"unknown key\(s\) \['density'\]"),
    ({"runtime": "numpy", "steps": ["numpy-reference", "export-onnx"]}, "runtime 'numpy' goes with steps"),
    ({"runtime": "numpy"}, "runtime 'numpy' goes with steps"),
    ({"steps": ["onnx-static-int8", "export-onnx"], "runtime": "onnxruntime", "precision": "int8"},
     "'export-onnx' must be the first step"),
    ({"steps": ["export-onnx", "onnx-dynamic-int8", "onnx-static-int8"], "runtime": "onnxruntime",
      "precision": "int8"}, "choose one of"),
    ({"steps": ["export-onnx"], "runtime": "onnxruntime", "calibrate": {"texts": 10}},
     r"\[calibrate\] table goes with the 'onnx-static-int8' step"),
    ({"steps": ["export-onnx", "onnx-static-int8"], "runtime": "onnxruntime", "precision": "int8",
      "calibrate": {"method": "guess"}}, "method must be one of"),
])
def test_invalid_specs_name_the_bad_value(patch, message):
    data = {"name": "x", "source": "standard", "train": {"method": "distill"}}
    data.update(patch)
    with pytest.raises(SpecError, match=message):
        spec_from_dict(data)


def test_spec_hash_follows_ancestors_and_inputs():
    base = [{"name": "standard", "base": "minilm", "train": {"method": "finetune", "epochs": 1}},
            {"name": "onnx", "source": "standard", "steps": ["export-onnx"], "runtime": "onnxruntime"}]
    zoo = Zoo(spec_from_dict(d) for d in base)
    changed = [dict(base[0], train={"method": "finetune", "epochs": 2}), base[1]]
    zoo2 = Zoo(spec_from_dict(d) for d in changed)
    assert zoo.spec_hash("onnx") != zoo2.spec_hash("onnx")  # parent changed -> child rebuilt
    assert zoo.spec_hash("onnx") == Zoo(spec_from_dict(d) for d in base).spec_hash("onnx")
    assert zoo.spec_hash("onnx", {"dataset": "a"}) != zoo.spec_hash("onnx", {"dataset": "b"})
    described = [dict(base[0], description="new words"), base[1]]
    assert Zoo(spec_from_dict(d) for d in described).spec_hash("onnx") == zoo.spec_hash("onnx")


def test_zoo_rejects_missing_sources_cycles_and_duplicates():
    with pytest.raises(SpecError, match="names source 'teacher', which is not in the zoo"):
        Zoo([spec_from_dict({"name": "a", "source": "teacher", "train": {"method": "distill"}})])
    with pytest.raises(SpecError, match="cyclic"):
        Zoo([spec_from_dict({"name": "a", "source": "b", "train": {"method": "distill"}}),
             spec_from_dict({"name": "b", "source": "a", "train": {"method": "distill"}})])
    with pytest.raises(SpecError, match="defined twice"):
        Zoo([spec_from_dict({"name": "a", "base": "minilm", "train": {"method": "finetune"}})] * 2)


def test_unreadable_spec_file_is_named(tmp_path):
    (tmp_path / "bad.toml").write_text("name = [unclosed")
    with pytest.raises(SpecError, match="bad.toml: cannot read spec"):
        Zoo.load(tmp_path)
    with pytest.raises(SpecError, match="no variant specs"):
        Zoo.load(tmp_path / "empty")


def test_new_spec_tables_enter_the_hash_only_when_present():
    plain = spec_from_dict({"name": "x", "source": "standard", "train": {"method": "distill"}})
    pruned = spec_from_dict({"name": "x", "source": "standard", "train": {"method": "distill"},
                             "prune": {"sparsity": 0.5}})
    assert "prune" not in plain.canonical() and "calibrate" not in plain.canonical()
    assert pruned.canonical()["prune"] == {"sparsity": 0.5}


def test_typed_sub_tables_state_every_key_and_default_once():
    """[train], [prune] and [calibrate] are read through frozen dataclasses whose fields are
    exactly the keys the schema accepts; the spec keeps the tables as written (its hash too)."""
    from dataclasses import fields

    from slimbench.spec.schema import (
        CALIBRATE_KEYS,
        PRUNE_KEYS,
        TRAIN_KEYS,
        PruneConfig,
        StaticInt8Config,
        TrainRecipe,
        spec_from_dict,
    )

    for table, cls in ((TRAIN_KEYS, TrainRecipe), (PRUNE_KEYS, PruneConfig), (CALIBRATE_KEYS, StaticInt8Config)):
        assert set(table) == {f.name for f in fields(cls)}, cls
    spec = spec_from_dict({"name": "p", "source": "standard", "train": {"method": "distill", "epochs": 4},
                           "prune": {"heads": 0.25}})
    assert spec.recipe.epochs == 4 and spec.recipe.batch_size == 32 and spec.method == "distill"
    assert spec.pruning.structured and spec.pruning.scope == "global" and spec.static_int8.texts == 512
    # defaults are not written into it; a distilled variant's teacher pass is (it changed the bytes)
    assert spec.canonical()["train"] == {"method": "distill", "epochs": 4, "teacher_pass": "onnxruntime"}
