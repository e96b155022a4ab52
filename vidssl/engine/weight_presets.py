"""Test-time input of the published Kinetics weights that ``vidssl weights import`` converts.

An imported checkpoint's ``data.*`` config is the preset of its format and backbone (before the
user's ``key=value`` overrides), so that ``vidssl eval`` feeds the weights what they were
tested on:

- PySlowFast (configs/Kinetics/SLOW_8x8_R50.yaml, SLOWFAST_8x8_R50.yaml, slowfast/config/defaults.py)
  and PyTorchVideo (its hub models are these checkpoints): 8 Slow frames at stride 8 (SlowFast:
  and 32 Fast frames at stride 2, alpha 4) at TARGET_FPS 30, short side and TEST_CROP_SIZE
  256, 10 clips (NUM_ENSEMBLE_VIEWS) x 3 crops (NUM_SPATIAL_CROPS), MEAN 0.45 and STD 0.225 per
  channel.
- MMAction2 (slowonly_r50 8x8x1 configs): clip_len 8, frame_interval 8 at the video's own rate,
  Resize(-1, 256), ThreeCrop 256, num_clips 10, ImageNet mean / std (123.675, 116.28, 103.53) /
  (58.395, 57.12, 57.375) on 0..255, i.e. (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) on 0..1.
"""
from __future__ import annotations

import copy

_KINETICS_8X8 = {"modality": "rgb", "num_frames": 8, "stride": 8, "fps": 30.0, "crop_size": 256,
                 "test_short_side": 256, "test_clips": 10, "test_crops": 3,
                 "augment": {"mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225]}}
_TWO_RATE = {"sampler": "two_rate", "fast_alpha": 4}  # slow 8 x 8, fast 32 x 2
_MMACTION2_8X8 = {"modality": "rgb", "num_frames": 8, "stride": 8, "fps": None, "crop_size": 256,
                  "test_short_side": 256, "test_clips": 10, "test_crops": 3,
                  "augment": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}

PRESETS = {
    ("pyslowfast", "slow_r50"): _KINETICS_8X8,
    ("pyslowfast", "slowfast_r50"): {**_KINETICS_8X8, **_TWO_RATE},
    ("pytorchvideo", "slow_r50"): _KINETICS_8X8,
    ("pytorchvideo", "slowfast_r50"): {**_KINETICS_8X8, **_TWO_RATE},
    ("mmaction2", "slow_r50"): _MMACTION2_8X8,
}


def data_preset(fmt: str, backbone: str) -> dict:
    """A copy of the ``data`` config of (format, backbone) (``KeyError`` when there is none)."""
    return copy.deepcopy(PRESETS[(fmt, backbone)])
