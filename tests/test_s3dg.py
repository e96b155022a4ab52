"""S3D-G: the published size, the layout of the module docstring, separable convs and
feature gating against references written here."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidssl.models import build_backbone
from vidssl.models.s3dg import MIXED, Mixed, SelfGating, SepConv3d


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_count_matches_the_published_figure():
    """Large-scale study Table 5: S3D-G 9.1M parameters (Xie et al. 2018)."""
    n = n_params(build_backbone("s3dg"))
    assert abs(n - 9.1e6) < 0.05e6, n


def test_inception_widths_are_inception_v1():
    outs = {k: v[0] + v[2] + v[4] + v[5] for k, v in MIXED.items()}
    assert outs == {"3b": 256, "3c": 480, "4b": 512, "4c": 512, "4d": 512, "4e": 528, "4f": 832,
                    "5b": 832, "5c": 1024}


@pytest.mark.parametrize("width,t,hw", [(8, 8, 32), (16, 16, 48), (4, 5, 35)])
def test_stage_shapes(width, t, hw):
    m = build_backbone("s3dg", width=width).eval()
    with torch.no_grad():
        pooled, maps = m(torch.randn(2, 3, t, hw, hw), return_stages=True)

    def half(n):
        return (n + 1) // 2

    def c(n):
        return max(1, round(n * width / 64))

    t1, s1 = half(t), half(hw)
    s2 = half(half(s1))
    t4, s4 = half(t1), half(s2)
    t5, s5 = t4 // 2, s4 // 2
    assert tuple(maps["conv1"].shape) == (2, c(64), t1, s1, s1)
    assert tuple(maps["conv2"].shape) == (2, c(192), t1, s2, s2)
    assert tuple(maps["conv3"].shape) == (2, c(128) + c(192) + c(96) + c(64), t1, s2, s2)
    assert tuple(maps["conv4"].shape) == (2, c(256) + c(320) + c(128) + c(128), t4, s4, s4)
    assert tuple(maps["conv5"].shape) == (2, c(384) + c(384) + c(128) + c(128), t5, s5, s5)
    assert pooled.shape == (2, m.feat_dim) and m.feat_dim == maps["conv5"].shape[1]


def test_gating_reference():
    g = SelfGating(5)
    x = torch.randn(3, 5, 2, 4, 4)
    ref = torch.stack([x[n] * torch.sigmoid(g.fc.weight @ x[n].mean(dim=(1, 2, 3)) + g.fc.bias)[:, None, None, None]
                       for n in range(3)])
    torch.testing.assert_close(g(x), ref)


def test_separable_conv_is_spatial_then_temporal():
    conv = SepConv3d(3, 4, 3).eval()
    x = torch.randn(2, 3, 5, 6, 6)
    spatial, temporal = conv[0], conv[1]
    assert spatial[0].kernel_size == (1, 3, 3) and temporal[0].kernel_size == (3, 1, 1)
    y = F.relu(spatial[1](F.conv3d(x, spatial[0].weight, padding=(0, 1, 1))))
    y = F.relu(temporal[1](F.conv3d(y, temporal[0].weight, padding=(1, 0, 0))))
    torch.testing.assert_close(conv(x), y)


def test_mixed_block_concatenates_four_gated_branches():
    blk = Mixed(6, 2, 3, 4, 2, 3, 1).eval()
    x = torch.randn(1, 6, 3, 5, 5)
    parts = [b(x) for b in blk.branches]
    assert [p.shape[1] for p in parts] == [2, 4, 3, 1] and blk.out_channels == 10
    torch.testing.assert_close(blk(x), torch.cat(parts, 1))


def test_trains_a_step_at_tiny_width():
    m = build_backbone("s3dg", width=8)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x = torch.randn(4, 3, 8, 32, 32)
    loss = m(x).pow(2).mean()
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())
    opt.step()
