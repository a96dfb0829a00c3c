"""OGBench dataset generation, offline, with ogbench's own environments and oracles.

Modules, each importing only those before it: recipes (dataset names, sizes, noise; plan_generation) <- episodes
(environments and oracle episode drivers) <- pool (chunks of episodes across worker processes) <- files
(generate_dataset: the npz files, written atomically) <- catalog (`data list` / `data info`).
"""

from drol_diag.datagen.catalog import DatasetInfo, dataset_info, format_catalog, format_info
from drol_diag.datagen.episodes import EpisodeStats, LeanStepMixin, make_episode_runner, scene_is_healthy
from drol_diag.datagen.files import ZIP_COMPRESSLEVEL, GenerationResult, dataset_paths, generate_dataset, write_npz
from drol_diag.datagen.pool import Progress, generate_arrays, run_chunk
from drol_diag.datagen.recipes import OFFICIAL_ONLY, RECIPES, GenerationPlan, Recipe, plan_generation

__all__ = [
    "OFFICIAL_ONLY", "RECIPES", "ZIP_COMPRESSLEVEL", "DatasetInfo", "EpisodeStats", "GenerationPlan",
    "GenerationResult", "LeanStepMixin", "Progress", "Recipe", "dataset_info", "dataset_paths", "format_catalog",
    "format_info", "generate_arrays", "generate_dataset", "make_episode_runner", "plan_generation", "run_chunk",
    "scene_is_healthy", "write_npz",
]
