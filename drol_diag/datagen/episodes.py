"""Episode drivers: ogbench's environments (made faster without changing a number) driven by ogbench's
oracles, one recipe (drol_diag.datagen.recipes) per driver, writing rows into preallocated arrays.

Each row t of an episode holds the observation o_t (float32), the action a_t taken there (float32, clipped to
[-1, 1]), terminals (bool, 1 on the episode's last row, whose action has no next observation: the loader drops
that row), and the simulator state that o_t shows: qpos, qvel (float32) and, where the environment has buttons,
button_states (int64).

Episode i (training episodes first) with attempt k draws all of its randomness from
`np.random.SeedSequence([seed, i, k])`, so the files are byte-identical whatever the number of workers.
The fast path (no wrappers, `LeanStepMixin`, the maze oracle's search memoised) gives the same bytes as
`gymnasium.make`'s environment (tests/test_datagen.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from drol_diag.datagen.recipes import (
    DEFAULT_STACK_PROBABILITY,
    MIN_NORM,
    NOISE_SMOOTHING,
    STACK_PROBABILITY,
    STITCH_DISTANCE,
    GenerationPlan,
    Recipe,
)

if TYPE_CHECKING:
    import gymnasium

SCENE_BLOCK_QPOS = slice(14, 17)  # scene: the block's xyz in qpos (the health check looks at it)
DTYPES = {"terminals": np.bool_, "button_states": np.int64}  # every other key is float32


def episode_seeds(seed: int, episode: int, attempt: int) -> tuple[int, int, int]:
    """(numpy global seed, environment reset seed, action-space seed) of one episode attempt."""
    words = np.random.SeedSequence([seed, episode, attempt]).generate_state(3)
    return int(words[0]), int(words[1]), int(words[2])


# --------------------------------------------------------------------------------------------
# Environments and oracles


class LeanStepMixin:
    """Put before an ogbench manipulation environment class: the same environment, less Python per step.

    ManipSpaceEnv.step computes the observation info three times (pre_step, compute_observation,
    get_step_info); here pre_step keeps only the button positions post_step reads, and get_step_info
    returns what compute_observation just computed.
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

    def compute_observation(self) -> np.ndarray:
        self._memoising = True
        try:
            return super().compute_observation()
        finally:
            self._memoising = False

    def get_step_info(self) -> dict:
        memo, self._ob_info_memo = self._ob_info_memo, None  # step calls this right after compute_observation
        return memo if memo is not None else super().get_step_info()


_LEAN_CLASSES: dict[type, type] = {}


def make_env(recipe: Recipe, episode_steps: int, fast: bool = True) -> gymnasium.Env:
    """The recipe's environment: fast=False as OGBench's scripts make it (wrappers, TimeLimit); fast=True
    unwrapped (the caller counts the time limit), manipulation classes with `LeanStepMixin`."""
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


def make_oracles(recipe: Recipe, env: gymnasium.Env) -> dict[str, object]:
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
        plan = {"env": env, "noise": recipe.noise, "noise_smoothing": NOISE_SMOOTHING}
        if recipe.family.startswith("cube"):
            return {"cube": CubePlanOracle(**plan)}
        if recipe.family == "scene":
            return {"cube": CubePlanOracle(**plan), "button": ButtonPlanOracle(**plan),
                    "drawer": DrawerPlanOracle(**plan), "window": WindowPlanOracle(**plan)}
        return {"button": ButtonPlanOracle(gripper_always_closed=True, **plan)}
    markov = {"env": env, "min_norm": MIN_NORM}
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

    def __init__(self, rows: int) -> None:
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
    """OGBench's scene check on an episode's block positions (steps, 3): the block stays in sight."""
    y, z = block_xyz[:, 1], block_xyz[:, 2]
    return not ((y >= 0.29).any() or ((y <= -0.3) & ((z < 0.06) | (z > 0.08))).any())


class ManipulationEpisodes:
    """Runs episodes of a manipulation recipe in one environment (the procedure: drol_diag.datagen.recipes)."""

    def __init__(self, plan: GenerationPlan, fast: bool = True) -> None:
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
    """(free cells, junction cells: those not in a straight hallway) of a maze map (1 = wall)."""
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
    """Runs pointmaze navigate or stitch episodes in one environment (the procedure: drol_diag.datagen.recipes)."""

    def __init__(self, plan: GenerationPlan, fast: bool = True) -> None:
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
        ob, _ = self.env.reset(seed=reset_seed, options={"task_info": {"init_ij": init_ij, "goal_ij": goal_ij}})
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
