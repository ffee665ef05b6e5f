"""The single-label path stays byte for byte what it was before multi-label datasets existed: the
same dataset fingerprints and the same spec hashes for the default zoo, so every cached artifact of
a single-label run is still found. The golden values were computed with the code of main at
2671090, before the multi-label work began."""

from __future__ import annotations

from slimbench.cache.assets import asset_fingerprint
from slimbench.data import movie_snippets, synthetic_splits, table_dataset
from slimbench.spec.zoo import Zoo
from slimbench.testing import vader_dir

MOVIE_FINGERPRINT = "fe3b3f0a34306a3ed1183722448c2baa8414096e4fd022ebb16371efc193236b"
DEFAULT_ZOO_HASHES = {
    "standard": "de814a52704f51e18a3ea364da024e5cd439c4bccb0d21506fea217828bf6bd0",
    "light": "d9d3736bb54ab7b820ec66ba0ac480e319f0ec5076ab6c357a87b8ad3ea46592",
    "ultra-light": "75d5bdfcdcc7ba201829289f6de2de9e3bb2c4d3ee08f1633772bd874b395189",
    "quantized": "3f4103382e68fb72fe334e0d13f1235d3cb31cfd0efa9a4d94bc02e84dd061fb",
    "onnx": "cf4b5511dcb99a1d82e0d1afaad2ec65e95ae6d360aa53fba37565e6bc9e9fe2",
    "onnx-int8": "66bb0a66844583d2fd36b94208d89dee7e0fa36c775f75236e01964c32e49a89",
    "onnx-static-int8": "e955ee40a0c883f15ad7878678a7b39f06531376a132de8d4eb9fa3d12587244",
    "ultra-light-onnx-int8": "01c4f9e4d1ae226d7d0a04a41b0c32d180fc724d129ccda8a2d0d86af107fcdb",
    "pruned-heads": "da8fa94e6623754d57c510c3c1cfc18046934ec4b98d6dc2835d4f35f36feaa2",
    "sparse-50": "2e4ccf9aa134b4f089c22b66b89899ae9b46312fabf2589ae67683c1266edc89",
    "standard-numpy": "cdc01732e2122377909a9b4523d7a8cdda9f3c7efcb8feb4e506b5938534f8a5",
    "ultra-light-numpy": "b646ae54cb1eb45a9b76c9d1add798eaa1bcadf060f236bb31e952c4e17f63a1",
}


def test_default_zoo_spec_hashes_are_unchanged():
    inputs = {"dataset": MOVIE_FINGERPRINT, **asset_fingerprint()}
    zoo = Zoo.load()
    assert {name: zoo.spec_hash(name, inputs) for name in zoo.names} == DEFAULT_ZOO_HASHES


def test_single_label_fingerprints_are_unchanged(tmp_path):
    assert synthetic_splits().fingerprint() == "4833ed490cb92fb857f97fab34b58c802d702845397ecd57f91615c6c3d1a407"
    rows = ["text,label"] + [f"sentence number {i} is {'good' if i % 3 else 'bad'},{'pos' if i % 3 else 'neg'}"
                             for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    assert table_dataset(tmp_path / "t.csv").fingerprint() == (
        "c784be6e7a7bbe045ab49b8298145dfb87aaf9a08cfd072758e05efcb983feba")


def test_default_dataset_fingerprint_is_unchanged():
    directory = vader_dir()
    splits = movie_snippets(directory)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (7953, 1008, 1109)
    assert splits.fingerprint() == MOVIE_FINGERPRINT
