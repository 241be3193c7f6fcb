"""Accelerator table: the single source of truth for peak FLOP/s, memory, bandwidth and power.

Every figure is the *dense* (no 2:4 structured sparsity) tensor-core peak from the vendor's datasheet.
NVIDIA datasheets since Ampere print the sparse figure first ("1,979 TFLOPS*" for H100 BF16, the asterisk
meaning "with sparsity"); we store half of it. The content pages cite numbers from this table, so edit
figures here and nowhere else.

Memory convention: `memory_gb` is the vendor's printed capacity, read as GB = 10^9 bytes, and every size in
costs/ is in GB = 10^9 bytes. (A100/H100 "80 GB" is in fact 80 GiB = 85.9 GB: the ~7 % difference is left
as extra headroom, on top of memory.USABLE_FRACTION, the one usable share used for training and serving.)

Public API (other modules rely on it):
    get_accelerator(name) -> Accelerator      # case-insensitive, common spellings; unknown -> ValueError
    resolve_accelerator(name) -> (Accelerator, note | None)  # note says which variant a vague name picked
    ACCELERATORS                               # canonical name -> Accelerator, in display order
    canonical_names()                          # list of canonical names
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Accelerator:
    name: str                     # canonical name, e.g. "H100-80GB"
    vendor: str
    generation: str               # MFU calibration group (see costs/calibration.py)
    bf16_dense_tflops: float      # dense BF16 tensor peak (FP16 where the chip has no BF16: V100, T4)
    memory_gb: float
    bandwidth_tbps: float         # HBM / GDDR bandwidth, TB/s
    tdp_w: float | None           # board power (max/TDP); None where the vendor publishes none
    source: str                   # URL of the datasheet / spec page
    date: str                     # release date of the part (YYYY-MM) -- the figures do not age
    fp8_dense_tflops: float | None = None
    tf32_dense_tflops: float | None = None
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def peak_flops(self) -> float:
        """Dense BF16 peak in FLOP/s (the denominator of MFU)."""
        return self.bf16_dense_tflops * 1e12

    def as_dict(self) -> dict:
        return {
            "name": self.name, "vendor": self.vendor, "generation": self.generation,
            "bf16_dense_tflops": self.bf16_dense_tflops, "fp8_dense_tflops": self.fp8_dense_tflops,
            "tf32_dense_tflops": self.tf32_dense_tflops, "memory_gb": self.memory_gb,
            "bandwidth_tbps": self.bandwidth_tbps, "tdp_w": self.tdp_w, "source": self.source,
            "date": self.date, "notes": self.notes,
        }


_NV_A100 = ("https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
            "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf")
_NV_H100 = "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet"
_NV_H200 = "https://www.nvidia.com/en-us/data-center/h200/"
_NV_B200 = "https://www.nvidia.com/en-us/data-center/dgx-b200/"
_GCP_TPU = "https://cloud.google.com/tpu/docs/system-architecture-tpu-vm"

_TABLE: list[Accelerator] = [
    Accelerator(
        "V100", "NVIDIA", "Volta", 125.0, 32, 0.9, 300,
        "https://images.nvidia.com/content/technologies/volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf",
        "2017-05", notes="No BF16 on Volta: 125 TFLOPS is the FP16 tensor peak (SXM2). 16 GB and 32 GB variants.",
        aliases=("V100-32GB", "V100-SXM2", "Tesla V100")),
    Accelerator(
        "A100-40GB", "NVIDIA", "Ampere", 312.0, 40, 1.555, 400, _NV_A100, "2020-05",
        tf32_dense_tflops=156.0, notes="SXM4. Datasheet prints 624 BF16 'with sparsity'.",
        aliases=("A100-SXM4-40GB", "A100 40GB", "A100-40G")),
    Accelerator(
        "A100-80GB", "NVIDIA", "Ampere", 312.0, 80, 2.039, 400, _NV_A100, "2020-11",
        tf32_dense_tflops=156.0, notes="SXM4 (the PCIe card has 1.935 TB/s and 300 W).",
        aliases=("A100", "A100-SXM4-80GB", "A100 80GB", "A100-SXM-80GB", "A100-80G")),
    Accelerator(
        "H100-80GB", "NVIDIA", "Hopper", 989.0, 80, 3.35, 700, _NV_H100, "2022-09",
        fp8_dense_tflops=1979.0, tf32_dense_tflops=494.5,
        notes="H100 SXM5. Datasheet prints 1,979 BF16 / 3,958 FP8 'with sparsity'.",
        aliases=("H100", "H100-80G", "H100 SXM", "H100-SXM", "H100-SXM5", "H100 SXM5", "H100-SXM-80GB")),
    Accelerator(
        "H100-PCIe", "NVIDIA", "Hopper", 756.0, 80, 2.0, 350, _NV_H100, "2022-09",
        fp8_dense_tflops=1513.0, tf32_dense_tflops=378.0, notes="PCIe card, HBM2e, 300-350 W.",
        aliases=("H100 PCIe", "H100-PCIE-80GB")),
    Accelerator(
        "H800", "NVIDIA", "Hopper", 989.0, 80, 3.35, 700,
        "https://www.nvidia.com/en-us/data-center/h800/", "2023-03",
        fp8_dense_tflops=1979.0, tf32_dense_tflops=494.5,
        notes="Export variant of H100 SXM: same tensor peak, NVLink cut to 400 GB/s.",
        aliases=("H800 SXM", "H800-SXM", "H800-80GB")),
    Accelerator(
        "H200", "NVIDIA", "Hopper", 989.0, 141, 4.8, 700, _NV_H200, "2024-11",
        fp8_dense_tflops=1979.0, tf32_dense_tflops=494.5,
        notes="H200 SXM: H100 compute with 141 GB HBM3e; TDP up to 700 W.",
        aliases=("H200 SXM", "H200-SXM", "H200-141GB")),
    Accelerator(
        "B200", "NVIDIA", "Blackwell", 2250.0, 180, 8.0, 1000, _NV_B200, "2024-12",
        fp8_dense_tflops=4500.0, tf32_dense_tflops=1100.0,
        notes="Per GPU of DGX/HGX B200 (1,440 GB and 72 PFLOPS FP8 sparse per 8 GPUs); ~1,000 W.",
        aliases=("B200 SXM", "B200-SXM", "B200-180GB")),
    Accelerator(
        "MI300X", "AMD", "CDNA3", 1307.4, 192, 5.3, 750,
        "https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html", "2023-12",
        fp8_dense_tflops=2614.9, tf32_dense_tflops=653.7, notes="OAM module, HBM3.",
        aliases=("MI300", "Instinct MI300X", "AMD MI300X")),
    Accelerator(
        "TPUv3", "Google", "TPUv3", 123.0, 32, 0.9, 450, _GCP_TPU, "2018-05",
        notes="Per chip (2 TensorCores, 16 GiB each). Power: 450 W max per chip from Jouppi et al. 2021 "
              "'Ten Lessons From Three Generations' (ISCA); Google Cloud publishes no TDP.",
        aliases=("TPU v3", "TPU-v3", "v3")),
    Accelerator(
        "TPUv4", "Google", "TPUv4", 275.0, 32, 1.2, 192, "https://cloud.google.com/tpu/docs/v4", "2021-05",
        notes="Per chip. Power: 192 W max per chip (Jouppi et al. 2023, ISCA).",
        aliases=("TPU v4", "TPU-v4", "v4")),
    Accelerator(
        "TPUv5e", "Google", "TPUv5", 197.0, 16, 0.819, None, "https://cloud.google.com/tpu/docs/v5e", "2023-08",
        notes="Per chip. Google publishes no power figure: energy estimates need a user-entered wattage.",
        aliases=("TPU v5e", "TPU-v5e", "v5e", "v5 lite", "v5litepod")),
    Accelerator(
        "TPUv5p", "Google", "TPUv5", 459.0, 95, 2.765, None, "https://cloud.google.com/tpu/docs/v5p", "2023-12",
        notes="Per chip. Google publishes no power figure: energy estimates need a user-entered wattage.",
        aliases=("TPU v5p", "TPU-v5p", "v5p")),
    Accelerator(
        "L4", "NVIDIA", "Ada", 121.0, 24, 0.3, 72, "https://www.nvidia.com/en-us/data-center/l4/", "2023-03",
        fp8_dense_tflops=242.5, tf32_dense_tflops=60.0, notes="Datasheet prints 242 BF16 'with sparsity'.",
        aliases=("NVIDIA L4", "L4-24GB")),
    Accelerator(
        "L40S", "NVIDIA", "Ada", 362.05, 48, 0.864, 350, "https://www.nvidia.com/en-us/data-center/l40s/", "2023-08",
        fp8_dense_tflops=733.0, tf32_dense_tflops=183.0,
        notes="Datasheet prints 733 BF16 / 1,466 FP8 'with sparsity'. GDDR6, no NVLink.",
        aliases=("NVIDIA L40S", "L40S-48GB")),
    Accelerator(
        "RTX-A6000", "NVIDIA", "Ampere", 154.8, 48, 0.768, 300,
        "https://www.nvidia.com/en-us/design-visualization/rtx-a6000/", "2020-10", tf32_dense_tflops=77.4,
        notes="Workstation card (GA102, GDDR6): 309.7 BF16 'with sparsity' in the Ampere GA102 whitepaper.",
        aliases=("RTX A6000", "NVIDIA RTX A6000", "A6000")),
    Accelerator(
        "A10G", "NVIDIA", "Ampere", 70.0, 24, 0.6, 300, "https://aws.amazon.com/ec2/instance-types/g5/", "2021-11",
        tf32_dense_tflops=35.0,
        notes="AWS-only variant of the A10 (Ampere GA102); NVIDIA publishes no A10G datasheet. ~70 TFLOPS dense "
              "BF16 is the commonly quoted figure (the A10 card: 125). Treat as approximate.",
        aliases=("A10G-24GB", "NVIDIA A10G")),
    Accelerator(
        "T4", "NVIDIA", "Turing", 65.0, 16, 0.32, 70,
        "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf",
        "2018-09", notes="No BF16 on Turing: 65 TFLOPS is the FP16 tensor peak (mixed precision).",
        aliases=("Tesla T4", "T4-16GB")),
    Accelerator(
        "RTX4090", "NVIDIA", "Ada", 165.2, 24, 1.008, 450,
        "https://images.nvidia.com/aem-dam/Solutions/geforce/ada/nvidia-ada-gpu-architecture.pdf", "2022-10",
        fp8_dense_tflops=330.3, tf32_dense_tflops=82.6,
        notes="Ada whitepaper: BF16/FP16 with FP32 accumulate 165.2 dense (330.3 with FP16 accumulate).",
        aliases=("RTX 4090", "GeForce RTX 4090", "4090")),
]

ACCELERATORS: dict[str, Accelerator] = {acc.name: acc for acc in _TABLE}


def _key(name: str) -> str:
    """Spelling-insensitive key: lower case, no separators, no vendor/brand words, no form factor (SXM2/4/5)
    or memory type (HBM3, HBM3e): 'NVIDIA H100 80GB HBM3' (nvidia-smi) and 'H100 SXM5 80GB' -> 'h10080gb'."""
    k = re.sub(r"[\s_\-./]+", "", name.strip().lower())
    k = re.sub(r"(nvidia|amd|google|tesla|geforce|instinct)", "", k)
    k = re.sub(r"sxm\d?|hbm\d?e?|gddr\d?x?|gpu$", "", k)
    return k


_LOOKUP: dict[str, str] = {}
for _acc in _TABLE:
    for _spelling in (_acc.name, *_acc.aliases):
        _LOOKUP[_key(_spelling)] = _acc.name
    _LOOKUP[_key(_acc.name) + "sxm"] = _acc.name


# Vague spellings that pick one variant: the pick is said, never silent (the estimators pass it on as gpu_note).
_VAGUE = {
    "a100": "'A100' read as A100-80GB (SXM4); choose A100-40GB for the 40 GB part",
    "v100": "'V100' is the 32 GB SXM2 part here (the 16 GB part has the same peak but half the memory)",
    "mi300": "'MI300' read as MI300X (192 GB); the MI300A APU is not in the table",
    "h100": "'H100' read as H100-80GB (SXM5); choose H100-PCIe for the PCIe card",
}


def canonical_names() -> list[str]:
    return list(ACCELERATORS)


def get_accelerator(name: str) -> Accelerator:
    """Return the accelerator for a name in any common spelling ('a100_80gb', 'H100 SXM', 'tpu-v4').

    Raises ValueError listing the known names when the name is unknown: never a silent default.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"GPU name is empty. Known accelerators: {', '.join(canonical_names())}")
    canonical = _LOOKUP.get(_key(name))
    if canonical is None:
        raise ValueError(f"Unknown accelerator {name!r}. Known accelerators: {', '.join(canonical_names())}")
    return ACCELERATORS[canonical]


def resolve_accelerator(name: str) -> tuple[Accelerator, str | None]:
    """Like get_accelerator, plus a note when a vague name ('A100', 'V100', 'MI300', 'H100') picked a variant."""
    acc = get_accelerator(name)
    return acc, _VAGUE.get(_key(name))
