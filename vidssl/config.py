"""Typed run configuration: dataclass schema, YAML recipes, ``key=value`` overrides.

A recipe is a YAML file whose top-level sections mirror :class:`Config`
(``data``, ``model``, ``method``, ``optim``, ``train``). A recipe may start from
another with ``base: other.yaml`` (resolved relative to the recipe, or by name
among the packaged recipes in ``vidssl/configs``). Defaults follow the papers;
tiny CPU recipes are separate files.

Every key is checked against the schema: an unknown key or a value of the wrong
type raises :class:`ConfigError` naming the key and what is allowed; the CLI turns
it into a one-line message and exit code 2.

The ``method`` section is open: ``method.name`` picks a method from
:mod:`vidssl.methods`, and the remaining keys are checked against that method's
own config dataclass, found by name in :mod:`vidssl.registry` (which does not import
the methods until a name is resolved).
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from vidssl.errors import ConfigError
from vidssl.registry import method_config_class

PACKAGED_CONFIGS = Path(__file__).resolve().parent / "configs"


# ----------------------------------------------------------------------------- schema


@dataclass
class AugmentConfig:
    """Training augmentation; one random draw per clip, shared by its frames.

    Defaults: App. B.1 and Tables 7-8 of the large-scale study (VGG-style
    short-side jitter [256, 320] then a crop, flip, colour strength 0.5 with
    p = 0.8, grayscale p = 0.2, Gaussian blur sigma in [0.1, 2] with p = 0.5).
    """

    crop: Literal["scale_jitter", "resized", "center"] = "scale_jitter"
    short_side: tuple[int, int] = (256, 320)  # VGG-style jitter range of the short side
    area: tuple[float, float] = (0.49, 0.76)  # Inception-style crop: fraction of area (Table 8)
    aspect: tuple[float, float] = (0.75, 4.0 / 3.0)  # Inception-style aspect-ratio range
    flip: bool = True
    color_strength: float = 0.5  # s: brightness, contrast, saturation, hue = 0.4s, 0.4s, 0.4s, 0.1s
    color_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    temporal_diff_p: float = 0.0  # Table 7: grayscale then differences across time, with this p
    # colour dropping (CPC paper Sec. 4.2.2, after Doersch et al. 2015): with this p, two of the three
    # channels are replaced by low-amplitude noise (RGB modality only)
    color_drop_p: float = 0.0
    fps_jitter: float = 0.0  # Table 7: +-fraction of the frame rate (0.5 = +-50%)
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)


@dataclass
class DataConfig:
    """Where the videos are and how clips are sampled. Clip lengths are in frames at
    ``fps`` (the native rate when null); timespans (``t_max``) are in seconds."""

    train: str = ""  # manifest: CSV, UCF101/HMDB51 split folder, Kinetics CSV, or a folder
    val: str = ""  # optional labelled validation manifest: best epoch, plateau schedule, early stopping
    format: Literal["auto", "csv", "ucf101", "hmdb51", "kinetics", "folder", "images"] = "auto"
    root: Optional[str] = None  # video root for the split-file formats
    split: int = 1  # official split number (UCF101 / HMDB51)
    label_column: str = "label"
    # pyav: video files; frames: folders of frame images; image: one image file, a static video
    backend: Literal["pyav", "frames", "image"] = "pyav"
    # scale frames while decoding (libswscale for pyav) to the largest short side the augmentation
    # uses (train: augment.short_side's upper end, or crop_size for "center"; test: test_short_side),
    # never up; crops keep their geometry, pixels change by interpolation only (docs/architecture.md)
    decode_scale: bool = False
    decode_threads: Optional[int] = None  # FFmpeg threads per video; null = all cores, 1 in a DataLoader worker
    modality: Literal["rgb", "diff", "flow"] = "rgb"
    # modality flow: read stored fields from <flow_root>/<video stem>/ (`vidssl flow extract`) instead of
    # computing DIS on the fly; folders without a flow.json (other tools') are read with flow_bound
    flow_root: Optional[str] = None
    flow_bound: float = 20.0  # pixels: the bound of MMAction2 / denseflow's stored flow
    num_frames: int = 8  # T
    stride: int = 8  # tau, in frames at `fps`
    fps: Optional[float] = None  # target frame rate; null keeps each video's own
    views: int = 2  # clips per video (rho for the rho-methods, 1 for IR/LA/supervised)
    t_max: Optional[float] = None  # max seconds between the clips of one video; null = whole video
    sampler: Literal["clips", "segments", "two_rate", "sequence"] = "clips"
    # sequence (video CPC): `views` consecutive clips, each starting `hop` target-rate frames after the
    # previous one; null = half a clip's span (CPC Sec. 4.2: segments overlapping by F / 2)
    hop: Optional[int] = None
    shared_draw: bool = False  # one augmentation draw for all views of a video (CPC Table 3 "w/o transformation")
    # pretrain on part of data.train: a fraction in (0, 1) or a number of videos (an integer >= 2),
    # drawn with subset_seed (nested: the 25 % subset lies inside the 50 % one); null = every video
    subset: Optional[Union[int, float]] = None
    subset_seed: int = 0
    # pretrain on every video cut into this many equal bins in time, each treated as a video of its own
    # (VIE Sec. 5, Table 3); 1 = whole videos
    bins: int = 1
    segments: int = 8  # TRN/TSN: K segments, one frame each
    # segments sampler: K consecutive bins of this many seconds instead of K segments of the whole
    # video (VIE-TRN, App. B: 0.5); null = the whole video (TSN)
    segment_seconds: Optional[float] = None
    fast_alpha: int = 4  # two-rate: the fast pathway samples alpha times more frames
    short_video: Literal["loop", "pad"] = "loop"  # rule for videos shorter than a clip
    crop_size: int = 224
    test_short_side: int = 256
    test_crops: int = 1  # 1 = centre crop, 3 = three crops along the long side
    test_clips: int = 10  # uniformly spaced clips per video at test time
    batch_size: int = 64  # global batch (divided among DDP processes)
    workers: int = 4
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ModelConfig:
    """Backbone from :func:`vidssl.models.build_backbone`."""

    backbone: str = "r3d18"
    width: int = 64  # channels of the first stage (64 in the papers; 16 for tiny CPU runs)
    options: dict = field(default_factory=dict)  # extra keyword arguments of the backbone
    # torch.compile the backbone(s) for training (vidssl.engine.accel); checkpoints keep the same keys
    compile: bool = False


@dataclass
class OptimConfig:
    """Optimiser and per-iteration learning-rate schedule."""

    name: Literal["sgd", "lars", "adam", "adamw"] = "sgd"
    lr: float = 0.1  # base learning rate for the configured global batch
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    lars_trust: float = 0.001  # LARS trust coefficient; biases and BN are excluded
    # "plateau": lr x gamma when the validation top-1 has not improved for plateau_patience epochs
    schedule: Literal["cosine", "step", "constant", "plateau"] = "cosine"
    warmup_epochs: float = 0.0
    milestones: list[float] = field(default_factory=list)  # epochs, for the step schedule
    gamma: float = 0.1
    min_lr: float = 0.0
    plateau_patience: int = 5  # epochs; the plateau schedule (the papers give no number)


@dataclass
class TrainConfig:
    epochs: int = 200
    seed: int = 0
    out: str = "runs"  # parent folder of run directories
    name: Optional[str] = None  # run directory name (default: recipe name + time)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # CUDA arithmetic (the CPU is always float32): true = bf16 autocast where the GPU has native bf16,
    # else fp16; bf16; fp16 (autocast + GradScaler, its state in the checkpoint); false / fp32 (vidssl.engine.precision)
    amp: Union[bool, Literal["bf16", "fp16", "fp32"]] = True
    log_every: int = 10  # steps between metrics.jsonl lines (and between reads of the loss from the device)
    checkpoint_every_steps: int = 0  # 0 = only at the end of every epoch
    max_steps_per_epoch: Optional[int] = None  # cap for quick runs
    grad_clip: Optional[float] = None
    init_from: Optional[str] = None  # initialise the backbone (and matching keys) from a checkpoint
    init_backbone_only: bool = False  # with init_from: the backbone.* weights only (fine-tuning: a fresh classifier)
    sync_bn: bool = False  # SyncBatchNorm under DDP (SimCLR/BYOL/SwAV in the paper)
    progress: bool = True  # progress bar
    stop_patience: Optional[int] = None  # with a validation set: stop after this many epochs without a better top-1
    # checkpoints/epoch_NNNN.pt after every epoch: 0 = none (only last.pt), N = the last N epochs, null = every epoch
    keep_snapshots: Optional[int] = 0

    def __post_init__(self):
        if self.keep_snapshots is not None and self.keep_snapshots < 0:
            raise ConfigError(f"bad value for 'train.keep_snapshots': {self.keep_snapshots} (0 = no epoch snapshots, "
                              "N > 0 = keep the last N, null = keep every one)")


_VIEWS = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")


def parse_views(preset: str | None) -> tuple[int, int] | None:
    """Multi-view preset ``"10x3"`` -> (10, 3) (N uniform clips x M crops); None -> None.
    Raises :class:`ConfigError` for anything else."""
    if preset is None:
        return None
    m = _VIEWS.match(str(preset))
    clips, crops = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if clips < 1 or crops not in (1, 3):
        raise ConfigError(f"bad value for 'eval.views': {preset!r} (expected 'NxM' with N >= 1 uniform clips and "
                          "M = 1 or 3 crops, e.g. '10x3' (App. B.2), '5x1' (dense-trajectory Sec. 4.2), or null)")
    return clips, crops


def in_channels(modality: str) -> int:
    """Input channels of a modality: RGB 3; grayscale frame differences 3 (the difference
    image repeated, so that RGB and difference models share architectures and checkpoints);
    optical flow 2 (dx, dy)."""
    return {"rgb": 3, "diff": 3, "flow": 2}[modality]


@dataclass
class EvalConfig:
    """Evaluation protocols (``vidssl eval``, ``vidssl compare``); set with ``eval.KEY=VALUE``.
    Every protocol and key, with its paper reference: docs/evaluation.md."""

    batch_size: int = 16  # clips per forward pass during feature extraction
    readout: str = "pool"  # pooled features of the last stage, or a stage name (conv3/conv4/conv5)
    # how a stage's map [N, C, T, H, W] becomes features: "global" averages over T, H, W (C features);
    # "time_grid" averages over T, then adaptive-average-pools H x W to G x G (C G^2 features; VIE Sec. 4)
    readout_pool: Literal["global", "time_grid"] = "global"
    readout_grid: Optional[int] = None  # G of time_grid; null: per stage, conv1/2 12, conv3 8, conv4 6, conv5 4
    readout_layers: list[str] = field(default_factory=lambda: ["conv3", "conv4", "conv5"])  # `vidssl eval readout`
    cache: bool = True  # cache features per checkpoint + manifest + sampler
    knn_k: int = 200  # weighted kNN (Wu et al. 2018): k = 200, tau = 0.07, weights exp(s / tau)
    knn_tau: float = 0.07
    linear_epochs: int = 100  # linear probe on cached features
    linear_lr: float = 0.1
    linear_wd: float = 0.0  # App. B.2: weight decay 0 for the linear protocol
    linear_batch_size: int = 256
    # linear probe on augmented random clips (`vidssl eval linear_clips`; large-scale study App. B.2):
    # frozen encoder, a fresh clip of every training video per epoch with the training crop / flip,
    # 60 epochs, cosine schedule from 4.0 after 8 warm-up epochs, weight decay 0
    linear_clips_epochs: int = 60
    linear_clips_lr: float = 4.0
    linear_clips_warmup_epochs: float = 8.0
    linear_clips_batch_size: int = 64
    fewshot_shots: list[int] = field(default_factory=lambda: [1, 5, 10, 20])  # Table 2, dense-trajectory paper
    fewshot_draws: int = 10  # random support sets per shot count (mean and spread reported)
    retrieval_ks: list[int] = field(default_factory=lambda: [1, 5, 10, 20])
    retrieval_queries: int = 6  # queries shown in the picture of top neighbours
    out_dir: Optional[str] = None  # pictures; default: the run's eval/ folder (./vidssl_eval for random)
    # multi-view testing preset "NxM": N uniform clips x M crops (M = 1 centre, 3 along the long side);
    # sets data.test_clips / data.test_crops in every protocol. "10x3": App. B.2 of the large-scale
    # study (30 views); "5x1": dense-trajectory paper Sec. 4.2 (five clips, centre crop); null: keep data.*
    views: Optional[str] = None
    # how the views of a video are combined: "none" classifies / embeds every view and averages scores;
    # "mean" averages the features of the views first (CPC Sec. 3.2: the mean of z_t over segments,
    # then BN), in every protocol on cached features and in fine-tuning (with `train_views` views);
    # "normed_mean" averages the L2-normalised view features and normalises the mean (VIE Sec. 3's
    # video embedding, for kNN and retrieval; fine-tuning pools it like "mean")
    view_pooling: Literal["none", "mean", "normed_mean"] = "none"
    train_views: int = 1  # views per training video in finetune / linear_clips (CPC Sec. 4.2.4: 8 segments)
    # fraction-of-labels curve (CPC paper Sec. 5.3, Fig. 4: 5 %, 18 % and all labels): linear probes on
    # stratified subsets of the training videos, `fewshot_draws` draws each (mean and std)
    fewshot_fractions: list[float] = field(default_factory=lambda: [0.05, 0.18, 1.0])
    label_fraction: float = 1.0  # finetune on this stratified fraction of the training labels (Sec. 5.3)
    # fine-tuning the whole network (`vidssl eval finetune`): App. B.6/B.7 of the large-scale study
    # (200 epochs, batch 64, lr 0.025, 10x step decay at 60/120/180, weight decay 0, dropout 0.8)
    finetune_epochs: int = 200
    finetune_batch_size: int = 64
    finetune_lr: float = 0.025
    finetune_momentum: float = 0.9
    finetune_wd: float = 0.0
    finetune_l2sp: float = 0.0  # weight decay towards the pretrained weights (L2-SP; CPC paper Sec. 4.2.4); 0 = off
    finetune_dropout: float = 0.8  # dropout before the classifier
    # "step": x gamma at each milestone (B.6); "plateau": x gamma when the validation accuracy has not
    # improved for finetune_lr_patience epochs (dense-trajectory paper Sec. 4.2)
    finetune_schedule: Literal["step", "plateau"] = "step"
    finetune_milestones: list[float] = field(default_factory=lambda: [60.0, 120.0, 180.0])  # epochs
    finetune_gamma: float = 0.1
    finetune_lr_patience: int = 5  # plateau schedule (the paper gives no number)
    # freeze conv1..convN (weights and BN statistics): 1 on UCF101, 2 on HMDB51 (dense-trajectory
    # paper Sec. 4.2, after Kim et al.); 0 trains every stage
    finetune_freeze_stages: int = 1
    # validation split carved from the training videos (stratified, deterministic from train.seed) for
    # early stopping (CPC paper Sec. 4.2.4) and the plateau schedule; the split size is our choice
    finetune_val_fraction: float = 0.1
    finetune_stop_patience: Optional[int] = 20  # epochs without a better validation top-1; null: never stop
    # fine-tune (and test) on clips this many times longer: data.num_frames x scale, data.stride kept, so
    # T x tau grows by the factor (large-scale study App. B.4, Charades: 2, "T x tau = 16 x 8")
    finetune_clip_scale: int = 1
    # spatio-temporal action detection (`vidssl eval detect`, AVA-style; large-scale study App. B.3 after
    # SlowFast): a RoI head on conv5 at stride 16, trained 32 epochs, lr 0.3 (the unsupervised models') x 0.1
    # at epochs 16, 24, 28 after 5 warm-up epochs, weight decay 1e-7, dropout 0.5; batch 64 keyframes
    detect_train_boxes: str = ""  # AVA-layout boxes CSV of the training keyframes; "" = <train manifest>_boxes.csv
    detect_test_boxes: str = ""  # likewise for the test keyframes; "" = <test manifest>_boxes.csv
    detect_finetune: bool = False  # false: frozen encoder, the head alone; true: the encoder trained too
    detect_epochs: int = 32
    detect_batch_size: int = 64
    detect_lr: float = 0.3
    detect_wd: float = 1.0e-7
    detect_warmup_epochs: float = 5.0
    detect_milestones: list[float] = field(default_factory=lambda: [16.0, 24.0, 28.0])  # epochs
    detect_dropout: float = 0.5
    detect_size: Optional[int] = None  # frames resized to S x S; null = data.test_short_side
    # proposals are the ground-truth boxes (AVA uses a person detector's); jittered by this std, in box sizes
    detect_jitter: float = 0.0  # training proposals
    detect_test_jitter: float = 0.0  # test proposals (then matched to the boxes at IoU 0.5)

    def __post_init__(self):
        parse_views(self.views)
        checks = [
            ("eval.label_fraction", self.label_fraction, 0.0 < self.label_fraction <= 1.0, "in (0, 1]"),
            ("eval.finetune_val_fraction", self.finetune_val_fraction, 0.0 <= self.finetune_val_fraction < 1.0,
             "in [0, 1)"),
            ("eval.finetune_epochs", self.finetune_epochs, self.finetune_epochs >= 1, ">= 1"),
            ("eval.linear_clips_epochs", self.linear_clips_epochs, self.linear_clips_epochs >= 1, ">= 1"),
            ("eval.linear_clips_batch_size", self.linear_clips_batch_size, self.linear_clips_batch_size >= 1, ">= 1"),
            ("eval.linear_clips_lr", self.linear_clips_lr, self.linear_clips_lr > 0, "> 0"),
            ("eval.linear_clips_warmup_epochs", self.linear_clips_warmup_epochs,
             0 <= self.linear_clips_warmup_epochs < self.linear_clips_epochs, "in [0, linear_clips_epochs)"),
            ("eval.finetune_batch_size", self.finetune_batch_size, self.finetune_batch_size >= 1, ">= 1"),
            ("eval.finetune_dropout", self.finetune_dropout, 0.0 <= self.finetune_dropout < 1.0, "in [0, 1)"),
            ("eval.finetune_freeze_stages", self.finetune_freeze_stages, 0 <= self.finetune_freeze_stages <= 5,
             "0..5 (conv1..conv5)"),
            ("eval.finetune_lr", self.finetune_lr, self.finetune_lr >= 0, ">= 0"),
            ("eval.finetune_clip_scale", self.finetune_clip_scale, self.finetune_clip_scale >= 1, ">= 1"),
            ("eval.fewshot_draws", self.fewshot_draws, self.fewshot_draws >= 1, ">= 1"),
            ("eval.detect_epochs", self.detect_epochs, self.detect_epochs >= 1, ">= 1"),
            ("eval.detect_batch_size", self.detect_batch_size, self.detect_batch_size >= 1, ">= 1"),
            ("eval.detect_warmup_epochs", self.detect_warmup_epochs,
             0 <= self.detect_warmup_epochs < self.detect_epochs, "in [0, detect_epochs)"),
            ("eval.detect_dropout", self.detect_dropout, 0.0 <= self.detect_dropout < 1.0, "in [0, 1)"),
            ("eval.detect_size", self.detect_size, self.detect_size is None or self.detect_size >= 16,
             ">= 16, or null"),
            ("eval.detect_jitter", self.detect_jitter, self.detect_jitter >= 0, ">= 0"),
            ("eval.detect_test_jitter", self.detect_test_jitter, self.detect_test_jitter >= 0, ">= 0"),
        ]
        checks += [("eval.fewshot_fractions", f, 0.0 < f <= 1.0, "fractions in (0, 1]") for f in self.fewshot_fractions]
        for key, value, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"bad value for '{key}': {value!r} (must be {allowed})")
        if self.readout_grid is not None and self.readout_grid < 1:
            raise ConfigError(f"bad value for 'eval.readout_grid': {self.readout_grid!r} (>= 1, or null for the "
                              "per-stage grids)")
        if not self.readout_layers:
            raise ConfigError("bad value for 'eval.readout_layers': [] (at least one stage, e.g. [conv3, conv4])")
        if self.finetune_stop_patience is not None and self.finetune_stop_patience < 1:
            raise ConfigError(f"bad value for 'eval.finetune_stop_patience': {self.finetune_stop_patience} "
                              "(>= 1, or null for no early stopping)")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: dict = field(default_factory=lambda: {"name": "supervised"})
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    description: str = ""

    @property
    def method_name(self) -> str:
        return self.method["name"]


# ----------------------------------------------------------------------------- conversion


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args) + (" or null" if type(None) in typing.get_args(tp) else "")
    if origin in (tuple, list):
        return f"{origin.__name__} of {', '.join(_type_name(a) for a in typing.get_args(tp) if a is not Ellipsis)}"
    return getattr(tp, "__name__", str(tp))


# a number in exponent notation without a dot ("1e-4"), which YAML 1.1 (PyYAML) leaves a string
_YAML11_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"bad value for '{key}': {value!r} (expected {_type_name(tp)})")
    if tp is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError:
                pass
        raise bad
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise bad
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(v, arg, key) for v in value]
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad
        return from_dict(tp, value, prefix=key + ".")
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad
        return value
    if tp is float:
        if isinstance(value, str) and _YAML11_FLOAT.match(value):  # PyYAML reads 1e-4 as a string
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if not isinstance(value, tp):
        raise bad
    return value


def from_dict(cls: type, values: dict, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``values``; unknown keys raise :class:`ConfigError`."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for k, v in values.items():
        if k not in hints or k not in names:
            raise ConfigError(
                f"unknown key '{prefix}{k}' ({did_you_mean(str(k), names, prefix)}allowed: {', '.join(names)})"
            )
        kwargs[k] = _coerce(v, hints[k], prefix + k)
    return cls(**kwargs)


def did_you_mean(word: str, choices, prefix: str = "") -> str:
    """``"did you mean 'PREFIX+closest'? "`` for the closest of ``choices`` (difflib), or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{prefix}{close[0]}'? " if close else ""


def to_dict(obj: Any) -> Any:
    """Plain YAML-safe dict of a dataclass (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# ----------------------------------------------------------------------------- loading


def find_recipe(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """A recipe path: as given, relative to ``relative_to``, or a packaged recipe name."""
    p = Path(name_or_path)
    candidates = [p]
    if relative_to is not None and not p.is_absolute():
        candidates.append(relative_to / p)
    stem = p.name if p.suffix in (".yaml", ".yml") else p.name + ".yaml"
    candidates.append(PACKAGED_CONFIGS / stem)
    for c in candidates:
        if c.is_file():
            return c
    known = sorted(q.stem for q in PACKAGED_CONFIGS.glob("*.yaml"))
    raise ConfigError(f"config '{name_or_path}' not found ({did_you_mean(p.stem, known)}packaged recipes: "
                      f"{', '.join(known)}; `vidssl recipes` describes them)")


def packaged_recipes(folder: Path = PACKAGED_CONFIGS) -> dict[str, str]:
    """{name: one-line ``description``} of the recipes in ``folder`` (default: the packaged
    training recipes), sorted by name."""
    return {p.stem: str(_read_recipe(p).get("description") or "").strip() for p in sorted(folder.glob("*.yaml"))}


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "options":
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_recipe(path: Path, seen: tuple = ()) -> dict:
    if path in seen:
        raise ConfigError(f"recipe inheritance loop through {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections")
    base = raw.pop("base", None)
    if base is not None:
        parent = _read_recipe(find_recipe(base, path.parent), seen + (path,))
        raw = _merge(parent, raw)
    return raw


def parse_override(item: str) -> tuple[list[str], Any]:
    """``'optim.lr=0.1'`` -> (['optim', 'lr'], 0.1); the value is read as YAML."""
    if "=" not in item:
        raise ConfigError(f"bad override '{item}' (expected key=value, e.g. optim.lr=0.1)")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"bad override '{item}' (empty key)")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key.split("."), value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    raw = _merge({}, raw)
    for item in overrides:
        path, value = parse_override(item)
        node = raw
        for part in path[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"bad override '{item}': '{part}' is not a section")
            node = nxt
        node[path[-1]] = value
    return raw


def build_config(raw: dict) -> Config:
    """Validate a raw dict (recipe + overrides) into a :class:`Config`."""
    cfg = from_dict(Config, raw)
    validate(cfg)
    return cfg


def load_config(recipe: str | Path | None = None, overrides: list[str] = ()) -> Config:
    raw = _read_recipe(find_recipe(recipe)) if recipe else {}
    return build_config(apply_overrides(raw, list(overrides)))


def load_recipe(recipe: str | Path, overrides: list[str] = (), supervised: bool = False) -> Config:
    """The validated config of ``recipe`` + ``overrides``. ``supervised`` (``vidssl
    train-supervised``) forces ``method.name=supervised`` and drops the recipe's method keys
    that the supervised method does not have, so the same backbone is trained with labels."""
    raw = _read_recipe(find_recipe(recipe))
    overrides = list(overrides)
    if supervised:
        keep = {f.name for f in dataclasses.fields(method_config_class("supervised"))}
        raw["method"] = {"name": "supervised", **{k: v for k, v in (raw.get("method") or {}).items() if k in keep}}
        overrides = [o for o in overrides if not o.replace(" ", "").startswith("method.name=")]
    return build_config(apply_overrides(raw, overrides))


def validate(cfg: Config) -> None:
    """Cross-field checks and the method section against its method's schema."""
    if not isinstance(cfg.method.get("name"), str):
        raise ConfigError("'method.name' is required (e.g. method.name=supervised)")
    mcls = method_config_class(cfg.method["name"])
    params = {k: v for k, v in cfg.method.items() if k != "name"}
    resolved = from_dict(mcls, params, prefix="method.")
    cfg.method = {"name": cfg.method["name"], **to_dict(resolved)}
    d = cfg.data
    for key, val, lo in [
        ("data.num_frames", d.num_frames, 1), ("data.stride", d.stride, 1),
        ("data.views", d.views, 1), ("data.batch_size", d.batch_size, 1), ("data.bins", d.bins, 1),
        ("data.crop_size", d.crop_size, 8), ("data.workers", d.workers, 0),
        ("data.test_clips", d.test_clips, 1), ("model.width", cfg.model.width, 1),
        ("data.hop", d.hop if d.hop is not None else 1, 1), ("eval.train_views", cfg.eval.train_views, 1),
        ("data.decode_threads", d.decode_threads if d.decode_threads is not None else 1, 1),
        ("train.epochs", cfg.train.epochs, 1), ("train.log_every", cfg.train.log_every, 1),
        ("optim.plateau_patience", cfg.optim.plateau_patience, 0),
        ("train.stop_patience", cfg.train.stop_patience if cfg.train.stop_patience is not None else 1, 1),
    ]:
        if val < lo:
            raise ConfigError(f"bad value for '{key}': {val} (must be >= {lo})")
    if cfg.method["name"] == "cpc" and d.views != cfg.method["segments"]:
        raise ConfigError(f"video CPC reads its T segments as the views of a video: data.views ({d.views}) must "
                          f"equal method.segments ({cfg.method['segments']})")
    if d.segment_seconds is not None and not d.segment_seconds > 0:
        raise ConfigError(f"bad value for 'data.segment_seconds': {d.segment_seconds} (seconds, > 0, or null)")
    if d.subset is not None and not (isinstance(d.subset, int) and d.subset >= 2
                                     or isinstance(d.subset, float) and 0 < d.subset < 1):
        raise ConfigError(f"bad value for 'data.subset': {d.subset} (a fraction in (0, 1), a number of videos >= 2, "
                          "or null for every video)")
    if d.flow_root and d.modality != "flow":
        raise ConfigError(f"data.flow_root is set ({d.flow_root}) but data.modality is {d.modality!r}: "
                          "stored flow is read only with data.modality=flow")
    if not d.flow_bound > 0:
        raise ConfigError(f"bad value for 'data.flow_bound': {d.flow_bound} (pixels, > 0)")
    if d.test_crops not in (1, 3):
        raise ConfigError(f"bad value for 'data.test_crops': {d.test_crops} (allowed: 1, 3)")
    if d.t_max is not None and d.t_max < 0:
        raise ConfigError(f"bad value for 'data.t_max': {d.t_max} (seconds, >= 0, or null)")
    for name in ("short_side", "area", "aspect", "blur_sigma"):
        lo_, hi_ = getattr(d.augment, name)
        if lo_ > hi_:
            raise ConfigError(f"bad value for 'data.augment.{name}': [{lo_}, {hi_}] (low > high)")


def method_config(cfg: Config) -> Any:
    """The method's own typed config object (a dataclass of that method)."""
    params = {k: v for k, v in cfg.method.items() if k != "name"}
    return from_dict(method_config_class(cfg.method["name"]), params, prefix="method.")


def config_yaml(cfg: Config) -> str:
    """The resolved config as YAML (what a run's ``config.yaml`` holds)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def dump_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(config_yaml(cfg))
