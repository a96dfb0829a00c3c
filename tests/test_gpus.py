"""GPUs for the local executor (ablations.gpus): which GPUs are found, how the groups share them out
(round-robin slots of one GPU and a memory share each), the up-front memory check against a slot's
share, and the environment each group's real run process gets and records in its config.json (on
the CPU: JAX's CPU backend ignores CUDA_VISIBLE_DEVICES and the memory fraction, so no GPU is pretended).
Ray with logical GPUs: tests/test_sweep_executors.py; bad GPU options: tests/test_bad_input.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ablations import gpus
from ablations.executors import DONE
from ablations.grid import SweepSpec
from ablations.sweep import execute, plan_sweep
from drol_diag.runfolder import store
from training.memory import GIB

NVIDIA_SMI_L = """GPU 0: NVIDIA H200 (UUID: GPU-1c3a8c2e-0000-0000-0000-000000000000)
GPU 1: NVIDIA H200 (UUID: GPU-5b7d9f10-0000-0000-0000-000000000000)
  MIG 3g.71gb     Device  0: (UUID: MIG-2f1e0000-0000-0000-0000-000000000000)
GPU 3: NVIDIA H200 (UUID: GPU-9e8d7c6b-0000-0000-0000-000000000000)"""  # (GPU 2 hidden: numbering kept)
TINY = SweepSpec(tasks=("modes-2d",), ablations=("dynamic",), k=(2,), seeds=(0,), steps=4, hidden=(8,),
                 log_interval=4, eval_interval=4, checkpoint_interval=4, eval_episodes=1, probes=8)


def test_slots_go_round_robin_over_the_gpus_each_with_its_gpu_and_memory_share():
    slots = gpus.gpu_slots(("0", "1", "3"), 2)
    assert [(slot.gpu, slot.place) for slot in slots] == [("0", 0), ("1", 0), ("3", 0), ("0", 1), ("1", 1), ("3", 1)]
    assert [dict(slot.environment) for slot in slots[:2]] == [
        {"CUDA_VISIBLE_DEVICES": "0", "XLA_CLIENT_MEM_FRACTION": "0.45"},
        {"CUDA_VISIBLE_DEVICES": "1", "XLA_CLIENT_MEM_FRACTION": "0.45"}]
    # The groups of a GPU share 90% of its memory between them, whatever their number.
    for per_gpu in (1, 2, 3, 8):
        fractions = {dict(slot.environment)["XLA_CLIENT_MEM_FRACTION"] for slot in gpus.gpu_slots(("0",), per_gpu)}
        assert len(fractions) == 1 and float(fractions.pop()) * per_gpu == pytest.approx(0.9, rel=1e-3)
    assert len(gpus.gpu_slots(("0", "1"), 4)) == 8 and gpus.gpu_slots((), 3) == ()
    with pytest.raises(ValueError, match="--groups-per-gpu must be a positive integer, got 0"):
        gpus.gpu_slots(("0",), 0)
    # A run's environment: its GPU alone, the new name of the memory fraction only (with both names set, jaxlib
    # 0.10 refuses to start its GPU backend), everything else as the sweep's.
    parent = {"CUDA_VISIBLE_DEVICES": "0,1,3", "XLA_PYTHON_CLIENT_MEM_FRACTION": ".7", "PATH": "/bin"}
    assert slots[4].apply(parent) == {"CUDA_VISIBLE_DEVICES": "1", "XLA_CLIENT_MEM_FRACTION": "0.45", "PATH": "/bin"}
    # A Ray task's run: the memory fraction of its share of a GPU (Ray chooses the GPU and sets CUDA_VISIBLE_DEVICES).
    assert gpus.ray_slot(0) is None and dict(gpus.ray_slot(0.5).environment) == {"XLA_CLIENT_MEM_FRACTION": "0.45"}
    assert gpus.ray_slot(2).apply(parent) == {"CUDA_VISIBLE_DEVICES": "0,1,3", "XLA_CLIENT_MEM_FRACTION": "0.9",
                                              "PATH": "/bin"}
    # One group per slot at a time (--jobs: fewer), the cores shared out (shared by several when too few).
    assert gpus.slot_layout(slots, None, None, cores=16) == (6, 2) and gpus.slot_layout(slots, None, 1, 4) == (6, 1)
    assert gpus.slot_layout(slots, 3, None, cores=16) == (3, 5) and gpus.slot_layout(slots, None, None, 2) == (6, 1)
    with pytest.raises(ValueError, match=r"--jobs 7: on GPUs at most 6 groups run at a time \(GPUs x --groups-per-gpu"):
        gpus.slot_layout(slots, 7, None, cores=16)


def test_gpus_are_found_without_jax_and_chosen_or_refused():
    assert gpus.gpu_indices(NVIDIA_SMI_L.splitlines()) == ("0", "1", "3")
    assert gpus.find_gpus({"CUDA_VISIBLE_DEVICES": "2, 3"}) == gpus.FoundGpus(("2", "3"), "CUDA_VISIBLE_DEVICES")
    assert gpus.find_gpus({"CUDA_VISIBLE_DEVICES": "GPU-5b7d9f10,-1,0"}).gpus == ("GPU-5b7d9f10",)  # (CUDA stops at -1)
    hidden = gpus.find_gpus({"CUDA_VISIBLE_DEVICES": ""})
    assert hidden.gpus == () and "hides every GPU" in hidden.source
    found = gpus.FoundGpus(("0", "1", "3"), "nvidia-smi -L")
    assert gpus.choose_gpus(None, found, None) == ("0", "1", "3")  # default: every GPU found, when JAX can use them
    assert gpus.choose_gpus(None, found, "the CPU build") == ()  # ... else the CPU
    assert gpus.choose_gpus((3, 0), found, None) == ("3", "0") and gpus.choose_gpus((), found, None) == ()
    with pytest.raises(ValueError, match=r"--gpus 0,2: no GPU 2 here; found 0,1,3 \(from nvidia-smi -L\)"):
        gpus.choose_gpus((0, 2), found, None)
    with pytest.raises(ValueError, match="--gpus 0: no GPU found here"):
        gpus.choose_gpus((0,), hidden, None)
    with pytest.raises(ValueError, match="--gpus 1: JAX cannot use a GPU here: JAX_PLATFORMS=cpu leaves out cuda"):
        gpus.choose_gpus((1,), found, gpus.jax_gpu_missing({"JAX_PLATFORMS": "cpu"}))
    assert gpus.local_slots((), 2, {"CUDA_VISIBLE_DEVICES": "0"}) == ()  # --gpus none: the CPU
    assert gpus.local_slots(None, None, {"CUDA_VISIBLE_DEVICES": "0", "JAX_PLATFORMS": "cpu"}) == ()


def test_a_group_that_cannot_fit_in_its_gpu_share_is_refused_before_anything_is_written(tmp_path):
    memory = {"0": 80 * GIB, "1": 16 * GIB}.get  # what nvidia-smi says of each GPU's total memory
    size, what = gpus.gpu_share(gpus.gpu_slots(("0", "1"), 2), memory)
    assert size == int(16 * GIB * 0.45)  # the smallest GPU's share: a group may land on either
    assert what == "JAX preallocates for each group on GPU 1 (XLA_CLIENT_MEM_FRACTION=0.45 of its 16.0 GiB, 2 groups " \
                   "per GPU: fewer --groups-per-gpu give each more)"
    assert gpus.gpu_share(gpus.gpu_slots(("0", "2"), 1), memory) is None and gpus.gpu_share((), memory) is None
    big = replace(TINY, k=(2, 3000), hidden=(512, 512, 512, 512), probes=1024)  # K 3000: 43 GiB by the estimate
    plan = plan_sweep(big, tmp_path / "out", available=gpus.gpu_share(gpus.gpu_slots(("0",), 1), memory))
    assert len(plan.groups) == 2  # fits in 0.9 x 80 GiB
    with pytest.raises(ValueError) as refused:
        plan_sweep(big, tmp_path / "out", available=gpus.gpu_share(gpus.gpu_slots(("0",), 2), memory))
    message = str(refused.value)
    assert message.startswith("group modes-2d dynamic K=3000 (1 seed, batch 256) needs about ") and "\n" not in message
    assert "GiB JAX preallocates for each group on GPU 0 (XLA_CLIENT_MEM_FRACTION=0.45 of its 80.0 GiB" in message
    assert not (tmp_path / "out").exists()


def test_each_group_process_gets_its_slots_gpu_and_memory_share_and_records_them(tmp_path, monkeypatch):
    # Real run processes on the CPU, in slots on GPUs "0" and "1" (CUDA_VISIBLE_DEVICES names them; JAX's
    # CPU backend ignores it, and the memory fraction). The deprecated name must not reach the runs.
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.75")
    slots = gpus.gpu_slots(("0", "1"), 2)
    plan = plan_sweep(replace(TINY, k=(2, 3), diagnostics=False), tmp_path / "out")  # (two groups, 4 updates each)
    workers, threads = gpus.slot_layout(slots, None, None, cores=2)  # (4 at a time, one core each: 2 groups here)
    results = execute(plan, workers=workers, threads=threads, slots=slots)
    assert [r.outcome.status for r in results] == [DONE, DONE], [r.outcome for r in results]
    assert sorted(r.outcome.gpus for r in results) == [("0",), ("1",)]  # the first two slots: one on each GPU
    for r in results:
        config = store.read_json(r.planned.run_dir / store.CONFIG_FILE)
        assert config["devices"]["environment"] == {
            "CUDA_VISIBLE_DEVICES": r.outcome.gpus[0], "XLA_CLIENT_MEM_FRACTION": "0.45",
            "XLA_PYTHON_CLIENT_MEM_FRACTION": None, "XLA_PYTHON_CLIENT_PREALLOCATE": None}
        assert config["backend"] == "cpu" and config["devices"]["jax_devices"][0].startswith("cpu:")
        header = r.planned.log_path.read_text().splitlines()[0]
        assert f"CUDA_VISIBLE_DEVICES={r.outcome.gpus[0]} XLA_CLIENT_MEM_FRACTION=0.45:" in header
