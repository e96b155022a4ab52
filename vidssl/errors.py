"""Every error type of vidssl, in one leaf module (it imports nothing of vidssl).

Bad input raises a ``ValueError`` subclass whose message names the offending key, file
or value and what is allowed; :mod:`vidssl.cli` prints it as one line. A
:class:`UsageError` (a bad recipe, key, value or option, an input path that does not
exist) exits with code 2, other bad input (data that cannot be used) with code 1.
Failures of a run that is under way (a non-finite loss, a process group that cannot
form, a workflow stage that cannot go on) are :class:`RunError` subclasses (exit code 1).
"""
from __future__ import annotations

import os


# ----------------------------------------------------------------------------- usage and configuration


class UsageError(ValueError):
    """A bad command line: recipe, key, value or option, or an input path that does not exist
    (the CLI exits with code 2)."""


class RunError(RuntimeError):
    """A run that cannot go on (the CLI exits with code 1)."""


class ConfigError(UsageError):
    """A bad key or value in a recipe or an override (the CLI exits with code 2)."""


# ----------------------------------------------------------------------------- data


class NoDecodableVideoError(ValueError):
    """Every video of a manifest failed to decode."""


class ManifestError(ValueError):
    """A manifest that cannot be used: missing files, no videos, bad columns or labels."""


class ManifestNotFoundError(ManifestError, UsageError):
    """A manifest path that does not exist (or an empty one)."""


class SamplingError(ValueError):
    """Bad input to a sampler (frame count, frame rate or a clip setting)."""


class FlowStoreError(ValueError):
    """Stored optical flow is missing, malformed, or cannot be computed (e.g. TV-L1 without
    OpenCV's contrib modules)."""


class SyntheticError(ValueError):
    """Bad arguments to the synthetic dataset (names the argument and what is allowed)."""


class TransformError(ValueError):
    """Bad frames or a bad augmentation setting."""


class ClipBatchError(ValueError):
    """A batch whose ``clips`` are not a tuple of pathways of agreeing shapes."""


class VideoDecodeError(ValueError):
    """A video that cannot be decoded; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(str(path), reason)  # args are (path, reason): picklable across DataLoader workers
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot decode {self.path}: {self.reason}"


# ----------------------------------------------------------------------------- backbones


class BackboneError(ValueError):
    """A bad backbone name, option or input (names the offending thing)."""


class WeightsError(ValueError):
    """Weights that do not convert to or from another library's layout: missing or unknown
    keys, wrong shapes, or a network that differs from the other library's (all named)."""


# ----------------------------------------------------------------------------- losses


class RhoLossError(ValueError):
    """Bad shapes or hyper-parameters given to a rho-loss (the message names the argument)."""


class IRLossError(ValueError):
    """Bad shapes or parameters of an IR loss."""


class LALossError(ValueError):
    """Bad shapes or parameters of the LA loss."""


class CPCLossError(ValueError):
    """Bad shapes or parameters of the video CPC loss."""


# ----------------------------------------------------------------------------- methods and their parts


class ClusteringError(ValueError):
    """Bad features or clustering parameters."""


class MemoryBankError(ValueError):
    """Bad indices or vectors given to a :class:`MemoryBank`."""


class MomentumError(ValueError):
    """A bad momentum value or mismatched online / target modules."""


class QueueError(ValueError):
    """Bad queue size or keys of the wrong shape."""


class RhoInputError(ValueError):
    """A batch that the rho-methods cannot use (names the problem and the fix)."""


class SinkhornError(ValueError):
    """Bad Sinkhorn input or parameters."""


# ----------------------------------------------------------------------------- engine: checkpoints, processes, training


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or from another method/backbone."""


class DistributedError(RunError):
    """The process group could not be set up from the environment."""


class NonFiniteLossError(RunError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class StopRequested(RunError):
    """A run stopped by a signal (SIGTERM, SIGUSR1) after writing its checkpoint; the same
    command resumes it. The CLI exits with ``exit_code`` (128 + the signal's number)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message, signum)  # args: picklable
        self.message, self.signum = message, int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return self.message


# ----------------------------------------------------------------------------- dense trajectories and Fisher vectors


class BoxFileError(ValueError):
    """A person-box file cannot be parsed; the message names the file and line."""


class ShardError(UsageError):
    """A --shard value is not of the form i/n with 0 <= i < n."""


class FisherModelError(ValueError):
    """A Fisher-vector model file is missing, malformed, or does not fit the descriptors."""


class IDTOptionError(ValueError):
    """An IDT option has a bad value; the message names the option and the allowed values."""


class FrameSizeError(ValueError):
    """The frames are too small for IDT (shorter side below the 32 px patch)."""


# ----------------------------------------------------------------------------- workflows


class WorkflowError(RunError):
    """A stage cannot go on (e.g. videos that IDT extraction cannot read); the message says what to do."""

