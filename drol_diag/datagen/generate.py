"""Generate OGBench datasets offline: ogbench's own environments driven by ogbench's own oracles.

`drol-diag data generate NAME` writes `<NAME>.npz` and `<NAME>-val.npz` in the official layout, which
`ogbench.make_env_and_datasets` (and so `drol-diag run`) reads. Each row t of an episode holds the
observation o_t (float32), the action a_t taken there (float32, clipped to [-1, 1]), terminals (bool, 1 on
the episode's last row, whose action has no next observation: the loader drops that row), and the simulator
state that o_t shows: qpos, qvel (float32) and, where the environment has buttons, button_states (int64).

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

Determinism: episode i (training episodes first, then validation ones) with attempt k draws all of its
randomness from `np.random.SeedSequence([seed, i, k])`: the seed of numpy's global generator (which the
oracles and OGBench's scripts use), the environment's reset seed and the action space's seed. So the files are
byte-identical for a given seed whatever the number of worker processes.

Speed without changing a number: episodes step the environment object itself (no gymnasium wrappers; the
time limit is the episode length we count), manipulation environments compute the observation info once per
step instead of three times (`LeanStepMixin`), and the maze oracle's breadth-first search is memoised on
(agent cell, goal cell). `tests/test_datagen.py` checks that this fast path gives byte-identical arrays to
the plain `gymnasium.make` environment.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


import numpy as np

from drol_diag.tasks.episodes import usable_cores

NOISE_PLAY = 0.1  # plan oracles' noise scale (OGBench's default flag)
NOISE_SMOOTHING = 0.5  # plan oracles' temporal noise smoothing (Gaussian filter sigma, in steps)
NOISE_NOISY = 0.1  # noisy data: the per-episode action-noise scale xi is drawn from U(0, this)
MIN_NORM = 0.4  # markov oracles' minimum norm of the position difference they act on
NOISE_MAZE = 0.5  # pointmaze: std of the Gaussian noise added to the oracle direction
STITCH_DISTANCE = 4  # pointmaze stitch: the goal cell is this many cells (BFS steps) from the start cell
ZIP_COMPRESSLEVEL = 1  # DEFLATE level of the npz files (np.savez_compressed's 6: 1.2-1.4x slower, ~1% smaller)

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
SCENE_BLOCK_QPOS = slice(14, 17)  # scene: the block's xyz in qpos (the health check looks at it)

DTYPES = {"terminals": np.bool_, "button_states": np.int64}  # every other key is float32


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
    from drol_diag.datagen.catalog import OFFICIAL_ONLY, OGBENCH_URL

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
    """Check the options and resolve the defaults (the official sizes); ValueError (one line) on bad input.

    `episodes`: training episodes [official count]; validation gets max(1, episodes // 10) unless
    `val_episodes` is given. `episode_steps`: rows per episode [official length], at least 2 (ogbench's
    loader drops each episode's last row).
    """
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


def episode_seeds(seed: int, episode: int, attempt: int) -> tuple[int, int, int]:
    """(numpy global seed, environment reset seed, action-space seed) of one episode attempt."""
    words = np.random.SeedSequence([seed, episode, attempt]).generate_state(3)
    return int(words[0]), int(words[1]), int(words[2])


# --------------------------------------------------------------------------------------------
# Environments and oracles


class LeanStepMixin:
    """Put before an ogbench manipulation environment class: the same environment, less Python per step.

    ManipSpaceEnv.step computes the observation info (a dict of ~30 small arrays) three times: in pre_step
    (kept as `_prev_ob_info`, of which only the button joint positions are ever read, by scene's and puzzle's
    post_step), in compute_observation and in get_step_info, the last two on the same simulator state. Here
    pre_step keeps only the button positions, and get_step_info returns the info compute_observation just
    computed. Every observation, info value and simulator state is unchanged (tests/test_datagen.py).
    """

    _ob_info_memo: dict | None = None
    _in_pre_step = False
    _memoising = False

    def pre_step(self) -> None:
        self._ob_info_memo = None
        self._in_pre_step = True
        try:
            super().pre_step()
        finally:
            self._in_pre_step = False

    def compute_ob_info(self) -> dict:
        if self._in_pre_step:  # the part of the pre-step info that post_step reads
            return {f"privileged/button_{i}_pos": self._data.joint(f"buttonbox_joint_{i}").qpos.copy()
                    for i in range(getattr(self, "_num_buttons", 0))}
        ob_info = super().compute_ob_info()
        if self._memoising:
            self._ob_info_memo = ob_info
        return ob_info

    def compute_observation(self):
        self._memoising = True
        try:
            return super().compute_observation()
        finally:
            self._memoising = False

    def get_step_info(self) -> dict:
        memo, self._ob_info_memo = self._ob_info_memo, None  # step calls this right after compute_observation
        return memo if memo is not None else super().get_step_info()


_LEAN_CLASSES: dict[type, type] = {}


def make_env(recipe: Recipe, episode_steps: int, fast: bool = True):
    """The recipe's environment. fast=False: `gymnasium.make` exactly as OGBench's scripts build it (wrappers,
    TimeLimit of episode_steps). fast=True: the same environment class with `LeanStepMixin` (manipulation)
    or the bare environment (pointmaze), without wrappers; the caller counts the time limit."""
    import gymnasium
    import ogbench  # noqa: F401  (registers the environments)

    kwargs = {"terminate_at_goal": False}
    if not recipe.is_maze:
        kwargs["mode"] = "data_collection"  # random initial scenes and targets
    if not fast:
        return gymnasium.make(recipe.env_id, max_episode_steps=episode_steps, **kwargs)
    if recipe.is_maze:
        return gymnasium.make(recipe.env_id, max_episode_steps=episode_steps, **kwargs).unwrapped
    spec = gymnasium.spec(recipe.env_id)
    base = gymnasium.envs.registration.load_env_creator(spec.entry_point)
    lean = _LEAN_CLASSES.setdefault(base, type(f"Lean{base.__name__}", (LeanStepMixin, base), {}))
    return lean(**{**spec.kwargs, **kwargs})


def make_oracles(recipe: Recipe, env) -> dict[str, object]:
    """ogbench's oracles for the recipe, keyed by the target task names the environment reports."""
    from ogbench.manipspace.oracles.markov.button_markov import ButtonMarkovOracle
    from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle
    from ogbench.manipspace.oracles.markov.drawer_markov import DrawerMarkovOracle
    from ogbench.manipspace.oracles.markov.window_markov import WindowMarkovOracle
    from ogbench.manipspace.oracles.plan.button_plan import ButtonPlanOracle
    from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle
    from ogbench.manipspace.oracles.plan.drawer_plan import DrawerPlanOracle
    from ogbench.manipspace.oracles.plan.window_plan import WindowPlanOracle

    if recipe.kind == "play":
        plan = dict(env=env, noise=recipe.noise, noise_smoothing=NOISE_SMOOTHING)
        if recipe.family.startswith("cube"):
            return {"cube": CubePlanOracle(**plan)}
        if recipe.family == "scene":
            return {"cube": CubePlanOracle(**plan), "button": ButtonPlanOracle(**plan),
                    "drawer": DrawerPlanOracle(**plan), "window": WindowPlanOracle(**plan)}
        return {"button": ButtonPlanOracle(gripper_always_closed=True, **plan)}
    markov = dict(env=env, min_norm=MIN_NORM)
    if recipe.family.startswith("cube"):
        return {"cube": CubeMarkovOracle(**markov)}
    if recipe.family == "scene":
        return {"cube": CubeMarkovOracle(max_step=100, **markov), "button": ButtonMarkovOracle(**markov),
                "drawer": DrawerMarkovOracle(**markov), "window": WindowMarkovOracle(**markov)}
    return {"button": ButtonMarkovOracle(gripper_always_closed=True, **markov)}


# --------------------------------------------------------------------------------------------
# Episodes


@dataclass
class EpisodeStats:
    """What the oracles achieved in some episodes (success is reachable: tests assert on these)."""

    targets: int = 0  # manipulation: targets the oracle finished; pointmaze: goals set
    reached: int = 0  # manipulation: finished targets that were achieved; pointmaze: goals reached
    redone: int = 0  # scene episodes discarded by the health check and run again

    def add(self, other: EpisodeStats) -> None:
        self.targets += other.targets
        self.reached += other.reached
        self.redone += other.redone


class Rows:
    """Preallocated arrays for `rows` rows, allocated at the first written row (its shapes)."""

    def __init__(self, rows: int):
        self.rows = rows
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, row: int, values: dict[str, np.ndarray]) -> None:
        if not self.arrays:
            for key, value in values.items():
                value = np.asarray(value)
                self.arrays[key] = np.zeros((self.rows, *value.shape), DTYPES.get(key, np.float32))
        for key, value in values.items():
            self.arrays[key][row] = value


def scene_is_healthy(block_xyz: np.ndarray) -> bool:
    """OGBench's scene check on an episode's block positions (steps, 3): the block stays in sight, i.e. never
    too far right (y >= 0.29) nor too far left (y <= -0.3) outside the drawer's height band (0.06 <= z <= 0.08)."""
    y, z = block_xyz[:, 1], block_xyz[:, 2]
    return not ((y >= 0.29).any() or ((y <= -0.3) & ((z < 0.06) | (z > 0.08))).any())


class ManipulationEpisodes:
    """Runs episodes of a manipulation recipe in one environment (see module docstring)."""

    def __init__(self, plan: GenerationPlan, fast: bool = True):
        self.plan = plan
        self.recipe = plan.recipe
        self.env = make_env(self.recipe, plan.episode_steps, fast)
        self.agents = make_oracles(self.recipe, self.env)
        self.has_buttons = hasattr(self.env.unwrapped, "_cur_button_states")
        self.is_scene = self.recipe.family == "scene"
        low, high = STACK_PROBABILITY.get(self.recipe.family, (DEFAULT_STACK_PROBABILITY,) * 2)
        self.stack_range = (low, high)

    def run(self, episode: int, rows: Rows, first_row: int) -> EpisodeStats:
        """Write episode `episode` into rows[first_row : first_row + steps]; redo unhealthy scene episodes."""
        for attempt in range(1000):
            stats, block_xyz = self._attempt(episode, attempt, rows, first_row)
            if not self.is_scene or scene_is_healthy(block_xyz):
                stats.redone = attempt  # (the stats are the kept attempt's)
                return stats
        raise RuntimeError(f"episode {episode} failed the scene health check 1000 times")

    def _attempt(self, episode: int, attempt: int, rows: Rows, first_row: int) -> tuple[EpisodeStats, np.ndarray]:
        numpy_seed, reset_seed, space_seed = episode_seeds(self.plan.seed, episode, attempt)
        np.random.seed(numpy_seed)  # the oracles draw from numpy's global generator
        action_space = self.env.unwrapped.action_space  # (a fresh Box on every access for these envs)
        action_space.seed(space_seed)
        env, steps, noisy = self.env, self.plan.episode_steps, self.recipe.kind == "noisy"
        ob, info = env.reset(seed=reset_seed)
        low, high = self.stack_range
        p_stack = np.random.uniform(low, high) if high > low else low
        xi = np.random.uniform(0, self.recipe.noise) if noisy else 0.0
        noise_scale = [xi, xi, xi, xi * 3, xi * 10]
        agent = self.agents[info["privileged/target_task"]]
        agent.reset(ob, info)
        stats = EpisodeStats()
        block_xyz = np.zeros((steps, 3))
        for t in range(steps):
            if np.random.rand() < self.recipe.p_random_action:  # drawn every step, as OGBench's script does
                action = action_space.sample()
            else:
                action = np.array(agent.select_action(ob, info))
                if noisy:
                    action = action + np.random.normal(0, noise_scale, action.shape)
            action = np.clip(action, -1, 1)
            next_ob, _, _, _, info = env.step(action)
            if agent.done:  # a new target; the oracle's next action still sees this step's info, as OGBench's
                stats.targets += 1
                stats.reached += bool(info["success"])
                agent_ob, agent_info = env.unwrapped.set_new_target(p_stack=p_stack)
                agent = self.agents[agent_info["privileged/target_task"]]
                agent.reset(agent_ob, agent_info)
            row = {"observations": ob, "actions": action, "terminals": t == steps - 1,
                   "qpos": info["prev_qpos"], "qvel": info["prev_qvel"]}
            if self.has_buttons:
                row["button_states"] = info["prev_button_states"]
            rows.put(first_row + t, row)
            if self.is_scene:
                block_xyz[t] = info["prev_qpos"][SCENE_BLOCK_QPOS]
            ob = next_ob
        return stats, block_xyz


def maze_cells(maze_map: np.ndarray) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(free cells, junction cells) of a maze map (1 = wall): junction cells are the free cells that are not
    straight hallway cells (free above and below with walls left and right, or the transpose)."""
    free, junctions = [], []
    for i, j in zip(*np.nonzero(maze_map == 0)):
        i, j = int(i), int(j)
        free.append((i, j))
        up, down, left, right = (maze_map[i - 1, j] == 0, maze_map[i + 1, j] == 0,
                                 maze_map[i, j - 1] == 0, maze_map[i, j + 1] == 0)
        if not ((up and down and not left and not right) or (left and right and not up and not down)):
            junctions.append((i, j))
    return free, junctions


def cells_at_distance(maze_map: np.ndarray, start: tuple[int, int], distance: int) -> list[tuple[int, int]]:
    """Free cells exactly `distance` moves (4-neighbour BFS) from `start`, in BFS discovery order."""
    steps = {start: 0}
    queue, found = [start], []
    for i, j in queue:
        for di, dj in ((-1, 0), (0, -1), (1, 0), (0, 1)):
            cell = (i + di, j + dj)
            if (0 <= cell[0] < maze_map.shape[0] and 0 <= cell[1] < maze_map.shape[1]
                    and maze_map[cell] == 0 and cell not in steps):
                steps[cell] = steps[(i, j)] + 1
                queue.append(cell)
                if steps[cell] == distance:
                    found.append(cell)
    return found


class MazeEpisodes:
    """Runs pointmaze navigate or stitch episodes in one environment (see module docstring)."""

    def __init__(self, plan: GenerationPlan, fast: bool = True):
        self.plan = plan
        self.recipe = plan.recipe
        self.env = make_env(self.recipe, plan.episode_steps, fast)
        self.maze = self.env.unwrapped
        self.free_cells, self.junction_cells = maze_cells(self.maze.maze_map)
        self.fast = fast
        self.subgoals: dict[tuple, np.ndarray] = {}  # (agent cell, goal cell) -> the oracle's subgoal xy

    def oracle_subgoal(self, xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
        """The environment's oracle subgoal; its BFS depends on the two cells only, so fast mode memoises it."""
        if not self.fast:
            return self.maze.get_oracle_subgoal(xy, goal_xy)[0]
        key = (self.maze.xy_to_ij(xy), self.maze.xy_to_ij(goal_xy))
        if key not in self.subgoals:
            self.subgoals[key] = self.maze.get_oracle_subgoal(xy, goal_xy)[0]
        return self.subgoals[key]

    def run(self, episode: int, rows: Rows, first_row: int) -> EpisodeStats:
        numpy_seed, reset_seed, space_seed = episode_seeds(self.plan.seed, episode, 0)
        np.random.seed(numpy_seed)  # start, goals and noise come from numpy's global generator
        self.maze.action_space.seed(space_seed)  # the maze's reset takes a few random steps with it
        maze, steps, navigate = self.maze, self.plan.episode_steps, self.recipe.kind == "navigate"
        init_ij = self.free_cells[np.random.randint(len(self.free_cells))]
        if navigate:
            goal_ij = self.junction_cells[np.random.randint(len(self.junction_cells))]
        else:
            nearby = cells_at_distance(maze.maze_map, init_ij, STITCH_DISTANCE)
            goal_ij = nearby[np.random.randint(len(nearby))] if nearby else init_ij
        ob, _ = self.env.reset(seed=reset_seed, options=dict(task_info=dict(init_ij=init_ij, goal_ij=goal_ij)))
        stats = EpisodeStats(targets=1)
        stitch_reached = False
        for t in range(steps):
            xy = maze.get_xy()
            direction = self.oracle_subgoal(xy, maze.cur_goal_xy) - xy
            direction = direction / (np.linalg.norm(direction) + 1e-6)
            action = np.clip(direction + np.random.normal(0, self.recipe.noise, direction.shape), -1, 1)
            next_ob, _, _, _, info = self.env.step(action)
            if info["success"]:
                if navigate:  # chase a new junction cell
                    stats.reached += 1
                    stats.targets += 1
                    maze.set_goal(self.junction_cells[np.random.randint(len(self.junction_cells))])
                else:
                    stitch_reached = True
            rows.put(first_row + t, {"observations": ob, "actions": action, "terminals": t == steps - 1,
                                     "qpos": info["prev_qpos"], "qvel": info["prev_qvel"]})
            ob = next_ob
        if not navigate:
            stats.reached += stitch_reached
        return stats


def make_episode_runner(plan: GenerationPlan, fast: bool = True) -> ManipulationEpisodes | MazeEpisodes:
    """The episode driver of the plan's recipe (owns one environment)."""
    return (MazeEpisodes if plan.recipe.is_maze else ManipulationEpisodes)(plan, fast)


@dataclass
class Chunk:
    """Episodes start..stop-1: their rows, (stop - start) * episode_steps of each key, and their stats."""

    start: int
    stop: int
    arrays: dict[str, np.ndarray] = field(repr=False)
    stats: EpisodeStats


def run_chunk(runner: ManipulationEpisodes | MazeEpisodes, start: int, stop: int) -> Chunk:
    """Run episodes start..stop-1 with `runner` into fresh arrays."""
    steps = runner.plan.episode_steps
    rows, stats = Rows((stop - start) * steps), EpisodeStats()
    for episode in range(start, stop):
        stats.add(runner.run(episode, rows, (episode - start) * steps))
    return Chunk(start, stop, rows.arrays, stats)


_WORKER_RUNNER = None  # a worker process's episode driver (built once by _init_worker)


def _init_worker(plan: GenerationPlan) -> None:
    global _WORKER_RUNNER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which terminates the pool
    _quiet_gymnasium()
    _WORKER_RUNNER = make_episode_runner(plan)


def _worker_chunk(bounds: tuple[int, int]) -> Chunk:
    return run_chunk(_WORKER_RUNNER, *bounds)


def _quiet_gymnasium() -> None:
    # ogbench's manipulation action space has float64 bounds that gymnasium casts to float32 (same values)
    warnings.filterwarnings("ignore", message=r".*precision lowered by casting to float32.*")


def chunk_bounds(total: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous episode ranges: about 8 per worker (load balance, progress), at most 4 episodes each (the
    last one runs alone: a few seconds)."""
    size = max(1, min(4, math.ceil(total / (8 * workers))))
    return [(start, min(start + size, total)) for start in range(0, total, size)]




@dataclass(frozen=True)
class Progress:
    """What `generate_arrays` passes to its on_progress callback after each finished chunk."""

    episodes_done: int  # episodes finished so far (any order)
    rows_done: int  # their rows
    seconds: float  # since the generation started (worker start-up included)


def generate_arrays(plan: GenerationPlan, workers: int = 1,
                    on_progress: Callable[[Progress], None] | None = None,
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], EpisodeStats]:
    """Run every episode of the plan; returns (train arrays, validation arrays, stats).

    Train arrays hold train_episodes * episode_steps rows, validation arrays val_episodes * episode_steps rows
    (see the module docstring for keys and dtypes). workers == 1 runs in this process (numpy's global
    generator state is restored afterwards); more run in 'spawn' worker processes (safe when JAX or threads
    are already running here). The result does not depend on `workers`.
    """
    if workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {workers}")
    steps = plan.episode_steps
    bounds = chunk_bounds(plan.total_episodes, workers)
    arrays: dict[str, np.ndarray] = {}
    stats = EpisodeStats()
    started = time.perf_counter()
    episodes_done = 0

    def collect(chunks: Iterator[Chunk]) -> None:
        nonlocal episodes_done
        for chunk in chunks:
            if not arrays:
                for key, part in chunk.arrays.items():
                    arrays[key] = np.empty((plan.total_rows, *part.shape[1:]), part.dtype)
            for key, part in chunk.arrays.items():
                arrays[key][chunk.start * steps: chunk.stop * steps] = part
            stats.add(chunk.stats)
            episodes_done += chunk.stop - chunk.start
            if on_progress:
                on_progress(Progress(episodes_done, episodes_done * steps, time.perf_counter() - started))

    if workers == 1 or len(bounds) == 1:
        saved_state = np.random.get_state()
        try:
            with warnings.catch_warnings():
                _quiet_gymnasium()
                runner = make_episode_runner(plan)
                collect(run_chunk(runner, start, stop) for start, stop in bounds)
        finally:
            np.random.set_state(saved_state)
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, len(bounds)), initializer=_init_worker, initargs=(plan,)) as pool:
            collect(pool.imap_unordered(_worker_chunk, bounds))  # leaving the block terminates the workers
    split = plan.train_episodes * steps
    return ({key: value[:split] for key, value in arrays.items()},
            {key: value[split:] for key, value in arrays.items()}, stats)


# --------------------------------------------------------------------------------------------
# Files


def write_npz(path: str, arrays: dict[str, np.ndarray], compresslevel: int = ZIP_COMPRESSLEVEL) -> None:
    """An npz archive (what np.load reads) with one DEFLATE member per array; fixed timestamps, so the same
    arrays always give the same bytes (np.savez_compressed stamps the current time)."""
    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
        for key, array in arrays.items():
            member = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            try:
                member.compress_level = compresslevel  # Python >= 3.13
            except AttributeError:
                member._compresslevel = compresslevel  # (its name before 3.13)
            member.external_attr = 0o644 << 16
            with archive.open(member, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.ascontiguousarray(array), allow_pickle=False)


def dataset_paths(name: str, folder: str) -> tuple[str, str]:
    """(<folder>/<name>.npz, <folder>/<name>-val.npz)."""
    return os.path.join(folder, f"{name}.npz"), os.path.join(folder, f"{name}-val.npz")


def write_dataset_files(train_path: str, val_path: str, train: dict[str, np.ndarray],
                        validation: dict[str, np.ndarray]) -> None:
    """Write both files under temporary names in their folder, then rename both: the final names only ever
    hold complete files. Any exception (Ctrl-C included) removes the temporary files."""
    temporaries = []
    try:
        for path, arrays in ((train_path, train), (val_path, validation)):
            temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
            temporaries.append(temporary)
            write_npz(temporary, arrays)
        for temporary, path in zip(temporaries, (train_path, val_path)):
            os.replace(temporary, path)
    finally:
        for temporary in temporaries:
            if os.path.exists(temporary):
                os.remove(temporary)


def prepare_folder(folder: str, paths: tuple[str, ...], force: bool) -> bool:
    """Create `folder` if needed and check that it takes files and that `paths` are free (or `force`);
    ValueError (one line) otherwise. Returns whether the folder was created here."""
    existing = [path for path in paths if os.path.exists(path)]
    if existing and not force:
        raise ValueError(f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                         "pass --force to replace, or choose another --dataset-dir")
    created = not os.path.isdir(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".drol-diag-write-probe.{os.getpid()}.tmp")
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as error:
        raise ValueError(f"cannot write to dataset folder {folder}: {error.strerror or error}; "
                         "choose a writable --dataset-dir") from error
    return created


@dataclass(frozen=True)
class GenerationResult:
    """What `generate_dataset` wrote and how it went."""

    plan: GenerationPlan
    train_path: str
    val_path: str
    train_bytes: int  # size of <name>.npz
    val_bytes: int  # size of <name>-val.npz
    stats: EpisodeStats
    workers: int  # worker processes used
    generate_seconds: float  # running the episodes
    write_seconds: float  # compressing and writing both files

    def summary(self) -> list[str]:
        """Lines for the terminal."""
        plan, stats = self.plan, self.stats
        rows = plan.total_rows
        total = self.generate_seconds + self.write_seconds
        if plan.recipe.is_maze:
            what = (f"{stats.reached} goal{'' if stats.reached == 1 else 's'} reached" if plan.recipe.kind == "navigate"
                    else f"{stats.reached} of {plan.total_episodes} episodes reached their goal")
        else:
            share = f" ({100 * stats.reached / stats.targets:.0f}%)" if stats.targets else ""
            what = f"the oracles achieved {stats.reached} of {stats.targets} targets{share}"
            if stats.redone:
                what += f"; {stats.redone} scene episodes failed the health check and were redone"
        return [
            f"wrote {self.train_path} ({plan.train_episodes} episodes x {plan.episode_steps} steps, "
            f"{_megabytes(self.train_bytes)}) and {self.val_path} ({plan.val_episodes} episode"
            f"{'' if plan.val_episodes == 1 else 's'}, "
            f"{_megabytes(self.val_bytes)})",
            f"{rows:,} rows in {_duration(total)} ({rows / max(self.generate_seconds, 1e-9):,.0f} steps/s on "
            f"{self.workers} worker{'s' if self.workers > 1 else ''}, writing {self.write_seconds:.1f} s); {what}",
            f"train on it: drol-diag run --task {plan.recipe.example_task} --dataset-dir "
            f"{os.path.dirname(self.train_path)}",
        ]


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(seconds, 60)
    return f"{int(minutes)} min {seconds:.0f} s" if minutes else f"{seconds:.1f} s"


def generate_dataset(name: str, dataset_dir: str, episodes: int | None = None, episode_steps: int | None = None,
                     seed: int = 0, workers: int | None = None, force: bool = False,
                     on_progress: Callable[[Progress], None] | None = None,
                     val_episodes: int | None = None) -> GenerationResult:
    """Generate <dataset_dir>/<name>.npz and <name>-val.npz (see module docstring and `plan_generation`).

    Checks everything before running anything: bad options, existing files (kept unless `force`) and an
    unwritable folder raise ValueError (one line) with nothing written. `workers` defaults to the cores.
    Files appear under their final names only when complete.
    """
    plan = plan_generation(name, episodes, episode_steps, seed, val_episodes)
    workers = usable_cores() if workers is None else workers
    if workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {workers}")
    train_path, val_path = dataset_paths(name, dataset_dir)
    created = prepare_folder(dataset_dir, (train_path, val_path), force)
    try:
        started = time.perf_counter()
        train, validation, stats = generate_arrays(plan, workers, on_progress)
        generated = time.perf_counter()
        write_dataset_files(train_path, val_path, train, validation)
        written = time.perf_counter()
    except BaseException:
        if created and not os.listdir(dataset_dir):
            os.rmdir(dataset_dir)
        raise
    return GenerationResult(plan, train_path, val_path, os.path.getsize(train_path), os.path.getsize(val_path),
                            stats, min(workers, len(chunk_bounds(plan.total_episodes, workers))),
                            generated - started, written - generated)
