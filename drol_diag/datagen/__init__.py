"""OGBench dataset generation, offline, with ogbench's own environments and oracles."""

from drol_diag.datagen.catalog import dataset_info, format_catalog, format_info
from drol_diag.datagen.generate import Progress, generate_dataset, plan_generation

__all__ = ["Progress", "dataset_info", "format_catalog", "format_info", "generate_dataset", "plan_generation"]
