"""``vidssl pretrain CONFIG [key=value ...]`` and ``vidssl train-supervised CONFIG [key=value ...]``.

Both run :func:`vidssl.engine.trainer.train` and print the run directory (stdout,
last line). ``train-supervised`` is the same engine with ``method.name=supervised``
(the recipe's own method keys are dropped unless the supervised method has them),
so the same backbone is trained with the labels.

Options may stand anywhere after CONFIG, among the overrides:
``--run-dir DIR`` (default ``train.out/train.name``, else ``train.out/<recipe>-<hash of the
settings>``: the same recipe and overrides give the same folder, so the same command
resumes), ``--resume`` / ``--no-resume`` (default: resume from ``DIR/checkpoints/last.pt``) and
``--label-column COL`` (the manifest column holding the labels: ``data.label_column=COL``,
as ``--label-column`` of ``vidssl eval``).
Under ``torchrun --nproc_per_node N -m vidssl pretrain ...`` the run is data-parallel.
SIGTERM or SIGUSR1 (SLURM's pre-emption) stops the run after the step in progress with a
checkpoint; the exit code is then 128 + the signal's number (143, 138).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def add_parser(sub) -> None:
    for name, help_ in [("pretrain", "train a method (self-supervised or supervised) from a recipe"),
                        ("train-supervised", "train the recipe's backbone with labels (method.name=supervised)")]:
        p = sub.add_parser(name, help=help_, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_options(p)
        p.add_argument("config", help="recipe: a YAML path or a packaged recipe name (e.g. supervised_tiny)")
        # REMAINDER so that --run-dir may follow the overrides (argparse cannot interleave otherwise)
        p.add_argument("overrides", nargs=argparse.REMAINDER, metavar="key=value",
                       help="config overrides, e.g. optim.lr=0.05 train.epochs=5")
        p.set_defaults(func=run, supervised=name == "train-supervised", command_name=name)


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", default=None,
                   help="run directory (default: train.out/train.name, else train.out/<recipe>-<settings hash>)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="resume from RUN_DIR/checkpoints/last.pt when present (default: yes)")
    p.add_argument("--label-column", default=None,
                   help="manifest column holding the labels (data.label_column; default: label)")


def split_options(args: argparse.Namespace) -> tuple[argparse.Namespace, list[str]]:
    """Pull ``--run-dir`` / ``--resume`` / ``--label-column`` out of the overrides."""
    from vidssl.errors import ConfigError

    p = argparse.ArgumentParser(prog=f"vidssl {args.command_name}", add_help=False)
    p.error = lambda message: _raise(ConfigError(message))  # e.g. --run-dir without its DIR: one line, exit 2
    _add_options(p)
    opts, rest = p.parse_known_args(args.overrides, namespace=argparse.Namespace(
        run_dir=args.run_dir, resume=args.resume, label_column=args.label_column))
    unknown = [r for r in rest if r.startswith("-")]
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} (allowed: --run-dir DIR, --resume, --no-resume, "
                          "--label-column COL)")
    return opts, rest


def _raise(error: Exception):
    raise error


def run(args) -> int:
    from vidssl.config import load_recipe
    from vidssl.engine.run_dir import default_run_dir
    from vidssl.engine.trainer import train

    opts, overrides = split_options(args)
    if opts.label_column is not None:  # JSON-quoted: the override's value is read as YAML ('1' is a string)
        overrides = [*overrides, f"data.label_column={json.dumps(opts.label_column)}"]
    cfg = load_recipe(args.config, overrides, args.supervised)
    run_dir = Path(opts.run_dir) if opts.run_dir else default_run_dir(cfg, prefix=Path(args.config).stem)
    # bad input (ConfigError: exit 2; ManifestError, CheckpointError, ...: 1) and a diverged run
    # (NonFiniteLossError: 1) are one line from vidssl.cli
    out = train(cfg, run_dir=run_dir, resume=opts.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(out)
    return 0
