"""Runtime extensions: a runtime from outside slimbench's modules (the test suite's `calibration`),
registered by name; production code has no branch for it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from slimbench.errors import SpecError
from slimbench.extensions import ENV, extension
from slimbench.spec.schema import RUNTIMES, spec_from_dict

CAL = {"name": "sleepy", "runtime": "calibration", "calibration": {"sleep_s": 0.001}}


def test_the_calibration_runtime_is_an_extension_not_a_builtin():
    assert "calibration" not in RUNTIMES
    ext = extension("calibration")  # tests/conftest.py names slimbench.testing.calibration
    assert ext is not None and not ext.evaluate and "sleep_s" in ext.keys


def test_an_extension_spec_keeps_its_table_under_the_runtime_name():
    spec = spec_from_dict(CAL)
    assert spec.options == {"sleep_s": 0.001}
    assert spec.canonical()["calibration"] == {"sleep_s": 0.001}  # as written: the spec hash is unchanged
    assert "options" not in spec.canonical()


@pytest.mark.parametrize(("change", "message"), [
    ({"calibration": {"sleep": 1.0}}, r"\[calibration\]: unknown key\(s\) \['sleep'\]"),
    ({"calibration": {"sleep_s": "long"}}, "sleep_s must be float"),
    ({"source": "standard"}, "a 'calibration' variant \\(a runtime extension\\) takes no base, source"),
    ({"runtime": "torch"}, r"unknown key\(s\) \['calibration'\]"),  # a built-in runtime has no such table
])
def test_an_extension_table_is_checked_like_any_other(change, message):
    with pytest.raises(SpecError, match=message):
        spec_from_dict({**CAL, **change})


def _child(code: str, env_value: str | None) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != ENV}
    if env_value is not None:
        env[ENV] = env_value
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_without_the_extension_the_runtime_is_unknown():
    code = ("from slimbench.spec.zoo import spec_from_dict\n"
            f"spec_from_dict({CAL!r})\n")
    res = _child(code, None)
    assert res.returncode != 0
    assert "runtime must be one of ('torch', 'onnxruntime', 'numpy'), got 'calibration'" in res.stderr


def test_an_extension_module_that_cannot_be_imported_is_one_clear_error():
    code = ("from slimbench.errors import SlimbenchError\nfrom slimbench.extensions import extension\n"
            "try:\n    extension('anything')\nexcept SlimbenchError as err:\n    print(err)\n")
    res = _child(code, "slimbench.no_such_module")
    assert res.returncode == 0, res.stderr
    assert "SLIMBENCH_EXTENSIONS names 'slimbench.no_such_module', which cannot be imported" in res.stdout


def test_builtin_runtimes_never_load_extensions():
    """The default zoo's specs and artifacts never import an extension module: nothing is added to
    the load time of a real variant."""
    code = ("import sys\nfrom slimbench.spec.zoo import spec_from_dict\n"
            "spec_from_dict({'name': 'x', 'base': 'minilm', 'train': {'method': 'finetune'}})\n"
            "import slimbench.extensions as e\nprint(e._loaded, 'slimbench.testing.calibration' in sys.modules)\n")
    res = _child(code, "slimbench.testing.calibration")
    assert res.stdout.split() == ["False", "False"], res.stderr


def test_the_verifier_knows_every_format_a_runner_opens():
    """Artifact verification (formats.verify, below the runtimes) keeps its own table of formats;
    it must name exactly the formats the runners open."""
    from slimbench.formats.verify import RUNTIME_OF_FORMAT
    from slimbench.runtimes.runners import RUNNERS

    assert set(RUNTIME_OF_FORMAT) == set(RUNNERS)
