"""Input-Single controls (VIE App. C, Table 4): VIE-Single applied to the frames a multi-frame family
sees, the per-frame outputs averaged. Each recipe samples its family's frames, keeps VIE-Single's
model (so a VIE-Single checkpoint reads out with it), and its features are the mean of the
single-frame features of those frames."""
import numpy as np
import pytest
import torch

from vidssl.config import load_config, to_dict
from vidssl.data.datasets import VideoDataset
from vidssl.data.manifests import Manifest
from vidssl.data.sampling import test_clip_indices
from vidssl.eval.features import encode_layers
from vidssl.models import build_backbone

FAMILIES = ["3dresnet", "trn", "slow", "slowfast"]
SAMPLING = ("sampler", "num_frames", "stride", "segments", "segment_seconds", "fps")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("tiny", [True, False])
def test_input_single_samples_the_familys_frames_with_the_single_model(family, tiny):
    suffix = "_tiny" if tiny else ""
    ctrl = load_config(f"vie_input_single_{family}{suffix}")
    single = load_config(f"vie_single_la{suffix}")
    fam = load_config(f"vie_{family}_la{suffix}")
    assert to_dict(ctrl.model) == to_dict(single.model) and ctrl.method == single.method
    assert ctrl.data.crop_size == single.data.crop_size  # the Single network's own resolution
    for n_frames, fps in ((250, 25.0), (64, 25.0), (301, 30.0)):
        got = test_clip_indices(n_frames, fps, ctrl.data, 5)
        ref = test_clip_indices(n_frames, fps, fam.data, 5)
        for mine, theirs in zip(got, ref):
            seen = np.unique(np.concatenate(theirs))  # every frame the family sees (SlowFast: slow + fast)
            np.testing.assert_array_equal(np.unique(mine[0]), seen)
            if family == "slowfast":  # the Fast pathway's frames, each once; the Slow ones among them
                np.testing.assert_array_equal(mine[0], theirs[1])
                assert set(theirs[0]) <= set(theirs[1])
            else:
                np.testing.assert_array_equal(mine[0], theirs[0])


@pytest.fixture(scope="module")
def single_net():
    torch.manual_seed(0)
    net = build_backbone("resnet2d18", width=8, preact=True)
    for m in net.modules():  # running statistics away from (0, 1), so that BN is not the identity
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.mark.parametrize("family", FAMILIES)
def test_features_are_the_mean_of_the_per_frame_single_frame_features(family, single_net, make_video, tmp_path):
    cfg = load_config(f"vie_input_single_{family}_tiny",
                      ["data.crop_size=32", "data.test_short_side=32", "data.test_clips=2", "data.workers=0"])
    video = make_video(tmp_path / "v.mp4", frames=64, size=32)
    ds = VideoDataset(Manifest([str(video)], [0], source="t"), cfg.data, train=False)
    clips = ds[0]["clips"]  # pathways, each [V, C, T, S, S]
    assert len(clips) == 1 and clips[0].shape[2] == {"3dresnet": 8, "trn": 4, "slow": 4, "slowfast": 16}[family]
    x = clips[0]
    layers = ["pool", "conv3", "conv4", "conv5"]
    whole = {**encode_layers(single_net, (x,), ["pool"]),
             **encode_layers(single_net, (x,), layers[1:], "time_grid")}
    per_frame = [{**encode_layers(single_net, (x[:, :, t:t + 1],), ["pool"]),
                  **encode_layers(single_net, (x[:, :, t:t + 1],), layers[1:], "time_grid")}
                 for t in range(x.shape[2])]
    for layer in layers:
        mean = torch.stack([f[layer] for f in per_frame]).mean(0)
        torch.testing.assert_close(whole[layer], mean, rtol=1e-4, atol=1e-5)
    # the frames differ (the video's brightness ramps), so the mean is not one frame's features
    assert not torch.allclose(per_frame[0]["pool"], per_frame[-1]["pool"])
