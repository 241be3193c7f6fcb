"""Price presets: $/GPU-hour (on-demand and spot), storage $/GB-month, egress $/GB. Each with date and source.

Prices move every month and differ by region, commitment and provider: these are *indicative snapshots* to
start from, not quotes. The UI and CLI always show which preset was used and let the user override it.
The first on-demand entry of a GPU is its default when no price is given.
"""
from __future__ import annotations

from dataclasses import dataclass

from costs.accelerators import get_accelerator
from costs.units import non_negative


@dataclass(frozen=True)
class GpuPrice:
    gpu: str                 # canonical accelerator name
    kind: str                # "on-demand" | "spot"
    usd_per_gpu_hour: float
    provider: str
    source: str
    as_of: str               # YYYY-MM of the snapshot
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.gpu} {self.kind} ${self.usd_per_gpu_hour:.2f}/GPU-h ({self.provider}, {self.as_of})"


_RUNPOD = "https://deploybase.ai/articles/runpod-gpu-pricing"
_RUNPOD_NOTE = "RunPod list prices as summarised by a third party (deploybase.ai, 2026-03); check runpod.io/pricing"
_AWS = "https://aws.amazon.com/ec2/pricing/on-demand/"
_GCP_TPU = "https://cloud.google.com/tpu/pricing"

GPU_PRICES: tuple[GpuPrice, ...] = (
    GpuPrice("V100", "on-demand", 3.06, "AWS p3.2xlarge (1 GPU), us-east-1", _AWS, "2024-06"),
    GpuPrice("A100-40GB", "on-demand", 4.10, "AWS p4d.24xlarge ($32.77/h / 8 GPUs), us-east-1", _AWS, "2024-06"),
    GpuPrice("A100-80GB", "on-demand", 2.45, "RunPod A100 SXM 80GB", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("A100-80GB", "spot", 1.39, "RunPod A100 SXM 80GB spot", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    # The default is the on-demand column of the same table as the spot price below (one source, one date);
    # a second summary's $2.69 equals that spot price, so it is kept as an alternative, not the default.
    GpuPrice("H100-80GB", "on-demand", 4.76, "RunPod H100 SXM (on-demand column)", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("H100-80GB", "on-demand", 2.69, "RunPod Secure Cloud H100 SXM",
             "https://www.spheron.network/blog/runpod-h100-pricing-2026/", "2026-05",
             "third-party summary of RunPod pricing; equals the spot price of the deploybase table"),
    GpuPrice("H100-80GB", "spot", 2.69, "RunPod H100 SXM spot", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("H100-PCIe", "on-demand", 3.51, "RunPod H100 PCIe", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("H100-PCIe", "spot", 1.99, "RunPod H100 PCIe spot", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("H800", "on-demand", 2.00, "rental price assumed in the DeepSeek-V3 report",
             "https://arxiv.org/abs/2412.19437", "2024-12", "an assumption in the paper, not a list price"),
    GpuPrice("H200", "on-demand", 6.35, "RunPod H200", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("H200", "spot", 3.59, "RunPod H200 spot", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("B200", "on-demand", 10.57, "RunPod B200", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("B200", "spot", 5.98, "RunPod B200 spot", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("TPUv3", "on-demand", 2.00, "Google Cloud v3-8 device ($8.00/h / 4 chips)", _GCP_TPU, "2024-06"),
    GpuPrice("TPUv4", "on-demand", 3.22, "Google Cloud TPU v4, per chip-hour, us-central2", _GCP_TPU, "2024-06"),
    GpuPrice("TPUv5e", "on-demand", 1.20, "Google Cloud TPU v5e, per chip-hour, us-central1", _GCP_TPU, "2024-06"),
    GpuPrice("TPUv5p", "on-demand", 4.20, "Google Cloud TPU v5p, per chip-hour, us-east5", _GCP_TPU, "2024-06"),
    GpuPrice("L4", "on-demand", 0.78, "RunPod L4", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("L4", "spot", 0.44, "RunPod L4 spot", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("A10G", "on-demand", 1.006, "AWS g5.xlarge (1 GPU), us-east-1", _AWS, "2024-06"),
    GpuPrice("T4", "on-demand", 0.526, "AWS g4dn.xlarge (1 GPU), us-east-1", _AWS, "2024-06"),
    GpuPrice("RTX4090", "on-demand", 0.60, "RunPod RTX 4090", _RUNPOD, "2026-03", _RUNPOD_NOTE),
    GpuPrice("RTX4090", "spot", 0.34, "RunPod RTX 4090 spot", _RUNPOD, "2026-03", _RUNPOD_NOTE),
)

# Storage and transfer (AWS S3 Standard list prices, us-east-1): first 50 TB/month tier, first 10 TB/month egress.
STORAGE_USD_PER_GB_MONTH = 0.023
STORAGE_SOURCE = "AWS S3 Standard, first 50 TB/month, us-east-1 (https://aws.amazon.com/s3/pricing/, 2024-06)"
EGRESS_USD_PER_GB = 0.09
EGRESS_SOURCE = ("AWS data transfer out to the internet, first 10 TB/month "
                 "(https://aws.amazon.com/ec2/pricing/on-demand/, 2024-06)")


def prices_for(gpu: str, kind: str | None = None) -> list[GpuPrice]:
    canonical = get_accelerator(gpu).name
    return [p for p in GPU_PRICES if p.gpu == canonical and (kind is None or p.kind == kind)]


PRICE_KINDS = ("on-demand", "spot")


def default_price(gpu: str, kind: str = "on-demand") -> GpuPrice | None:
    """First preset of that kind for the GPU, or None (MI300X has no preset: the user must enter one)."""
    if kind not in PRICE_KINDS:
        raise ValueError(f"price kind must be one of {', '.join(PRICE_KINDS)}, got {kind!r}")
    found = prices_for(gpu, kind)
    return found[0] if found else None


def resolve_price(gpu: str, price=None, kind: str = "on-demand") -> tuple[float | None, str | None]:
    """(USD per GPU-hour, source) from the user's price or the preset; (None, None) when there is neither.

    Asking for a spot price where no spot preset exists is an error (a silent fall-back to on-demand, or
    to no cost at all, would hide that the number the user asked for does not exist).
    """
    if price not in (None, ""):
        return non_negative(price, "price"), "user"
    preset = default_price(gpu, kind)
    if preset is None:
        if kind == "spot":
            have = [p.gpu for p in GPU_PRICES if p.kind == "spot"]
            raise ValueError(f"no spot price preset for {get_accelerator(gpu).name} (spot presets: "
                             f"{', '.join(have)}): enter a price (--price) or use on-demand")
        return None, None
    return preset.usd_per_gpu_hour, f"{preset.provider} ({preset.kind}, {preset.as_of}) {preset.source}"
