"""GPUs for a sweep's groups (docs/gpu-and-clusters.md, "Several groups on GPUs"): which GPUs this machine has,
found without starting JAX's backend here (it would take a GPU's memory from the runs), and how the executors
share them out: locally a *slot* per group (one GPU, a 1/groups_per_gpu share of its memory); on Ray the
memory fraction of a task's `gpus_per_group` share.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from drol_diag.platform import NO_CUDA_DEVICES, accelerator_plugins
from training.memory import GIB

# The variables a slot sets (config.json records them: drol_diag.platform.GPU_ENVIRONMENT). jaxlib 0.10 reads
# the memory fraction from XLA_CLIENT_MEM_FRACTION; the old name XLA_PYTHON_CLIENT_MEM_FRACTION is deprecated,
# and setting both stops JAX's backend with an error (jaxlib/xla_client.py): a slot's process gets the new one.
VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"
MEMORY_FRACTION = "XLA_CLIENT_MEM_FRACTION"
OLD_MEMORY_FRACTION = "XLA_PYTHON_CLIENT_MEM_FRACTION"
# Of a GPU's total memory, what its groups' JAX pools take together (JAX's default is 0.75 for one process); the
# rest: each process's CUDA context and libraries, which live outside the pool.
GPU_POOL_FRACTION = 0.9
NVIDIA_SMI_TIMEOUT_S = 30
MIB = 1 << 20
CUDA_INSTALL = "pip install 'drol-diag[cuda12]' or '[cuda13]'"


@dataclass(frozen=True)
class GpuSlot:
    """One place a group runs in: a GPU and the environment its run process gets."""

    gpu: str | None  # the GPU as CUDA_VISIBLE_DEVICES names it (an index, or a UUID); None: Ray chooses it
    place: int  # which of the GPU's groups_per_gpu places, from 0
    environment: tuple[tuple[str, str], ...]  # (name, value) set in the run's process
    unset: tuple[str, ...] = (OLD_MEMORY_FRACTION,)  # names removed from the run's process's environment

    def apply(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`environ` with this slot's variables set and `unset` removed: the run's process environment."""
        return {**{k: v for k, v in environ.items() if k not in self.unset}, **dict(self.environment)}


@dataclass(frozen=True)
class FoundGpus:
    """The GPUs this machine offers, and where that was read."""

    gpus: tuple[str, ...]
    source: str  # "CUDA_VISIBLE_DEVICES", "nvidia-smi -L", or why none


# ------------------------------------------------------------------------------------------
# What this machine has (no JAX backend started).


def nvidia_smi(*arguments: str) -> list[str] | None:
    """nvidia-smi's output lines, or None when it is not installed or fails."""
    program = shutil.which("nvidia-smi")
    if program is None:
        return None
    try:
        result = subprocess.run([program, *arguments], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.splitlines() if result.returncode == 0 else None


def visible_devices(value: str) -> tuple[str, ...]:
    """The GPUs a CUDA_VISIBLE_DEVICES value names, as CUDA reads it: up to the first invalid entry."""
    gpus: list[str] = []
    if value.strip() in NO_CUDA_DEVICES:
        return ()
    for entry in (item.strip() for item in value.split(",")):
        if not entry or entry.startswith("-"):
            break
        gpus.append(entry)
    return tuple(gpus)


def find_gpus(environ: Mapping[str, str] = os.environ) -> FoundGpus:
    """The GPUs from CUDA_VISIBLE_DEVICES where it is set, else from `nvidia-smi -L`, else none."""
    if VISIBLE_DEVICES in environ:
        found = visible_devices(environ[VISIBLE_DEVICES])
        return FoundGpus(found, VISIBLE_DEVICES if found else f"{VISIBLE_DEVICES}={environ[VISIBLE_DEVICES]!r} hides "
                         "every GPU")
    lines = nvidia_smi("-L")
    if lines is None:
        return FoundGpus((), "CUDA_VISIBLE_DEVICES is not set and nvidia-smi is not there")
    return FoundGpus(gpu_indices(lines), "nvidia-smi -L")


def gpu_indices(lines: list[str]) -> tuple[str, ...]:
    """The GPUs `nvidia-smi -L` lists ('GPU 0: NVIDIA H200 (UUID: GPU-...)'; its indented MIG lines left out)."""
    return tuple(match[1] for match in (re.match(r"GPU (\d+):", line) for line in lines) if match)


def jax_gpu_missing(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why JAX in a run process could not use a GPU here (None: it can), judged without starting a backend."""
    platforms = [p.strip().lower() for p in environ.get("JAX_PLATFORMS", "").split(",") if p.strip()]
    if platforms and not {"cuda", "gpu"} & set(platforms):
        return f"JAX_PLATFORMS={environ['JAX_PLATFORMS']} leaves out cuda"
    if not any("cuda" in plugin.lower() for plugin in accelerator_plugins()):
        return f"this JAX is the CPU build, without a CUDA plugin ({CUDA_INSTALL})"
    return None


# ------------------------------------------------------------------------------------------
# Sharing them out (pure functions: every input given).


def choose_gpus(requested: tuple[int, ...] | None, found: FoundGpus, missing: str | None) -> tuple[str, ...]:
    """The GPUs a local sweep uses: `requested` (--gpus; () is none) or else every GPU `found` unless JAX cannot
    use them (`missing`). Raises ValueError (one line) for a GPU not found, or GPUs JAX cannot use."""
    if requested is None:
        return found.gpus if missing is None else ()
    if not requested:
        return ()
    shown = ",".join(map(str, requested))
    if not found.gpus:
        raise ValueError(f"--gpus {shown}: no GPU found here ({found.source}); omit --gpus or pass --gpus none "
                         "to run on the CPU")
    absent = [str(gpu) for gpu in requested if str(gpu) not in found.gpus]
    if absent:
        raise ValueError(f"--gpus {shown}: no GPU {', '.join(absent)} here; found {','.join(found.gpus)} "
                         f"(from {found.source})")
    if missing is not None:
        raise ValueError(f"--gpus {shown}: JAX cannot use a GPU here: {missing}; or pass --gpus none for the CPU")
    return tuple(str(gpu) for gpu in requested)


def memory_fraction(share: float) -> str:
    """The fraction of a GPU's memory JAX preallocates for a group with `share` of it, as the environment gives it."""
    return f"{GPU_POOL_FRACTION * min(share, 1.0):.4g}"


def gpu_slots(gpus: tuple[str, ...], groups_per_gpu: int = 1) -> tuple[GpuSlot, ...]:
    """Every slot, round-robin over the GPUs (each GPU's place 0, then place 1, ...). Raises ValueError (one line)
    when groups_per_gpu < 1."""
    if groups_per_gpu < 1:
        raise ValueError(f"--groups-per-gpu must be a positive integer, got {groups_per_gpu}")
    fraction = memory_fraction(1 / groups_per_gpu)
    return tuple(GpuSlot(gpu, place, ((VISIBLE_DEVICES, gpu), (MEMORY_FRACTION, fraction)))
                 for place in range(groups_per_gpu) for gpu in gpus)


def ray_slot(gpus_per_group: float) -> GpuSlot | None:
    """The slot of a Ray task asking for `gpus_per_group` GPUs (Ray sets CUDA_VISIBLE_DEVICES); None without."""
    if not gpus_per_group:
        return None
    return GpuSlot(None, 0, ((MEMORY_FRACTION, memory_fraction(gpus_per_group)),))


def gpu_total_bytes(gpu: str) -> int | None:
    """A GPU's total memory from `nvidia-smi --query-gpu=memory.total` (None: nvidia-smi cannot tell)."""
    lines = nvidia_smi("--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", gpu)
    try:
        return int(float(lines[0].strip()) * MIB) if lines else None
    except ValueError:
        return None


def slot_gpus(slots: tuple[GpuSlot, ...]) -> tuple[tuple[str, ...], int]:
    """(the GPUs, groups per GPU) of gpu_slots' slots."""
    gpus = tuple(dict.fromkeys(slot.gpu for slot in slots))
    return gpus, len(slots) // max(1, len(gpus))


def gpu_share(slots: tuple[GpuSlot, ...],
              total_bytes: Callable[[str], int | None] = gpu_total_bytes) -> tuple[int, str] | None:
    """(bytes, what they are) one slot offers a group on the smallest of the GPUs, for training.memory.check_fits.
    None without slots, or when a GPU's memory is unknown (each run checks its own pool)."""
    gpus, groups_per_gpu = slot_gpus(slots)
    totals = {gpu: total_bytes(gpu) for gpu in gpus}
    if not totals or any(size is None for size in totals.values()):
        return None
    smallest = min(totals, key=lambda gpu: totals[gpu])
    fraction = memory_fraction(1 / groups_per_gpu)
    sharing = f", {groups_per_gpu} groups per GPU: fewer --groups-per-gpu give each more" if groups_per_gpu > 1 else ""
    return int(totals[smallest] * float(fraction)), (
        f"JAX preallocates for each group on GPU {smallest} ({MEMORY_FRACTION}={fraction} of its "
        f"{totals[smallest] / GIB:.1f} GiB{sharing})")


def check_executor_gpus(executor: str, gpus: tuple[int, ...] | None, groups_per_gpu: int | None,
                        gpus_per_group: float | None) -> None:
    """Raise ValueError (one line) for GPU options the executor does not take, or out of range (--groups-per-gpu:
    gpu_slots checks it)."""
    if executor != "local":
        for flag, value in (("--gpus", gpus), ("--groups-per-gpu", groups_per_gpu)):
            if value is not None:
                raise ValueError(f"{flag} applies to --executor local; with --executor {executor}, each group asks "
                                 "for --gpus-per-group GPUs")
    elif gpus_per_group is not None:
        raise ValueError("--gpus-per-group applies to the cluster executors (ray, slurm); the local executor takes "
                         "--gpus and --groups-per-gpu")
    if gpus_per_group is not None and not 0 <= gpus_per_group < float("inf"):
        raise ValueError(f"--gpus-per-group must be >= 0 (GPUs each group's task asks for), got {gpus_per_group:g}")


def local_slots(requested: tuple[int, ...] | None, groups_per_gpu: int | None,
                environ: Mapping[str, str] = os.environ) -> tuple[GpuSlot, ...]:
    """The local executor's GPU slots on this machine (gpu_slots of choose_gpus); () for CPU only."""
    missing, per_gpu = jax_gpu_missing(environ), 1 if groups_per_gpu is None else groups_per_gpu
    if requested == () or (requested is None and missing is not None):
        return gpu_slots((), per_gpu)  # (CPU asked for, or no GPU backend: nothing to look for; per_gpu checked)
    return gpu_slots(choose_gpus(requested, find_gpus(environ), missing), per_gpu)


def slot_layout(slots: tuple[GpuSlot, ...], jobs: int | None, threads: int | None, cores: int) -> tuple[int, int]:
    """(groups at a time, cores per group) with GPU slots: at most one group per slot, the `cores` shared out
    evenly (at least one each: a GPU run needs few). Raises ValueError (one line) for more jobs than slots."""
    if jobs is not None and jobs > len(slots):
        raise ValueError(f"--jobs {jobs}: on GPUs at most {len(slots)} groups run at a time (GPUs x --groups-per-gpu); "
                         "raise --groups-per-gpu, or pass --gpus none for the CPU")
    workers = jobs or len(slots)
    return workers, threads or max(1, cores // workers)


def describe_slots(slots: tuple[GpuSlot, ...]) -> str:
    """The local executor's GPUs for the sweep plan, e.g. 'GPUs 0,1 x 2 groups each (XLA_CLIENT_MEM_FRACTION=0.45)'."""
    gpus, groups_per_gpu = slot_gpus(slots)
    return (f"GPU{'s' * (len(gpus) != 1)} {','.join(gpus)} x {groups_per_gpu} group{'s' * (groups_per_gpu != 1)} "
            f"each ({MEMORY_FRACTION}={memory_fraction(1 / groups_per_gpu)})")
