"""The OGBench datasets drol-diag can generate (RECIPES: names, sizes, noise settings), the official ones it
cannot (OFFICIAL_ONLY), and `plan_generation`, which checks a `data generate` request against them.

The recipes follow OGBench's published generation procedure (its repository's data_gen_scripts):
- manipulation (cube-*, scene, puzzle-*): `mode='data_collection'` environments with random initial scenes;
  "play" data from the plan oracles (plan noise 0.1, noise smoothing 0.5), "noisy" data from the markov
  oracles (min_norm 0.4) with per-episode Gaussian action noise of scale xi ~ U(0, 0.1) ([xi, xi, xi, 3 xi,
  10 xi] per action dimension) and uniformly random actions with probability 0.1 (cube, scene) or 0.2
  (puzzle: the value of OGBench's own commands). A new target is set whenever the oracle finishes one (cube
  stacking probability per episode: single 0, double U(0, 0.25), triple U(0.05, 0.35), quadruple U(0.1, 0.5),
  scene 0.5). Scene episodes that push the block out of sight (OGBench's health check) are redone.
- pointmaze: the environment's oracle subgoal direction plus Gaussian noise of scale 0.5; "navigate" episodes
  start in a random free cell and chase random junction cells (a new one whenever the current one is
  reached); "stitch" episodes go to a cell exactly 4 cells away.
"""

from __future__ import annotations

from dataclasses import dataclass

from drol_diag.tasks.ogbench import OGBENCH_URL

NOISE_PLAY = 0.1  # plan oracles' noise scale (OGBench's default flag)
NOISE_SMOOTHING = 0.5  # plan oracles' temporal noise smoothing (Gaussian filter sigma, in steps)
NOISE_NOISY = 0.1  # noisy data: the per-episode action-noise scale xi is drawn from U(0, this)
MIN_NORM = 0.4  # markov oracles' minimum norm of the position difference they act on
NOISE_MAZE = 0.5  # pointmaze: std of the Gaussian noise added to the oracle direction
STITCH_DISTANCE = 4  # pointmaze stitch: the goal cell is this many cells (BFS steps) from the start cell

MANIPULATION_EPISODES = {  # official training episodes (1001 steps each; validation: a tenth more)
    "cube-single": 1000,
    "cube-double": 1000,
    "cube-triple": 3000,
    "cube-quadruple": 5000,
    "scene": 1000,
    "puzzle-3x3": 1000,
    "puzzle-4x4": 1000,
}
MANIPULATION_STEPS = 1001  # rows per manipulation episode
STACK_PROBABILITY = {  # per-episode probability of a stacking target, drawn uniformly from (low, high)
    "cube-single": (0.0, 0.0),
    "cube-double": (0.0, 0.25),
    "cube-triple": (0.05, 0.35),
    "cube-quadruple": (0.1, 0.5),
}
DEFAULT_STACK_PROBABILITY = 0.5  # scene (puzzle ignores it)
MAZE_SIZES = {  # (episodes, steps) of the official pointmaze navigate data per maze size
    "medium": (1000, 1001),
    "large": (1000, 1001),
    "giant": (500, 2001),
}
STITCH_SIZE = (5000, 201)  # (episodes, steps) of every official pointmaze stitch dataset

# The other official state-based datasets: their expert policies (locomotion) or recipe sizes are not shipped.
OFFICIAL_ONLY: tuple[str, ...] = (
    *(f"pointmaze-teleport-{kind}-v0" for kind in ("navigate", "stitch")),
    *(f"antmaze-{size}-{kind}-v0" for kind in ("navigate", "stitch")
      for size in ("medium", "large", "giant", "teleport")),
    *(f"antmaze-{size}-explore-v0" for size in ("medium", "large", "teleport")),
    *(f"humanoidmaze-{size}-{kind}-v0" for kind in ("navigate", "stitch") for size in ("medium", "large", "giant")),
    *(f"antsoccer-{size}-{kind}-v0" for kind in ("navigate", "stitch") for size in ("arena", "medium")),
    *(f"puzzle-{size}-{kind}-v0" for size in ("4x5", "4x6") for kind in ("play", "noisy")),
)


@dataclass(frozen=True)
class Recipe:
    """How one official OGBench dataset is produced."""

    name: str  # dataset name: the files are <name>.npz and <name>-val.npz
    env_id: str  # the gymnasium environment that generates it, e.g. cube-single-v0
    family: str  # environment family, e.g. cube-single, scene, puzzle-3x3, pointmaze-medium
    kind: str  # play or noisy (manipulation), navigate or stitch (pointmaze)
    episodes: int  # training episodes of the official dataset (validation: a tenth as many)
    episode_steps: int  # rows per episode
    noise: float  # play: plan noise; noisy: upper bound of xi; pointmaze: action noise std
    p_random_action: float  # probability of a uniformly random action at each step

    @property
    def is_maze(self) -> bool:
        return self.family.startswith("pointmaze")

    @property
    def example_task(self) -> str:
        """A single-task name that trains on this dataset, e.g. cube-single-play-singletask-task1-v0."""
        return self.name.replace("-v0", "-singletask-task1-v0")


def _build_recipes() -> dict[str, Recipe]:
    recipes = []
    for family, episodes in MANIPULATION_EPISODES.items():
        for kind in ("play", "noisy"):
            p_random = 0.0 if kind == "play" else (0.2 if family.startswith("puzzle") else 0.1)
            recipes.append(Recipe(f"{family}-{kind}-v0", f"{family}-v0", family, kind, episodes, MANIPULATION_STEPS,
                                  NOISE_PLAY if kind == "play" else NOISE_NOISY, p_random))
    for size, (episodes, steps) in MAZE_SIZES.items():
        for kind, (kind_episodes, kind_steps) in (("navigate", (episodes, steps)), ("stitch", STITCH_SIZE)):
            recipes.append(Recipe(f"pointmaze-{size}-{kind}-v0", f"pointmaze-{size}-v0", f"pointmaze-{size}", kind,
                                  kind_episodes, kind_steps, NOISE_MAZE, 0.0))
    return {recipe.name: recipe for recipe in recipes}


RECIPES: dict[str, Recipe] = _build_recipes()


def recipe_for(name: str) -> Recipe:
    """The recipe of a generatable dataset; ValueError (one line, the valid names) otherwise."""
    if name in RECIPES:
        return RECIPES[name]
    if name in OFFICIAL_ONLY:
        raise ValueError(f"cannot generate {name!r} here (OGBench's expert policies or its recipe are not shipped); "
                         f"copy {name}.npz and {name}-val.npz from {OGBENCH_URL} into the dataset folder on a "
                         "machine with network")
    families = sorted({r.family for r in RECIPES.values()})
    kinds = "play|noisy for manipulation, navigate|stitch for pointmaze"
    hint = ""
    if name.endswith(".npz"):
        hint = " (give the dataset name without .npz)"
    elif "-singletask" in name:
        hint = f" (a dataset name has no -singletask-taskN part, e.g. {name.split('-singletask')[0]}-v0)"
    raise ValueError(f"cannot generate {name!r}{hint}; valid names are <family>-<type>-v0 with family one of "
                     f"{', '.join(families)} and type {kinds}, e.g. cube-single-play-v0 "
                     "(drol-diag data list shows them all)")


@dataclass(frozen=True)
class GenerationPlan:
    """What one `data generate` produces: episodes 0..train_episodes-1 go to <name>.npz, the next
    val_episodes to <name>-val.npz; every episode has episode_steps rows."""

    recipe: Recipe
    train_episodes: int  # episodes in <name>.npz
    val_episodes: int  # episodes in <name>-val.npz (their indices follow the training ones)
    episode_steps: int  # rows per episode
    seed: int  # root of every episode's SeedSequence

    @property
    def total_episodes(self) -> int:
        return self.train_episodes + self.val_episodes

    @property
    def total_rows(self) -> int:
        return self.total_episodes * self.episode_steps


def plan_generation(name: str, episodes: int | None = None, episode_steps: int | None = None, seed: int = 0,
                    val_episodes: int | None = None) -> GenerationPlan:
    """Check the options and resolve the defaults (the official sizes; validation: max(1, episodes // 10));
    ValueError (one line) on bad input."""
    recipe = recipe_for(name)
    if episodes is not None and episodes < 1:
        raise ValueError(f"--episodes must be a positive integer, got {episodes}")
    if episode_steps is not None and episode_steps < 2:
        raise ValueError(f"--episode-steps must be at least 2 (the loader drops each episode's last row), "
                         f"got {episode_steps}")
    if val_episodes is not None and val_episodes < 1:
        raise ValueError(f"validation episodes must be a positive integer, got {val_episodes}")
    if seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed}")
    train = recipe.episodes if episodes is None else episodes
    return GenerationPlan(recipe, train, val_episodes or max(1, train // 10),
                          episode_steps or recipe.episode_steps, seed)
