"""Keyframe clips: centred on the keyframe, clamped at the ends, boxes mirrored with the frames."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vidssl.config import load_config
from vidssl.data.boxes import load_boxes
from vidssl.data.keyframes import KeyframeDataset, collate_keyframes, keyframe_clip_indices
from vidssl.data.manifests import Manifest
from vidssl.errors import ConfigError


def test_clip_indices_are_centred_resampled_and_clamped():
    cfg = load_config(None, ["data.num_frames=8", "data.stride=8", "data.modality=rgb"]).data
    # App. B.3: 8 frames at stride 8 centred on the keyframe (frame 300 at 30 fps, t = 10 s)
    assert keyframe_clip_indices(10.0, 900, 30.0, cfg).tolist() == [268, 276, 284, 292, 300, 308, 316, 324]
    assert keyframe_clip_indices(0.2, 900, 30.0, cfg).tolist() == [0, 0, 0, 0, 6, 14, 22, 30]  # the first frame repeats
    assert keyframe_clip_indices(29.9, 900, 30.0, cfg)[-3:].tolist() == [899, 899, 899]
    diff = load_config(None, ["data.num_frames=4", "data.stride=2", "data.modality=diff", "data.fps=15"]).data
    # one more frame for differences; stride in frames at 15 fps = 4 native frames at 30 fps
    assert keyframe_clip_indices(1.0, 900, 30.0, diff).tolist() == [22, 26, 30, 34, 38]


def test_items_mirror_frames_and_boxes_together(tmp_path, make_video):
    frames = np.zeros((12, 32, 48, 3), np.uint8)
    frames[:, 4:12, 6:18] = 200  # a bright patch at x in [6, 18), y in [4, 12)
    from vidssl.data.synthetic import write_video

    video = write_video(tmp_path / "v.mp4", frames, fps=10, crf=0, pix_fmt="yuv444p")
    m = Manifest([str(video)], [-1], [], {}, source=str(tmp_path / "m.csv"))
    (tmp_path / "b.csv").write_text("v,0.5,0.125,0.125,0.375,0.375,a,0\nv,0.5,0.5,0.5,1,1,b,1\n")
    table = load_boxes(tmp_path / "b.csv", m)
    cfg = load_config(None, ["data.num_frames=4", "data.stride=1", "data.modality=rgb",
                             "data.augment.mean=[0, 0, 0]", "data.augment.std=[1, 1, 1]"]).data
    plain = KeyframeDataset(m, table, cfg, size=24, flip=False)
    item, mirrored = plain[0], plain.with_flip(True)[0]
    assert item["clips"].shape == (3, 4, 24, 24) and not item["flip"] and mirrored["flip"]
    torch.testing.assert_close(mirrored["clips"], item["clips"].flip(-1))
    torch.testing.assert_close(item["boxes"], torch.tensor([[0.125, 0.125, 0.375, 0.375], [0.5, 0.5, 1.0, 1.0]]))
    torch.testing.assert_close(mirrored["boxes"], torch.tensor([[0.625, 0.125, 0.875, 0.375], [0.0, 0.5, 0.5, 1.0]]))
    # the patch lies in the first box (whole frame resized to 24 x 24: stretched, boxes still normalised)
    x1, y1, x2, y2 = (item["boxes"][0] * 24).round().long().tolist()
    assert item["clips"][:, 0, y1:y2, x1:x2].mean() > 0.7 and item["clips"][:, 0].mean() < 0.2
    batch = collate_keyframes([item, mirrored])
    assert batch["box_index"].tolist() == [0, 0, 1, 1] and batch["targets"].tolist() == [[1, 0], [0, 1]] * 2
    flips = {KeyframeDataset(m, table, cfg, 24)[(0, s)]["flip"] for s in range(16)}
    assert flips == {True, False}  # flip=None draws one per (seed, index)
    with pytest.raises(ConfigError, match="data.sampler=clips"):
        KeyframeDataset(m, table, load_config(None, ["data.sampler=two_rate"]).data, 24)
