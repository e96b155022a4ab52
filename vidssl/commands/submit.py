"""``vidssl submit [options] [--dry-run] -- pretrain RECIPE [key=value ...]``.

Runs a training command (``pretrain`` or ``train-supervised``) as a SLURM job of
``--nodes`` x ``--gpus-per-node`` tasks, one per GPU, that checkpoints and requeues
itself when SLURM warns of the time limit (SIGUSR1, ``--signal-delay`` seconds before)
or pre-empts it (SIGTERM); the requeued job resumes from the checkpoint, in the same
run folder (:mod:`vidssl.engine.slurm`). It submits through submitit (``pip install
submitit``; job logs in ``--folder``). ``--dry-run`` needs no submitit: it prints a batch
script for the same job, which ``sbatch`` submits as it is.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidssl.errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("submit", help="run pretrain / train-supervised as a requeueing SLURM job (submitit)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1, help="nodes (1)")
    p.add_argument("--gpus-per-node", type=int, default=1, help="GPUs per node = tasks per node (1)")
    p.add_argument("--cpus-per-task", type=int, default=8, help="CPU cores per task, for its DataLoader workers (8)")
    p.add_argument("--time", type=int, default=24 * 60, dest="time_min", help="time limit in minutes (1440)")
    p.add_argument("--partition", default=None)
    p.add_argument("--account", default=None)
    p.add_argument("--mem-gb", type=int, default=None, help="memory per node in GB (default: the partition's)")
    p.add_argument("--signal-delay", type=int, default=120, dest="signal_delay_s",
                   help="seconds before the time limit at which SIGUSR1 asks for a checkpoint (120)")
    p.add_argument("--name", default="vidssl", help="job name (vidssl)")
    p.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                   help="another sbatch option, e.g. --sbatch qos=high (repeatable)")
    p.add_argument("--folder", default="runs/slurm", help="job logs (runs/slurm)")
    p.add_argument("--dry-run", action="store_true", help="print a batch script for sbatch instead of submitting")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                   help="the training command: pretrain RECIPE [key=value ...] (or train-supervised ...)")
    p.set_defaults(func=run)


def run(args) -> int:
    from vidssl.engine.slurm import SlurmJob, check_command, sbatch_script, submit

    argv = list(args.command)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    check_command(argv)
    job = SlurmJob(nodes=args.nodes, gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task,
                   time_min=args.time_min, partition=args.partition, account=args.account, mem_gb=args.mem_gb,
                   signal_delay_s=args.signal_delay_s, name=args.name, extra=list(args.sbatch))
    run_dir = _run_dir(argv)
    if args.dry_run:
        print(sbatch_script(job, argv, args.folder, note=f"run folder: {run_dir}"), end="")
        return 0
    job_id = submit(job, argv, args.folder)
    print(f"submitted job {job_id} ({job.nodes} x {job.tasks_per_node} tasks; logs in {args.folder}; "
          f"run folder {run_dir})")
    return 0


def _run_dir(argv: list[str]) -> Path:
    """The run folder of the command; resolving the recipe and overrides here stops a bad key
    before the job waits in the queue."""
    from vidssl.commands.pretrain import split_options
    from vidssl.config import load_recipe
    from vidssl.engine.run_dir import default_run_dir

    if len(argv) < 2 or argv[1].startswith("-"):
        raise ConfigError(f"vidssl submit -- {argv[0]}: the recipe must come first (e.g. {argv[0]} ir_tiny)")
    opts, overrides = split_options(argparse.Namespace(command_name=argv[0], overrides=argv[2:], run_dir=None,
                                                       resume=True, label_column=None))
    if opts.label_column is not None:
        overrides = [*overrides, f"data.label_column={json.dumps(opts.label_column)}"]
    cfg = load_recipe(argv[1], overrides, argv[0] == "train-supervised")
    return Path(opts.run_dir) if opts.run_dir else default_run_dir(cfg, prefix=Path(argv[1]).stem)
