"""The ``vidssl`` command: sub-commands only; each lives in ``vidssl/commands/``.

A command module defines ``add_parser(subparsers)`` which registers its parser and
sets ``func`` (called with the parsed arguments, returns an exit code).

Every error is one line on stderr, ``vidssl: error: MESSAGE``, and the exit code says
whose it is: 2 for usage and config errors (:class:`~vidssl.errors.UsageError`: a bad
option, recipe, key or value, an input path that does not exist), 1 for data and
runtime failures (other ``ValueError`` exceptions, :class:`~vidssl.errors.RunError`, ``OSError``).
A training stopped by SIGTERM or SIGUSR1 after its checkpoint exits with 128 + the
signal's number (:class:`~vidssl.errors.StopRequested`; 143, 138), Ctrl-C with 130.
``VIDSSL_DEBUG=1`` raises instead, with the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pickle
import re
import sys
import warnings

import vidssl
from vidssl.errors import RunError, StopRequested, UsageError

PREFIX = "vidssl: error: "

COMMANDS = [
    "vidssl.commands.pretrain",  # pretrain, train-supervised
    "vidssl.commands.evaluate",  # eval ...
    "vidssl.commands.features",  # features MANIFEST (one embedding per video -> .npy + .csv)
    "vidssl.commands.data",  # data synth, check-videos
    "vidssl.commands.demo",  # demo
    "vidssl.commands.viz",  # viz tsne
    "vidssl.commands.cluster",  # cluster (k-means of a bank or features vs. labels)
    "vidssl.commands.idt",  # idt extract, fit, encode
    "vidssl.commands.flow",  # flow extract (stored TV-L1 / DIS optical flow)
    "vidssl.commands.workflow",  # workflow la-idt (IDT prior -> IR -> LA(IDT) -> LA(joint), end to end)
    "vidssl.commands.compare",  # compare RUN... (evaluations of several runs -> report.md / report.html)
    "vidssl.commands.weights",  # weights import|export (torchvision, PySlowFast, PyTorchVideo, MMAction2, safetensors)
    "vidssl.commands.recipes",  # recipes, config show RECIPE (the packaged recipes, a resolved config)
    "vidssl.commands.submit",  # submit [--dry-run] -- pretrain ... (a SLURM job through submitit)
]

# reStructuredText of the command modules' docstrings, which are the commands' descriptions
_ROLE = re.compile(r":(?:func|mod|class|meth|attr|data|exc):`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(doc: str | None) -> str | None:
    """A docstring as help text: ``code`` and :func:`name` become plain code and name."""
    if not doc:
        return doc
    return _LITERAL.sub(r"\1", _ROLE.sub(r"\1", doc))


class Parser(argparse.ArgumentParser):
    """Descriptions without reStructuredText; an error raises :class:`UsageError` (one line
    from :func:`main`, exit code 2) instead of printing the usage and exiting."""

    def __init__(self, *args, **kwargs):
        if "description" in kwargs:
            kwargs["description"] = plain_text(kwargs["description"])
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="vidssl", description="Self-supervised video representation learning and its evaluation.")
    parser.add_argument("--version", action="version", version=f"vidssl {vidssl.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print("vidssl: interrupted", file=sys.stderr)
        return 130
    except StopRequested as e:  # SIGTERM / SIGUSR1 after a checkpoint: 128 + the signal's number
        print(f"vidssl: {e}", file=sys.stderr)
        return e.exit_code
    except UsageError as e:
        return _fail(e, 2)
    except FileNotFoundError as e:  # an input path that is not there
        return _fail(e, 2)
    except (ValueError, RunError, OSError, pickle.UnpicklingError, EOFError) as e:
        # bad data (ManifestError, CheckpointError, VideoDecodeError, ... are ValueErrors) and failed runs
        return _fail(e, 1)


def _run(argv: list[str] | None) -> int:
    # torch's weights-only loader warns (several lines) before it refuses a foreign pickle; the
    # refusal itself is the one-line error
    warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
    parser = build_parser()
    # argparse cannot interleave a "*" positional with options: `eval knn --json X a=1` leaves the
    # overrides over, so key=value words left over go to the command's overrides
    args, rest = parser.parse_known_args(argv)
    stray = [r for r in rest if r.startswith("-") or "=" not in r or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if rest:
        args.overrides = list(args.overrides or []) + rest
    return int(args.func(args) or 0)


def error_line(e: BaseException) -> str:
    """The one line that stands for ``e``: its message (lines joined), with the exception's
    name when it is not one of vidssl's (whose messages say what went wrong)."""
    text = ""
    for line in filter(None, (line.strip() for line in str(e).splitlines())):
        text += line if not text else (" " if text.endswith(":") else "; ") + line
    if type(e).__module__ != "vidssl.errors":
        text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return PREFIX + text


def _fail(e: BaseException, code: int) -> int:
    if os.environ.get("VIDSSL_DEBUG"):
        raise e
    print(error_line(e), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
