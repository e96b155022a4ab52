"""The detection backbone (conv5 at stride 1, dilation 2) and the RoI head of App. B.3."""
from __future__ import annotations

import pytest
import torch

from vidssl.errors import BackboneError
from vidssl.models import build_backbone
from vidssl.models.dilation import DILATABLE, dilate_conv5
from vidssl.models.roi_align import roi_align
from vidssl.models.roi_head import RoIHead


@pytest.mark.parametrize("name", DILATABLE)
@pytest.mark.parametrize("size", [32, 40])  # conv4 maps of even and odd size
def test_dilated_conv5_is_the_original_map_at_even_positions(name, size):
    """Stride 2 -> 1 and dilation 2 after it ('a trous'): the same weights compute the original
    map at every other position, and the map is twice as large (stride 16 instead of 32)."""
    torch.manual_seed(0)
    base = build_backbone(name, width=4).eval()
    dil = build_backbone(name, width=4, conv5_dilation=2).eval()
    dil.load_state_dict(base.state_dict())  # the same parameters: a checkpoint loads as it is
    for m in base.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    dil.load_state_dict(base.state_dict())
    x = torch.randn(2, 3, 2, size, size)
    with torch.no_grad():
        maps = base(x, return_stages=True)[1]
        a, a4 = maps["conv5"], maps["conv4"]
        b = dil(x, return_stages=True)[1]["conv5"]
    assert b.shape[-2:] == a4.shape[-2:]  # conv5 keeps conv4's resolution
    assert b.shape[:3] == a.shape[:3]  # time and channels untouched
    torch.testing.assert_close(b[..., ::2, ::2], a, rtol=1e-5, atol=1e-5)
    assert dil.conv5_dilation == 2 and not hasattr(base, "conv5_dilation")


def test_a_plain_stride_one_stage_would_not_be_the_same():
    """Without the dilation (stride 1 alone) the even positions differ: the test above can fail."""
    torch.manual_seed(0)
    base = build_backbone("r3d18", width=4).eval()
    plain = build_backbone("r3d18", width=4).eval()
    plain.load_state_dict(base.state_dict())
    for m in plain.stages["conv5"].modules():
        if isinstance(m, torch.nn.Conv3d) and m.stride[1] == 2:
            m.stride = (m.stride[0], 1, 1)
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        a, b = base(x, return_stages=True)[1]["conv5"], plain(x, return_stages=True)[1]["conv5"]
    assert (b[..., ::2, ::2] - a).abs().max() > 1e-3


def test_other_backbones_refuse_and_bad_values_are_named():
    for name in ("s3dg", "resnet2d18", "trn", "slowfast_r18"):
        with pytest.raises(BackboneError, match="no conv5_dilation option"):
            build_backbone(name, width=4, conv5_dilation=2)
    with pytest.raises(BackboneError, match="must be 1"):
        build_backbone("r3d18", width=4, conv5_dilation=3)
    for name in ("resnet2d18", "s3dg"):
        with pytest.raises(BackboneError, match="built for the 3D ResNets and the Slow pathway"):
            dilate_conv5(build_backbone(name, width=4))
    b = build_backbone("slow_r18", width=4, conv5_dilation=2)
    with pytest.raises(BackboneError, match="dilated already"):
        dilate_conv5(b)
    assert build_backbone("r3d18", width=4, conv5_dilation=1).stages["conv5"][0].conv1.stride == (2, 2, 2)


def test_head_pools_rois_as_described():
    torch.manual_seed(0)
    fmap = torch.randn(2, 6, 4, 8, 8)  # [N, C, T, H, W]
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.5, 1.0, 1.0], [0.1, 0.1, 0.3, 0.9]])
    index = torch.tensor([0, 1, 1])
    head = RoIHead(6, num_classes=3, resolution=3, dropout=0.0)
    pooled = head.pool(fmap, boxes, index)
    # the box replicated over time, RoIAlign per frame, temporal mean, spatial max
    per_frame = torch.stack([roi_align(fmap[:, :, t], torch.cat([index[:, None].float(), boxes * 8], 1), 3, 1.0, 0,
                                       True) for t in range(4)])
    torch.testing.assert_close(pooled, per_frame.mean(0).amax(dim=(2, 3)))
    torch.testing.assert_close(head.pool(fmap.mean(2), boxes, index), pooled)  # 4-D: already averaged
    head.eval()
    logits = head(fmap, boxes, index)
    assert logits.shape == (3, 3)
    # the classifier sees the standardised RoI feature
    want = head.classifier((pooled - head.norm.running_mean) / torch.sqrt(head.norm.running_var + head.norm.eps))
    torch.testing.assert_close(logits, want)
    with pytest.raises(ValueError, match="dropout"):
        RoIHead(6, 3, dropout=1.0)
