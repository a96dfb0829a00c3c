"""The `drol-diag` command line. Bad input ends with a one-line error and exit status 2."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from cli.declared import declared_options
from drol_diag.platform import start_process
from drol_diag.settings.options import OPTIONS, read_value, resolve_keywords
from drol_diag.settings.settings_file import read_run_file

try:  # typer vendors click from 0.20 on; its UsageError is what option parsing raises
    from typer._click.exceptions import UsageError
except ImportError:  # older typer on top of click
    from click.exceptions import UsageError

# Help is plain click text (rich_markup_mode=None on every Typer): rich markup would swallow text in square
# brackets and cut long flags and help at 80 columns. Every option's help shows its default.
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Ablations and diagnostics for DROL (dynamic routing for offline RL).")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # Ctrl-C: what a shell reports for a process ended by SIGINT
interrupt_said = False  # interrupted() printed its line: main() ends the process without the interpreter's teardown
process_command = False  # main() is running the process's command: the first run in it times from the process's start


def print_version(value: bool) -> None:
    """--version: print the installed package's version and exit 0."""
    if value:
        from importlib.metadata import version

        typer.echo(f"drol-diag {version('drol-diag')}")
        raise typer.Exit(0)


@app.callback()
def cli(version: bool = typer.Option(False, "--version", is_eager=True, callback=print_version,
                                     help="print the version of drol-diag and exit")) -> None:
    """Ablations and diagnostics for DROL (dynamic routing for offline RL)."""


def fail(message: str, status: int = EXIT_USAGE) -> None:
    """Print a one-line error and exit with `status` (2: bad input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(status)


def interrupted(message: str) -> None:
    """Ctrl-C: print one line and exit with status 130, silencing asyncio's complaints at exit about the zarr
    reads and writes it cut short (they would only repeat it)."""
    import logging
    import warnings

    global interrupt_said
    logging.getLogger("asyncio").disabled = True
    warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
    typer.echo(f"interrupted: {message}", err=True)
    interrupt_said = True
    raise typer.Exit(EXIT_INTERRUPTED)


def out_folder(text: str) -> Path:
    """--out as a path. Raises ValueError for an empty one (read as a Path, "" is the current folder: never meant)."""
    if not text.strip():
        raise ValueError("--out is empty; give a results folder, e.g. --out runs (--out . for the current folder)")
    return Path(text)


@app.command()
@declared_options()
def run(
    settings: dict,
    config: Optional[Path] = typer.Option(None, "--config", help="settings file (TOML, keys as these options' names "
                                          "without --, e.g. k = 4, batch-size = 64); options given here override it "
                                          "(default: none)"),
    out: str = typer.Option("runs", metavar="<path>", help="results folder"),
    resume: bool = typer.Option(False, help="continue the run folder from its last checkpoint"),
    force: bool = typer.Option(False, help="delete an existing run folder and start again"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Train DROL on a task for several seeds at once and print a summary."""
    from training.observer import Phases

    # summary.json's time breakdown: from the process's start (Linux) when the process is this command's, else (a
    # notebook, the tests, a second command in one process) from here
    global process_command
    phases, process_command = Phases.since_process_start() if process_command else Phases(), False
    from drol_diag.runfolder.record import run_dir_for
    from drol_diag.runfolder.store import CHECKPOINT_FILE, EXIT_BUSY, RunBusyError
    from drol_diag.settings import resolve
    from drol_diag.tasks import load_task
    from training.driver import RunError, check_writable_folder, format_summary, train
    from training.tracking import check_wandb

    phases.add("startup", phases.elapsed())  # interpreter and imports
    run_dir = None
    try:
        out = out_folder(out)
        from_file = read_run_file(config) if config else {}
        values = {name: read_value(OPTIONS[name], value) for name, value in settings.items()}
        values = {name: from_file.get(name, OPTIONS[name].default) if value is None else value
                  for name, value in values.items()}
        learner_config, run_config = resolve(values["task"], values["profile"], **resolve_keywords(values))
        run_dir = run_dir_for(out, run_config, learner_config)
        check_writable_folder(run_dir, out)  # (before loading the data)
        if run_config.wandb is not None:
            check_wandb(run_config.wandb)
        with phases("task"):
            loaded = load_task(values["task"], values["dataset_dir"])
        summary = train(loaded, learner_config, run_config, out, resume=resume, force=force, progress=progress,
                        phases=phases)
    except RunBusyError as error:  # not bad input: the folder is in use (sweeps tell the two apart)
        fail(str(error), EXIT_BUSY)
    except (ValueError, RunError) as error:
        fail(str(error))
    except KeyboardInterrupt:
        interrupted(f"training stopped; {run_dir} keeps its last checkpoint: the same command with --resume continues "
                    "from it" if run_dir is not None and (run_dir / CHECKPOINT_FILE).exists() else
                    "stopped before the run's first checkpoint: the same command with --resume starts it again")
    typer.echo(format_summary(summary, loaded.reference_levels))


@app.command()
@declared_options(for_sweep=True)
def sweep(
    settings: dict,
    from_file: Optional[Path] = typer.Option(None, "--from", help="sweep file (TOML); options given here override it "
                                                "(default: none)"),
    grid: Optional[list[str]] = typer.Option(None, "--grid", metavar="SETTING=V1,V2", help="a hyper-parameter axis, "
                                             "repeatable (e.g. --grid bc_coef=0.3,1,3 --grid lr=1e-4,3e-4): every "
                                             "group runs at every combination of the learner settings its ablation "
                                             "takes, in <ablation>-k<K>-bc_coef=0.3-lr=0.0001 (default: none)"),
    out: str = typer.Option("runs", metavar="<path>", help="results folder (Ray, SLURM: on a filesystem every node "
                            "sees, same path)"),
    executor: str = typer.Option("local", help="local (this machine), ray (an existing Ray cluster) or slurm (a job "
                                 "per group, submitted through submitit)"),
    address: str = typer.Option("auto", help="ray: auto, HOST:PORT, or local (start one on this machine)"),
    jobs: Optional[int] = typer.Option(None, help="local: groups at a time (default: min(groups, cores / --threads))"),
    threads: Optional[int] = typer.Option(None, help="cores per group (default: local: cores / --jobs; ray, slurm: "
                                          "1)"),
    dry_run: bool = typer.Option(False, help="print the plan and a time estimate; write nothing"),
    force: bool = typer.Option(False, help="start again the run folders whose settings differ from the sweep's"),
    progress: bool = typer.Option(True, help="show a progress bar over the groups"),
    status: Optional[Path] = typer.Option(None, "--status", metavar="DIR", help="print the state of every group of "
                                          "the sweep in DIR (done, running, queued, stopped, failed with its log), "
                                          "whatever executor ran it, and exit; reads only (default: run the sweep)"),
) -> None:
    """Run a grid of tasks x ablations x K, all seeds of a (task, ablation, K) in one program; finished
    groups are skipped, unfinished ones resumed."""
    from ablations import executors, gpus, slurm, tables
    from ablations import grid as grids
    from ablations import sweep as sweeps
    from ablations.estimate import estimate_groups

    if status is not None:
        show_sweep_status(status, given=["--" + name.replace("_", "-") for name, value in settings.items()
                                         if value is not None] + (["--from"] if from_file else [])
                          + (["--grid"] if grid else []))
        return
    try:
        out = out_folder(out)
        spec = grids.spec_from_values(grids.read_sweep_file(from_file) if from_file else {},
                                      {**settings, grids.GRID: grid or None})
        slurm.check_executor_options(executor, spec)
        gpus.check_executor_gpus(executor, spec.gpus, spec.groups_per_gpu, spec.gpus_per_group)
        slots = gpus.local_slots(spec.gpus, spec.groups_per_gpu) if executor == "local" else ()
        available = slurm.job_memory(spec) if executor == "slurm" else gpus.gpu_share(slots)
        plan = sweeps.plan_sweep(spec, out, force=force, available=available)
        workers, group_threads = executors.worker_layout(executor, len(plan.to_run), jobs, threads, slots)
        if executor == "ray":
            executors.import_optional("ray", executors.RAY_MISSING)
        on_slurm = slurm.slurm_settings(spec, out, group_threads) if executor == "slurm" else None
    except ValueError as error:
        fail(str(error))
    where = (f"executor local: {workers} group(s) at a time" if executor == "local" else
             f"executor ray (--address {address}): as many groups at a time as the cluster's CPUs allow")
    where += f", on {gpus.describe_slots(slots)}" if slots else ""
    where += f", each asking for {spec.gpus_per_group:g} GPU(s)" if executor == "ray" and spec.gpus_per_group else ""
    where = slurm.describe(on_slurm) if on_slurm else where
    typer.echo(tables.plan_text(plan, f"{where}, each run pinned to {group_threads} core(s)"))
    if dry_run:
        if plan.to_run:
            at_once = min(workers, on_slurm.array_parallelism or workers) if on_slurm else workers  # (the array's %N)
            typer.echo(tables.estimate_text(plan, estimate_groups(plan, group_threads), at_once))
        return
    try:
        with contextlib.ExitStack() as connection:
            try:
                runner = connection.enter_context(sweeps.connected_runner(executor, address, workers, slots,
                                                                          spec.gpus_per_group, on_slurm))
            except ValueError as error:  # Ray missing or unreachable (nothing written yet)
                fail(str(error))
            sweeps.start_sweep(plan, "command: " + " ".join(sys.argv))
            with group_progress_bar(progress, len(plan.to_run)) as on_progress:
                results = sweeps.run_sweep(plan, runner, group_threads, on_progress)
    except KeyboardInterrupt:
        interrupted(f"the sweep stopped waiting; its SLURM jobs go on: follow them with drol-diag sweep --status {out}"
                    if on_slurm else f"the sweep stopped; the same command resumes its groups from their checkpoints "
                    f"(drol-diag sweep --status {out} shows where each stands)")
    typer.echo(tables.results_text(results))
    if any(r.outcome.status == executors.FAILED for r in results):
        raise typer.Exit(1)


def show_sweep_status(folder: Path, given: list[str]) -> None:
    """`drol-diag sweep --status DIR`: one line per group of the sweep in DIR and a count line (reads only)."""
    from ablations.status import group_statuses, status_text

    if given:
        fail(f"--status takes no other sweep settings (given: {', '.join(given)}): it shows the sweep DIR holds")
    try:
        statuses = group_statuses(folder)
    except ValueError as error:
        fail(str(error))
    typer.echo(status_text(folder, statuses))


@app.command()
def report(
    folder: Path = typer.Argument(Path("runs"), help="results folder (runs of `drol-diag run` / `drol-diag sweep`)"),
    html: Optional[Path] = typer.Option(None, help="HTML report path (default: FOLDER/report.html)"),
    pdf: Optional[Path] = typer.Option(None, help="PDF report path (default: FOLDER/report.pdf)"),
    reps: int = typer.Option(2000, help="bootstrap repetitions per interval"),
    seed: int = typer.Option(0, help="numpy seed set before each bootstrap (same inputs, same intervals)"),
    strict: bool = typer.Option(False, "--strict", help="stop with an error (exit 2, nothing written) when a run "
                                "folder under FOLDER cannot be read (default: off: the report lists it as skipped, "
                                "with the reason, and so does stderr)"),
    figures: Optional[Path] = typer.Option(None, help="also write every figure as FIGURES/<name>.png, making the "
                                           "folder if missing (default: none: figures only in the HTML and PDF)"),
) -> None:
    """Statistics (rliable) and the referee-response report: FOLDER/report.html, report.pdf, scores.csv
    (one score per task, ablation, K and seed) and report.json (every statistic shown). Every run
    folder found is read or listed as skipped with the reason (the report's inventory, report.json and
    stderr); --strict refuses to report when any is skipped."""
    from reports.build import ReportError, make_report

    started = time.perf_counter()
    typer.echo(f"reading runs under {folder} ...", err=True)
    try:
        outputs, summary = make_report(folder, html=html, pdf=pdf, reps=reps, seed=seed, strict=strict,
                                       figures=figures, warn=lambda line: typer.echo(line, err=True))
    except ReportError as error:
        fail(str(error))
    except KeyboardInterrupt:
        interrupted("the report stopped")
    figure_files = f", the figures in {outputs.figures}" if outputs.figures is not None else ""
    typer.echo(f"wrote {outputs.html}, {outputs.pdf}, {outputs.scores_csv}, {outputs.report_json}{figure_files} "
               f"({time.perf_counter() - started:.1f} s)")
    for line in summary:
        typer.echo(f"  {line}")


@app.command()
def evaluate(
    run_folder: Path = typer.Argument(..., help="run folder, e.g. runs/modes-2d/dynamic-k16"),
    episodes: Optional[int] = typer.Option(None, help="episodes per seed (default: the run's --eval-episodes)"),
    seeds: Optional[str] = typer.Option(None, help="seeds to evaluate, e.g. 0,1 or 0-2 (default: all of the run's)"),
    dataset_dir: Optional[str] = typer.Option(None, help="dataset folder of an OGBench task (default: "
                                              "$OGBENCH_DATA_DIR, else ~/.ogbench/data)"),
    write: bool = typer.Option(False, "--write", help="append the evaluation to the run folder's evaluations.json "
                               "(atomically, holding the run's lock; default: write nothing into the run)"),
    json_file: Optional[Path] = typer.Option(None, "--json", help="also write the evaluation as JSON to this file, "
                                             "atomically (default: none)"),
) -> None:
    """Evaluate a run's last checkpoint without training: per-seed scores on the run's task, as training
    evaluates (the same policy and episode seeds: with the run's episodes and seeds, its last logged
    evaluation). Writes nothing into the run unless --write."""
    from drol_diag.runfolder import store
    from drol_diag.runfolder.folders import lock_holder
    from drol_diag.settings.parsing import parse_seeds
    from drol_diag.tasks.registry import synthetic_spec
    from training import trained_run
    from training.driver import seeds_mean_text

    asked_episodes = episodes
    try:
        chosen = parse_seeds(seeds) if seeds is not None else None
        if episodes is not None and episodes < 1:
            raise ValueError(f"--episodes must be a positive integer, got {episodes}")
        if json_file is not None and not json_file.parent.is_dir():
            raise ValueError(f"--json {json_file}: no such folder {json_file.parent}")
        if json_file is not None and json_file.is_dir():
            raise ValueError(f"--json {json_file} is a folder; give a file name")
        # Everything is checked before the lock (--write), so that bad input leaves even the lock file alone.
        holder = lock_holder(run_folder)
        if holder is not None and (write or not (run_folder / store.CHECKPOINT_FILE).exists()):
            raise store.RunBusyError(f"run folder {run_folder} is being trained by {holder}" + (
                "; evaluate --write appends to it once training has ended (without --write, evaluate reads its last "
                "checkpoint now)" if write else " and has no checkpoint yet; evaluate it after its first"))
        trained = trained_run.load_run(run_folder)
        episodes, chosen = trained_run.evaluation_settings(trained, episodes, chosen)
        task = trained_run.evaluation_task(trained, dataset_dir)
        with store.run_lock(run_folder) if write else contextlib.nullcontext():
            evaluation = trained_run.evaluate_run(trained, episodes, chosen, task=task)
            record = {**evaluation.record(), "command": " ".join(sys.argv),
                      "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git_commit": store.git_commit()}
            written = [trained_run.append_evaluation(run_folder, record)] if write else []
        if json_file is not None:
            store.write_json_atomic(json_file, record)
            written.append(json_file)
    except store.RunBusyError as error:
        fail(str(error), store.EXIT_BUSY)
    except KeyboardInterrupt:
        interrupted("the evaluation stopped")
    except OSError as error:
        fail(f"cannot write {error.filename}: {error.strerror or error}")
    except ValueError as error:
        fail(str(error))
    closed_form = getattr(synthetic_spec(trained.run.task), "eval_states", None)  # (one-step states, no episodes)
    scored_on = (f"scored in closed form on {closed_form} states per seed"
                 + (f"; --episodes {asked_episodes} does not apply" if asked_episodes is not None else "")
                 if closed_form else f"{evaluation.episodes} episode{'s' if evaluation.episodes != 1 else ''} per seed")
    typer.echo(f"run folder: {run_folder} (checkpoint at update {evaluation.step}, {scored_on})")
    for i, seed in enumerate(evaluation.seeds):
        others = ", ".join(f"{name.removeprefix('eval_')} {values[i]:.4g}"
                           for name, values in evaluation.results.items() if name != "eval_score")
        diverged = trained.diverged_steps[seed]
        typer.echo(f"  seed {seed}: " + (f"no score: DIVERGED at update {diverged}: not evaluated, as in training"
                                         if diverged >= 0 else f"score {evaluation.scores[i]:.3f}"
                                         + (f" ({others})" if others else "")))
    typer.echo(f"  {seeds_mean_text(list(evaluation.seeds), list(evaluation.scores))}")
    for path in written:
        typer.echo(f"wrote {path}")


@contextlib.contextmanager
def group_progress_bar(show: bool, total: int):
    """A progress bar over the groups on stderr, with the finished runs' seed-updates/s in training (from their
    summary.json); yields the sweep's on_progress callback."""
    from tqdm import tqdm

    from ablations.executors import DONE
    from drol_diag.runfolder.folders import read_record
    from drol_diag.runfolder.store import SUMMARY_FILE

    seed_updates = train_s = 0.0
    with tqdm(total=total, unit="group", disable=not show or not total, dynamic_ncols=True, file=sys.stderr,
              desc="sweep") as bar:
        def on_progress(ended: int, total: int, job, outcome) -> None:
            nonlocal seed_updates, train_s
            with contextlib.suppress(ValueError):  # (unreadable, or not visible here: the sweep's table says so)
                summary = read_record(Path(job.run_dir) / SUMMARY_FILE) if outcome.status == DONE else None
                if summary and summary["train_time_s"] > 0 and math.isfinite(summary["seed_updates_per_s"]):
                    seed_updates += summary["seed_updates_per_s"] * summary["train_time_s"]  # (this attempt's)
                    train_s += summary["train_time_s"]
            bar.total = total
            bar.update(ended - bar.n)
            rate = f", {seed_updates / train_s:.0f} seed-updates/s in training (as the runs report)" if train_s else ""
            bar.set_postfix_str(f"{job.name}: {outcome.status}{rate}")
        yield on_progress


list_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="List what drol-diag knows.")
app.add_typer(list_app, name="list")


@list_app.command("ablations")
def list_ablations() -> None:
    """Every ablation variant with one line of meaning."""
    from drol.variants import VARIANTS

    width = max(map(len, VARIANTS))
    for variant in VARIANTS.values():
        typer.echo(f"{variant.name:<{width}}  {variant.meaning}")


data_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                       help="Datasets: generate OGBench datasets offline, list, describe.")
app.add_typer(data_app, name="data")

DATASET_DIR_HELP = "OGBench dataset folder (default: $OGBENCH_DATA_DIR, else ~/.ogbench/data)"


class Interrupted(Exception):
    """SIGTERM arrived (raised from the signal handler so that clean-up code runs)."""


@contextlib.contextmanager
def sigterm_raises():
    """Within the block, SIGTERM raises Interrupted (like Ctrl-C raises KeyboardInterrupt)."""
    import signal

    def raise_interrupted(signum, frame):
        raise Interrupted()
    previous = signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@data_app.command("generate")
def data_generate(
    name: str = typer.Argument(..., help="dataset, e.g. cube-single-play-v0 (drol-diag data list)"),
    dataset_dir: Optional[str] = typer.Option(None, help=DATASET_DIR_HELP),
    episodes: Optional[int] = typer.Option(None, help="training episodes (default: the official count); "
                                           "validation gets a tenth as many (at least 1)"),
    episode_steps: Optional[int] = typer.Option(None, help="rows per episode (default: the official length)"),
    seed: int = typer.Option(0, help="the same seed gives the same bytes, whatever --workers"),
    workers: Optional[int] = typer.Option(None, help="parallel worker processes (default: the cores)"),
    force: bool = typer.Option(False, help="replace existing files"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Generate <NAME>.npz and <NAME>-val.npz with ogbench's environments and oracles (no download)."""
    from tqdm import tqdm

    from drol_diag.datagen import Progress, generate_dataset, plan_generation
    from drol_diag.tasks.ogbench import ogbench_dataset_dir

    folder = ogbench_dataset_dir(dataset_dir)
    try:
        plan = plan_generation(name, episodes, episode_steps, seed)
    except ValueError as error:
        fail(str(error))
    with tqdm(total=plan.total_episodes, unit="ep", desc=name, disable=not progress, dynamic_ncols=True,
              delay=0.5, file=sys.stderr) as bar:  # (delay: no bar for a run that fails its checks)
        def on_progress(state: Progress) -> None:
            bar.update(state.episodes_done - bar.n)
            bar.set_postfix_str(f"{state.rows_done / max(state.seconds, 1e-9):,.0f} transitions/s")

        try:
            with sigterm_raises():
                result = generate_dataset(name, folder, episodes, episode_steps, seed, workers, force, on_progress)
        except ValueError as error:
            fail(str(error))
        except (KeyboardInterrupt, Interrupted) as error:
            bar.close()
            typer.echo(f"interrupted: nothing written to {folder}", err=True)
            raise typer.Exit(130 if isinstance(error, KeyboardInterrupt) else 143) from None
    for line in result.summary():
        typer.echo(line)


density_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                          help="The learned behaviour density the diagnostics read support by.")
app.add_typer(density_app, name="density")


@density_app.command("fit")
def density_fit(
    task: str = typer.Argument(..., help="a task, as run --task takes it (e.g. arc-8d, cube-single-play-v0)"),
    dataset_dir: Optional[str] = typer.Option(None, help=DATASET_DIR_HELP),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Fit the task's behaviour density once and cache it (or show the cached fit): its held-out log-likelihood
    per action dimension and fit time."""
    from diagnostics.density import DensityError, cache_folder, cache_path
    from drol_diag.tasks import load_task
    from training.driver import fitted_density

    try:
        loaded = load_task(task, dataset_dir)
        density, fitted = fitted_density(loaded, progress)
    except (ValueError, DensityError) as error:
        fail(str(error))
    typer.echo(f"{'fitted' if fitted else 'cached'}: {density.summary()}")
    typer.echo(f"cache: {cache_path(cache_folder(), density.key)}")


@data_app.command("list")
def data_list(dataset_dir: Optional[str] = typer.Option(None, help=DATASET_DIR_HELP)) -> None:
    """Every dataset drol-diag knows, whether it is in the folder (and its size), and the command that makes or
    fetches a missing one."""
    from drol_diag.datagen import format_catalog
    from drol_diag.tasks.ogbench import ogbench_dataset_dir

    for line in format_catalog(ogbench_dataset_dir(dataset_dir)):
        typer.echo(line)


@data_app.command("info")
def data_info(
    name: str = typer.Argument(..., help="dataset, e.g. cube-single-play-v0"),
    dataset_dir: Optional[str] = typer.Option(None, help=DATASET_DIR_HELP),
) -> None:
    """Shapes, episodes, transitions, action range and per-dimension statistics of a dataset's files."""
    from drol_diag.datagen import dataset_info, format_info
    from drol_diag.tasks.ogbench import ogbench_dataset_dir

    try:
        info = dataset_info(name, ogbench_dataset_dir(dataset_dir))
    except ValueError as error:
        fail(str(error))
    for line in format_info(info):
        typer.echo(line)


def main() -> None:
    """Console entry point: option-parsing errors, like our own, are one line with exit status 2."""
    global interrupt_said, process_command
    start_process()
    interrupt_said = False  # (a Ctrl-C of an earlier command in this process, run without main, is not this one's)
    process_command = True
    try:
        code = app(prog_name="drol-diag", standalone_mode=False)
    except UsageError as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # (click >= 8.2) a group without arguments: its help
            typer.echo(error.format_message())
        elif error.format_message():  # (empty when the usage text was just shown)
            command = error.ctx.command_path if error.ctx else "drol-diag"
            typer.echo(f"error: {error.format_message()} (see {command} --help)", err=True)
        code = EXIT_USAGE
    except typer.Abort:
        typer.echo("aborted", err=True)
        code = 130
    process_command = False  # (a command run in this process without main is not the process's)
    if interrupt_said:  # (the teardown after Ctrl-C can crash in XLA's threads, or dump zarr's pending tasks)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code or 0)


if __name__ == "__main__":
    sys.exit(main())
