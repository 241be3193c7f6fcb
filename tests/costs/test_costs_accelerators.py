import pytest

from costs import prices
from costs.accelerators import ACCELERATORS, canonical_names, get_accelerator, resolve_accelerator

REQUIRED = ["V100", "A100-40GB", "A100-80GB", "H100-80GB", "H100-PCIe", "H800", "H200", "B200", "MI300X",
            "TPUv3", "TPUv4", "TPUv5e", "TPUv5p", "L4", "A10G", "T4", "RTX4090"]


def test_every_required_accelerator_is_in_the_table_with_source_and_date():
    for name in REQUIRED:
        acc = get_accelerator(name)
        assert acc.name == name
        assert acc.source.startswith("https://") and len(acc.date) == 7
        assert acc.bf16_dense_tflops > 0 and acc.memory_gb > 0 and acc.bandwidth_tbps > 0


@pytest.mark.parametrize("spelling,canonical", [
    ("A100-80GB", "A100-80GB"), ("a100_80gb", "A100-80GB"), ("A100 80GB", "A100-80GB"),
    ("a100-40gb", "A100-40GB"), ("H100-80GB", "H100-80GB"), ("H100 SXM", "H100-80GB"), ("h100", "H100-80GB"),
    ("H100_SXM5", "H100-80GB"), ("h100 pcie", "H100-PCIe"), ("TPUv4", "TPUv4"), ("tpu-v4", "TPUv4"),
    ("TPU v5e", "TPUv5e"), ("tpu_v5p", "TPUv5p"), ("rtx 4090", "RTX4090"), ("RTX-4090", "RTX4090"),
    ("mi300x", "MI300X"), ("Tesla T4", "T4"), ("nvidia l4", "L4"), ("a10g", "A10G"), ("b200", "B200"),
])
def test_common_spellings_resolve_to_the_canonical_name(spelling, canonical):
    assert get_accelerator(spelling).name == canonical


@pytest.mark.parametrize("bad", ["H900", "A100-160GB", "", "   ", "TPUv9"])
def test_unknown_name_is_a_value_error_listing_known_names(bad):
    with pytest.raises(ValueError) as info:
        get_accelerator(bad)
    assert "H100-80GB" in str(info.value) and "TPUv4" in str(info.value)


def test_peaks_are_dense_not_the_sparse_datasheet_figures():
    # datasheets print 1,979 (H100 BF16), 624 (A100 BF16), 242 (L4 BF16) *with sparsity*
    assert get_accelerator("H100-80GB").bf16_dense_tflops == 989.0
    assert get_accelerator("H100-80GB").fp8_dense_tflops == 1979.0
    assert get_accelerator("A100-80GB").bf16_dense_tflops == 312.0
    assert get_accelerator("L4").bf16_dense_tflops == 121.0
    assert get_accelerator("H100-PCIe").bf16_dense_tflops == 756.0
    assert get_accelerator("B200").bf16_dense_tflops == 2250.0


def test_design_note_bandwidths_match_the_table():
    expected = {"A100-80GB": 2.0, "H100-80GB": 3.35, "H200": 4.8, "B200": 8.0, "MI300X": 5.3, "L4": 0.3,
                "A10G": 0.6, "T4": 0.32}
    for name, tbps in expected.items():
        assert get_accelerator(name).bandwidth_tbps == pytest.approx(tbps, rel=0.03)


def test_api_object_exposes_the_documented_fields():
    acc = get_accelerator("H100 SXM")
    for field in ("name", "bf16_dense_tflops", "memory_gb", "bandwidth_tbps", "tdp_w", "source", "date"):
        assert hasattr(acc, field)
    assert acc.peak_flops == 989e12
    assert canonical_names() == list(ACCELERATORS)


@pytest.mark.parametrize("spelling,canonical", [
    ("NVIDIA H100 80GB HBM3", "H100-80GB"), ("H100 SXM5 80GB", "H100-80GB"), ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
    ("NVIDIA A100-SXM4-80GB", "A100-80GB"), ("Tesla V100-SXM2-32GB", "V100"), ("NVIDIA H100 PCIe", "H100-PCIe"),
    ("NVIDIA GeForce RTX 4090", "RTX4090"), ("NVIDIA H200", "H200"), ("NVIDIA L40S", "L40S"),
    ("NVIDIA RTX A6000", "RTX-A6000"),
])
def test_nvidia_smi_and_datasheet_names_are_accepted(spelling, canonical):
    acc, note = resolve_accelerator(spelling)
    assert acc.name == canonical and note is None


@pytest.mark.parametrize("vague,picked,alternative", [("A100", "A100-80GB", "A100-40GB"), ("V100", "V100", "16 GB"),
                                                      ("MI300", "MI300X", "MI300A"), ("H100", "H100-80GB", "PCIe")])
def test_vague_names_say_which_variant_they_picked(vague, picked, alternative):
    acc, note = resolve_accelerator(vague)
    assert acc.name == picked and alternative in note


def test_every_gpu_with_a_spot_preset_has_a_dearer_on_demand_default():
    for acc in ACCELERATORS.values():
        spot, on_demand = prices.default_price(acc.name, "spot"), prices.default_price(acc.name, "on-demand")
        if spot is not None:
            assert on_demand.usd_per_gpu_hour > spot.usd_per_gpu_hour, acc.name
            assert (on_demand.source, on_demand.as_of) == (spot.source, spot.as_of), acc.name  # same table
