"""A task defined in Python: `drol-diag run --task examples.my_task:make_task` (from the repository root;
drol-diag imports the module from sys.path plus the current directory).

A point mass in the plane: state s = (x, y) in [-1, 1]^2, action a in [-1, 1]^2, next state
clip(s + 0.1 a, -1, 1), reward -|s'|. An episode starts uniformly in the square, lasts at most 20
steps and terminates when the mass comes within 0.1 of the origin. The data come from a noisy
behaviour policy that heads for the origin only half-heartedly (it reaches it in 17% of the
evaluation episodes, its mean action in 42%, heading straight there in 100%); `evaluate(policy)`
runs 64 episodes with the trained policy and returns the fraction that reach the origin (0 to 1).
"""

import numpy as np

HORIZON = 20  # steps before an episode is cut off (a timeout, not a terminal)
STEP_SIZE = 0.1  # how far one action moves the mass
GOAL_RADIUS = 0.1  # the episode terminates within this distance of the origin
EVAL_EPISODES = 64  # episodes per evaluation
PULL, NOISE = 0.3, 1.0  # behaviour policy: PULL towards the origin plus Gaussian noise of std NOISE


def step(states: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Next states (n, 2), rewards (n,) and whether each episode terminates (n,)."""
    next_states = np.clip(states + STEP_SIZE * np.clip(actions, -1.0, 1.0), -1.0, 1.0)
    distances = np.linalg.norm(next_states, axis=-1)
    return next_states, -distances, distances < GOAL_RADIUS


def make_task(num_episodes: int = 300, seed: int = 0) -> dict:
    """The dataset in the npz layout (observations, actions, rewards, terminals, timeouts) and an
    evaluate(policy) -> success rate."""
    rng = np.random.default_rng(seed)
    columns = {key: [] for key in ("observations", "actions", "rewards", "terminals", "timeouts")}
    for _ in range(num_episodes):
        state = rng.uniform(-1.0, 1.0, size=(1, 2))
        for t in range(HORIZON):
            toward = -state / max(float(np.linalg.norm(state)), 1e-6)
            action = np.clip(PULL * toward + rng.normal(0.0, NOISE, size=(1, 2)), -1.0, 1.0)
            next_state, reward, terminal = step(state, action)
            for key, value in zip(columns, (state[0], action[0], reward[0], terminal[0], t == HORIZON - 1)):
                columns[key].append(value)
            state = next_state
            if terminal[0]:
                break
    dataset = {key: np.asarray(value, np.float32) for key, value in columns.items()}

    def evaluate(policy) -> float:
        """Fraction of EVAL_EPISODES episodes (fixed starts) that reach the origin under `policy`,
        a batched function from observations (n, 2) to actions (n, 2)."""
        states = np.random.default_rng(12345).uniform(-1.0, 1.0, size=(EVAL_EPISODES, 2))
        reached = np.zeros(EVAL_EPISODES, bool)
        for _ in range(HORIZON):
            next_states, _, terminal = step(states, np.asarray(policy(states.astype(np.float32))))
            states = np.where(reached[:, None], states, next_states)  # a finished episode stays put
            reached |= terminal
        return float(reached.mean())

    return {"dataset": dataset, "evaluate": evaluate}
