"""Cost calculator: training, fine-tuning, serving fleets, API vs self-host, memory, scaling advice and prices.
Pure Python, no heavy deps. Every estimator returns a frozen dataclass (`.to_dict()` is its JSON form).

Stable entry points used by other modules:
    costs.accelerators.get_accelerator(name)      accelerator table (single source of truth)
    costs.training.estimate_training(...)         the estimate behind `python -m costs train --json`
    costs.finetune.estimate_finetune(...)         `python -m costs finetune`
    costs.fleet.estimate_fleet(...)               `python -m costs fleet`
    costs.breakeven.estimate_break_even(...)      `python -m costs breakeven`
    costs.api_prices.load_api_prices()            costs/data/api_prices.csv (columns documented there)
    costs.calibration.committed_report()          costs/data/calibration_report.json (the MFU fit and its LOO)
    costs.urlstate.validate_link(query)           does a ?tab=costs&calc=... link resolve
"""
from costs.accelerators import ACCELERATORS, Accelerator, get_accelerator
from costs.training import estimate_training

__all__ = ["ACCELERATORS", "Accelerator", "estimate_training", "get_accelerator"]
