"""Cost calculator: training/serving compute, memory, scaling advice and prices. Pure Python, no heavy deps.

Stable entry points used by other modules:
    costs.accelerators.get_accelerator(name)      accelerator table (single source of truth)
    costs.training.estimate_training(...)         the estimate behind `python -m costs train --json`
    costs.calibration.calibration_report()        how default MFUs compare with published runs
"""
from costs.accelerators import ACCELERATORS, Accelerator, get_accelerator
from costs.training import estimate_training

__all__ = ["ACCELERATORS", "Accelerator", "estimate_training", "get_accelerator"]
