"""ResNet-18v2 (pre-activation, He et al. 2016), VIE's backbone (Sec. 4): parameter counts by hand,
a written-out functional forward, stage shapes equal to v1's, and the v2 layout of every family."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.errors import BackboneError
from vidssl.models import backbone_options, build_backbone
from vidssl.models.blocks import PreActBasicBlock
from vidssl.models.resnet2d import PreActBasicBlock2d
from vidssl.models.slowfast import SlowFast

PREACT = ["resnet2d18", "r3d18", "r3d34", "r2plus1d18", "slow_r18", "slowfast_r18", "trn"]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def resnet18v2_params(w: int, k: int, stem: int, temporal=(1, 1, 1, 1)) -> int:
    """Parameters of a ResNet-18v2 trunk counted from its layout: stem conv (``stem`` weights per
    in/out pair), four stages of two blocks [k-conv, k-conv] (``k`` = weights per pair of the
    spatial kernel, times ``temporal[i]`` for the first conv of the stage's blocks), a 1x1
    projection (no BN) where the shape changes, BN(cin) + BN(cout) per block, BN after the last."""
    total = 3 * w * stem  # stem conv, no BN (the first block normalises it)
    cin = w
    for i, cout in enumerate([w, 2 * w, 4 * w, 8 * w]):
        for b in range(2):
            c = cin if b == 0 else cout
            total += c * cout * k * temporal[i] + cout * cout * k  # conv1, conv2
            total += 2 * c + 2 * cout  # bn1 (input channels), bn2
            if b == 0 and c != cout:
                total += c * cout  # projection
        cin = cout
    return total + 2 * 8 * w  # the final BN


def test_resnet18v2_2d_parameter_count_against_the_published_resnet18():
    # torchvision's resnet18 (v1): 11,689,512 parameters, of which the 1000-way fc holds 513,000
    v1_trunk = 11_689_512 - (512 * 1000 + 1000)
    assert n_params(build_backbone("resnet2d18", width=64)) == v1_trunk
    v2 = build_backbone("resnet2d18", width=64, preact=True)
    assert n_params(v2) == resnet18v2_params(64, 9, 49) == 11_174_720
    # v1 - v2: the stem BN, three projection BNs, conv3-5's first bn1 on cin (not cout), plus the final BN
    assert v1_trunk - n_params(v2) == 2 * 64 + 2 * (128 + 256 + 512) + 2 * (64 + 128 + 256) - 2 * 512


@pytest.mark.parametrize("width", [64, 16, 8])
def test_3d_families_count_by_hand(width):
    assert n_params(build_backbone("r3d18", width=width, preact=True)) == resnet18v2_params(width, 27, 3 * 49)
    # Slow R-18: [kt x 3^2, 1 x 3^2] blocks, kt = 3 in res4 / res5 only; a 1 x 7^2 stem
    assert n_params(build_backbone("slow_r18", width=width, preact=True)) == \
        resnet18v2_params(width, 9, 49, temporal=(1, 1, 3, 3))
    assert n_params(build_backbone("resnet2d18", width=width, preact=True)) == resnet18v2_params(width, 9, 49)
    assert n_params(build_backbone("slow_r18", width=64, preact=True)) == 20_022_080  # v1: 20,023,872


def test_slowfast_r18v2_has_the_21m_parameters_of_vie():
    # VIE Sec. 4: "VIE-Slowfast ... using fewer trainable parameters (21M vs 32M)"
    assert 21e6 <= n_params(build_backbone("slowfast_r18", width=64, preact=True)) < 22e6


def test_v2_layout_of_every_family():
    for name in PREACT:
        m = build_backbone(name, width=16, preact=True)
        cnn = getattr(m, "cnn", m)
        blocks = [x for x in cnn.modules() if isinstance(x, (PreActBasicBlock, PreActBasicBlock2d))]
        assert len(blocks) == (16 if name in ("slowfast_r18", "r3d34") else 8), name
        for b in blocks:  # projections are a bare conv on the pre-activated input
            assert b.downsample is None or isinstance(b.downsample, (nn.Conv2d, nn.Conv3d)), name
            first = b.conv1[0] if isinstance(b.conv1, nn.Sequential) else b.conv1  # R(2+1)D: the spatial conv
            assert b.bn1.num_features == first.in_channels, name  # the BN before conv1 sees its input
        stems = [m.slow["conv1"], m.fast["conv1"]] if name == "slowfast_r18" else [cnn.stages["conv1"]]
        for stem in stems:  # no BN / ReLU after the last stem conv: the first block applies them
            assert not isinstance(stem[-1], (nn.BatchNorm2d, nn.BatchNorm3d, nn.ReLU)), name
        tails = [m.slow["conv5"], m.fast["conv5"]] if name == "slowfast_r18" else [cnn.stages["conv5"]]
        for tail in tails:  # conv5 ends with BN -> ReLU, so the pooled output is post-activation
            assert isinstance(tail[-1][0], (nn.BatchNorm2d, nn.BatchNorm3d)) and isinstance(tail[-1][1], nn.ReLU)


def _randomise_bn(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            n = mod.num_features
            mod.weight.data = torch.rand(n, generator=g) + 0.5
            mod.bias.data = torch.randn(n, generator=g) * 0.1
            mod.running_mean = torch.randn(n, generator=g) * 0.1
            mod.running_var = torch.rand(n, generator=g) + 0.5


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def ref_resnet2d18v2(m, x):
    """A written-out ResNet-18v2 forward of frames x [B, C, H, W] with m's weights (eval mode)."""
    y = F.conv2d(x, m.stages["conv1"][0].weight, stride=2, padding=3)
    y = F.max_pool2d(y, 3, 2, 1)
    for stage in ["conv2", "conv3", "conv4", "conv5"]:
        for blk in [b for b in m.stages[stage] if isinstance(b, PreActBasicBlock2d)]:
            s = blk.conv1.stride[0]
            a = F.relu(_bn(y, blk.bn1))
            short = y if blk.downsample is None else F.conv2d(a, blk.downsample.weight, stride=s)
            h = F.conv2d(a, blk.conv1.weight, stride=s, padding=1)
            y = F.conv2d(F.relu(_bn(h, blk.bn2)), blk.conv2.weight, padding=1) + short
    return F.relu(_bn(y, m.stages["conv5"][-1][0])).mean((2, 3))


def ref_r3d18v2(m, x):
    """The same for the 3D ResNet-18v2 on clips x [N, C, T, H, W]."""
    y = F.conv3d(x, m.stages["conv1"][0].weight, stride=(1, 2, 2), padding=(1, 3, 3))
    y = F.max_pool3d(y, (1, 3, 3), (1, 2, 2), (0, 1, 1))
    for stage in ["conv2", "conv3", "conv4", "conv5"]:
        for blk in [b for b in m.stages[stage] if isinstance(b, PreActBasicBlock)]:
            s = blk.conv1.stride
            a = F.relu(_bn(y, blk.bn1))
            short = y if blk.downsample is None else F.conv3d(a, blk.downsample.weight, stride=s)
            h = F.conv3d(a, blk.conv1.weight, stride=s, padding=1)
            y = F.conv3d(F.relu(_bn(h, blk.bn2)), blk.conv2.weight, padding=1) + short
    return F.relu(_bn(y, m.stages["conv5"][-1][0])).mean((2, 3, 4))


@pytest.mark.parametrize("size", [(3, 32, 32), (2, 20, 28)])
def test_resnet2d18v2_matches_a_written_out_forward(size):
    torch.manual_seed(0)
    m = build_backbone("resnet2d18", width=8, preact=True)
    _randomise_bn(m, 1)
    m.eval()
    x = torch.randn(2, 3, *size)
    frames = x.transpose(1, 2).reshape(-1, 3, *size[1:])
    ref = ref_resnet2d18v2(m, frames).view(2, size[0], -1).mean(1)
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [(4, 32, 32), (3, 24, 20)])
def test_r3d18v2_matches_a_written_out_forward(size):
    torch.manual_seed(0)
    m = build_backbone("r3d18", width=8, preact=True, channels_last=False)
    _randomise_bn(m, 2)
    m.eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref_r3d18v2(m, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", PREACT)
def test_v2_keeps_v1s_output_and_stage_shapes(name):
    opts = {"segments": 4} if name == "trn" else {}
    x = torch.randn(2, 3, 4, 28, 28)
    clips = (x, torch.randn(2, 3, 16, 28, 28)) if name == "slowfast_r18" else (x,)
    shapes = []
    for preact in (False, True):
        torch.manual_seed(0)
        m = build_backbone(name, width=8, preact=preact, **opts)
        pooled, maps = m(*clips, return_stages=True)
        assert torch.isfinite(pooled).all()
        shapes.append((pooled.shape, {k: v.shape for k, v in maps.items()}))
        pooled.square().mean().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters()), name
    assert shapes[0] == shapes[1], name


@pytest.mark.parametrize("name", ["resnet2d18", "r3d18", "slow_r18"])
def test_zero_init_residual_makes_v2_blocks_start_as_the_identity(name):
    m = build_backbone(name, width=8, preact=True, zero_init_residual=True).eval()
    blocks = [b for b in m.modules() if isinstance(b, (PreActBasicBlock, PreActBasicBlock2d)) and b.downsample is None]
    assert blocks
    for b in blocks:
        c = b.bn1.num_features
        x = torch.randn(2, c, 5, 6) if isinstance(b, PreActBasicBlock2d) else torch.randn(2, c, 2, 5, 6)
        with torch.no_grad():
            torch.testing.assert_close(b(x.clone()), x)


def test_preact_is_an_option_of_the_r18_families_only():
    for name in PREACT:
        assert backbone_options(name)["preact"] is False, name
    for name in ("twostream_s", "twostream_sf"):  # VIE's own models: v2 by default
        assert backbone_options(name)["preact"] is True
    for name in ("slow_r50", "slowfast_r50", "s3dg", "stacked2d18"):
        with pytest.raises(BackboneError, match="preact"):
            build_backbone(name, width=8, preact=True)
    with pytest.raises(BackboneError, match="basic blocks"):
        SlowFast(50, width=8, preact=True)
    with pytest.raises(BackboneError, match="true or false"):
        build_backbone("resnet2d18", width=8, preact="yes")
