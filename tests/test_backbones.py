"""Backbones and heads: shapes, layouts (Table 17), parameter counts, and functional references."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidssl.errors import BackboneError
from vidssl.models import BACKBONES, MLP, backbone_options, build_backbone

CONTRACT_NAMES = ["r3d18", "r3d34", "r2plus1d18", "slow_r18", "slow_r50", "resnet2d18"]
# feat_dim at width w: 8w for basic-block nets, 32w for the R-50 bottleneck net
FEAT_MULT = {"r3d18": 8, "r3d34": 8, "r2plus1d18": 8, "slow_r18": 8, "slow_r50": 32, "resnet2d18": 8}


def half(n: int) -> int:
    """Output length of a stride-2 conv / pool with 'same' padding: ceil(n / 2)."""
    return (n + 1) // 2


def expected_stage_shapes(name: str, width: int, t: int, h: int, w: int) -> dict:
    """[C, T, H, W] of every stage, from the layouts in the module docstrings (independent arithmetic)."""
    chans = [width, width, 2 * width, 4 * width, 8 * width]
    if name == "slow_r50":
        chans = [width, 4 * width, 8 * width, 16 * width, 32 * width]
    pooled_stem = name != "r2plus1d18"  # r2plus1d18 has no max pool by default (Tran et al.)
    keeps_t = name in ("slow_r18", "slow_r50", "resnet2d18")
    shapes, hs, ws, ts = {}, half(h), half(w), t
    for i, stage in enumerate(["conv1", "conv2", "conv3", "conv4", "conv5"]):
        if i == 1 and pooled_stem:
            hs, ws = half(hs), half(ws)
        if i >= 2:
            hs, ws = half(hs), half(ws)
            ts = ts if keeps_t else half(ts)
        shapes[stage] = (chans[i], ts, hs, ws)
    return shapes


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ----------------------------------------------------------------------------- registry


def test_registry_holds_the_contract_names():
    assert set(CONTRACT_NAMES) <= set(BACKBONES)


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError) as e:
        build_backbone("resnet9000")
    for name in CONTRACT_NAMES:
        assert name in str(e.value)


def test_unknown_option_names_the_allowed_ones():
    with pytest.raises(ValueError) as e:
        build_backbone("r3d18", width=8, dropout=0.5)
    msg = str(e.value)
    assert "dropout" in msg and "zero_init_residual" in msg and "stem_pool" in msg
    assert set(backbone_options("slow_r50")) == {"zero_init_residual", "channels_last", "conv5_dilation"}


@pytest.mark.parametrize("kwargs", [dict(width=0), dict(width=8.0), dict(in_channels=0),
                                    dict(width=8, zero_init_residual="yes"), dict(width=8, stem_pool=1)])
def test_bad_values_are_rejected(kwargs):
    with pytest.raises(BackboneError):
        build_backbone("r3d18", **kwargs)


def test_bad_input_is_rejected_with_the_shape():
    m = build_backbone("slow_r18", in_channels=2, width=8)
    with pytest.raises(ValueError, match=r"2 input channels.*\(1, 3, 4, 32, 32\)"):
        m(torch.randn(1, 3, 4, 32, 32))
    with pytest.raises(ValueError, match="N, C, T, H, W"):
        m(torch.randn(1, 2, 32, 32))


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("name", CONTRACT_NAMES)
@pytest.mark.parametrize("in_channels,width,size", [(3, 8, (4, 32, 32)), (2, 12, (5, 27, 21)), (3, 8, (1, 16, 16))])
def test_output_and_stage_shapes(name, in_channels, width, size):
    torch.manual_seed(0)
    m = build_backbone(name, in_channels=in_channels, width=width).eval()
    x = torch.randn(2, in_channels, *size)
    with torch.no_grad():
        pooled, stages = m(x, return_stages=True)
        plain = m(x)
    assert m.feat_dim == FEAT_MULT[name] * width
    assert pooled.shape == (2, m.feat_dim) and plain.shape == (2, m.feat_dim)
    assert list(stages) == m.stage_names == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    got = {k: tuple(v.shape[1:]) for k, v in stages.items()}
    assert got == expected_stage_shapes(name, width, *size)
    assert all(v.shape[0] == 2 for v in stages.values())
    # the pooled output is the global average of the last stage over T, H, W
    assert torch.allclose(pooled, stages["conv5"].flatten(2).mean(2), atol=1e-6)
    assert torch.allclose(pooled, plain, atol=1e-6)


def test_r3d_halves_time_at_stages_3_to_5_and_slow_keeps_it():
    x = torch.randn(1, 3, 16, 32, 32)
    with torch.no_grad():
        _, r3d = build_backbone("r3d18", width=8)(x, return_stages=True)
        _, slow = build_backbone("slow_r50", width=8)(x, return_stages=True)
    assert [v.shape[2] for v in r3d.values()] == [16, 16, 8, 4, 2]
    assert [v.shape[2] for v in slow.values()] == [16] * 5
    # stem_pool=False: torchvision's r3d_18 layout (no max pool), maps twice as large
    with torch.no_grad():
        _, tv = build_backbone("r3d18", width=8, stem_pool=False)(x, return_stages=True)
    assert [tuple(v.shape[2:]) for v in tv.values()] == [(16, 16, 16), (16, 16, 16), (8, 8, 8), (4, 4, 4), (2, 2, 2)]


# ----------------------------------------------------------------------------- layouts


def conv_kernels(module: nn.Module) -> list[tuple]:
    return [(m.kernel_size, m.stride) for m in module.modules() if isinstance(m, nn.Conv3d)]


@pytest.mark.parametrize("name", ["slow_r18", "slow_r50"])
def test_slow_has_temporal_kernels_only_in_res4_res5(name):
    m = build_backbone(name, width=8)
    # conv1 of Table 17: 1x7x7, stride (1, 2, 2); pool1: 1x3x3, stride (1, 2, 2)
    assert conv_kernels(m.stages["conv1"]) == [((1, 7, 7), (1, 2, 2))]
    pool = m.stages["conv2"][0]
    assert isinstance(pool, nn.MaxPool3d) and pool.kernel_size == (1, 3, 3) and pool.stride == (1, 2, 2)
    for stage in ["conv2", "conv3", "conv4", "conv5"]:
        blocks = [b for b in m.stages[stage] if not isinstance(b, nn.MaxPool3d)]
        for block in blocks:
            first = block.conv1.kernel_size[0]
            others = [c.kernel_size[0] for c in block.modules() if isinstance(c, nn.Conv3d) and c is not block.conv1]
            assert first == (3 if stage in ("conv4", "conv5") else 1), (stage, first)
            assert set(others) == {1}
    # no temporal down-sampling anywhere
    assert all(s[0] == 1 for _, s in conv_kernels(m))
    assert all(p.stride[0] == 1 for p in m.modules() if isinstance(p, nn.MaxPool3d))


def test_r3d_uses_3x3x3_convs_and_r2plus1d_factorises_them():
    r3d = build_backbone("r3d18", width=8)
    assert conv_kernels(r3d.stages["conv1"]) == [((3, 7, 7), (1, 2, 2))]
    for stage in ["conv2", "conv3", "conv4", "conv5"]:
        assert {k for k, _ in conv_kernels(r3d.stages[stage])} <= {(3, 3, 3), (1, 1, 1)}
    r21 = build_backbone("r2plus1d18", width=8)
    assert [k for k, _ in conv_kernels(r21.stages["conv1"])] == [(1, 7, 7), (3, 1, 1)]
    for stage in ["conv2", "conv3", "conv4", "conv5"]:
        assert {k for k, _ in conv_kernels(r21.stages[stage])} == {(1, 3, 3), (3, 1, 1)} | (
            {(1, 1, 1)} if stage != "conv2" else set())


@pytest.mark.parametrize("cin,cout", [(64, 64), (64, 128), (128, 256), (16, 32), (3, 8)])
def test_r2plus1d_mid_channels_match_the_3d_parameter_count(cin, cout):
    from vidssl.models.blocks import r2plus1d_mid_channels

    m = r2plus1d_mid_channels(cin, cout)
    full = 27 * cin * cout
    # the largest M whose factorised count 9*cin*M + 3*M*cout does not exceed the 3x3x3 count
    assert 9 * cin * m + 3 * m * cout <= full < 9 * cin * (m + 1) + 3 * (m + 1) * cout


# Known parameter counts at width 64 without the classifier: torchvision r3d_18 33,371,472 and
# r2plus1d_18 31,505,325 minus their 512*400 + 400 fc; resnet18 11,689,512 minus 512*1000 + 1000;
# pytorchvideo slow_r50 32,454,096 minus 2048*400 + 400; Slow R-18 = Table 5's 20.2M minus 512*400 + 400.
@pytest.mark.parametrize("name,count", [("r3d18", 33_371_472 - 205_200), ("r2plus1d18", 31_505_325 - 205_200),
                                        ("resnet2d18", 11_689_512 - 513_000), ("slow_r50", 32_454_096 - 819_600),
                                        ("slow_r18", 20_023_872)])
def test_parameter_counts_at_paper_width(name, count):
    assert n_params(build_backbone(name, width=64)) == count
    if name == "slow_r18":
        assert round((count + 205_200) / 1e6, 1) == 20.2  # Table 5 of the large-scale study


def test_r3d18_parameter_count_from_the_layout():
    """Count r3d18's parameters at width 16 by hand from the layout table."""
    w, total = 16, 0
    total += 3 * w * 3 * 7 * 7 + 2 * w  # conv1 + BN
    cin = w
    for i, cout in enumerate([w, 2 * w, 4 * w, 8 * w]):
        for b in range(2):
            total += 27 * cin * cout + 2 * cout + 27 * cout * cout + 2 * cout
            if cin != cout:  # projection shortcut at the first block of stages 3-5
                total += cin * cout + 2 * cout
            cin = cout
    assert n_params(build_backbone("r3d18", width=w)) == total


# ----------------------------------------------------------------------------- functional references


def _randomise_bn(m: nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    for bn in m.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=g) * 0.1)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            bn.weight.data.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            bn.bias.data.copy_(torch.randn(bn.num_features, generator=g) * 0.1)


def _bn(x, sd, p):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                        False, 0.0, 1e-5)


def ref_r3d18(sd: dict, x: torch.Tensor) -> dict:
    """Eval-mode r3d18 written out from the layout table with F.conv3d."""
    x = F.relu(_bn(F.conv3d(x, sd["stages.conv1.0.weight"], stride=(1, 2, 2), padding=(1, 3, 3)), sd, "stages.conv1.1"))
    maps = {"conv1": x}
    x = F.max_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1))
    for stage, stride in zip(["conv2", "conv3", "conv4", "conv5"], [1, 2, 2, 2]):
        first = 1 if stage == "conv2" else 0  # the pool is item 0 of conv2
        for b in range(2):
            p, s = f"stages.{stage}.{first + b}.", stride if b == 0 else 1
            y = F.relu(_bn(F.conv3d(x, sd[p + "conv1.weight"], stride=s, padding=1), sd, p + "bn1"))
            y = _bn(F.conv3d(y, sd[p + "conv2.weight"], padding=1), sd, p + "bn2")
            short = x
            if p + "downsample.0.weight" in sd:
                short = _bn(F.conv3d(x, sd[p + "downsample.0.weight"], stride=s), sd, p + "downsample.1")
            x = F.relu(y + short)
        maps[stage] = x
    return maps


def ref_slow_r50(sd: dict, x: torch.Tensor) -> dict:
    """Eval-mode Slow R-50 written out from Table 17 with F.conv3d."""
    x = F.relu(_bn(F.conv3d(x, sd["stages.conv1.0.weight"], stride=(1, 2, 2), padding=(0, 3, 3)), sd, "stages.conv1.1"))
    maps = {"conv1": x}
    x = F.max_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1))
    for stage, blocks, kt, stride in zip(["conv2", "conv3", "conv4", "conv5"], [3, 4, 6, 3], [1, 1, 3, 3],
                                         [1, 2, 2, 2]):
        first = 1 if stage == "conv2" else 0
        for b in range(blocks):
            p, s = f"stages.{stage}.{first + b}.", stride if b == 0 else 1
            y = F.relu(_bn(F.conv3d(x, sd[p + "conv1.weight"], padding=(kt // 2, 0, 0)), sd, p + "bn1"))
            y = F.relu(_bn(F.conv3d(y, sd[p + "conv2.weight"], stride=(1, s, s), padding=(0, 1, 1)), sd, p + "bn2"))
            y = _bn(F.conv3d(y, sd[p + "conv3.weight"]), sd, p + "bn3")
            short = x
            if p + "downsample.0.weight" in sd:
                short = _bn(F.conv3d(x, sd[p + "downsample.0.weight"], stride=(1, s, s)), sd, p + "downsample.1")
            x = F.relu(y + short)
        maps[stage] = x
    return maps


@pytest.mark.parametrize("name,ref", [("r3d18", ref_r3d18), ("slow_r50", ref_slow_r50)])
@pytest.mark.parametrize("size", [(4, 32, 32), (3, 24, 20)])
def test_matches_functional_reference(name, ref, size):
    torch.manual_seed(0)
    m = build_backbone(name, width=8)
    _randomise_bn(m)
    m.eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        pooled, maps = m(x, return_stages=True)
        want = ref(m.state_dict(), x)
    for stage in m.stage_names:
        assert torch.allclose(maps[stage], want[stage], atol=1e-4, rtol=1e-4), stage
    assert torch.allclose(pooled, want["conv5"].mean((2, 3, 4)), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("size", [(3, 32, 32), (5, 20, 28)])
def test_resnet2d_equals_each_frame_run_alone_then_averaged(size):
    torch.manual_seed(0)
    m = build_backbone("resnet2d18", width=8)
    _randomise_bn(m)
    m.eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        pooled, maps = m(x, return_stages=True)
        per_frame, frame_maps = [], []
        for t in range(size[0]):
            y = x[:, :, t]  # one frame: [N, C, H, W]
            for stage in m.stages.values():
                y = stage(y)
            frame_maps.append(y)
            per_frame.append(y.mean((2, 3)))
        want = torch.stack(per_frame).mean(0)
    assert torch.allclose(pooled, want, atol=1e-5)
    assert torch.allclose(maps["conv5"], torch.stack(frame_maps, 2), atol=1e-5)


# ----------------------------------------------------------------------------- training behaviour


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    m = build_backbone(name, width=8).train()
    m(torch.randn(2, 3, 4, 20, 20)).square().sum().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", ["r3d18", "slow_r50", "resnet2d18"])
def test_zero_init_residual_makes_blocks_start_as_identity(name):
    torch.manual_seed(0)
    m = build_backbone(name, width=8, zero_init_residual=True)
    lasts = [b.last_bn for b in m.modules() if hasattr(b, "last_bn")]
    assert lasts and all((bn.weight == 0).all() for bn in lasts)
    block = m.stages["conv3"][0]
    m.eval()
    x = torch.randn(1, block.conv1.in_channels, 2, 8, 8)
    if name == "resnet2d18":
        x = x[:, :, 0]
    with torch.no_grad():
        assert torch.allclose(block(x), F.relu(block.downsample(x)))
    default = build_backbone(name, width=8)
    assert all((b.last_bn.weight == 1).all() for b in default.modules() if hasattr(b, "last_bn"))


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_deterministic_with_a_fixed_seed(name):
    x = torch.randn(2, 3, 4, 24, 24)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        outs.append(build_backbone(name, width=8).eval()(x))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("name", ["r3d18", "slow_r18"])
def test_channels_last_changes_speed_not_results(name):
    torch.manual_seed(0)
    a = build_backbone(name, width=8, channels_last=True).eval()
    b = build_backbone(name, width=8, channels_last=False).eval()
    b.load_state_dict(a.state_dict())  # same keys and shapes whatever the layout
    x = torch.randn(2, 3, 4, 24, 24)
    with torch.no_grad():
        pa, sa = a(x, return_stages=True)
        pb, _ = b(x, return_stages=True)
    assert torch.allclose(pa, pb, atol=1e-5)
    assert sa["conv5"].is_contiguous(memory_format=torch.channels_last_3d)


def test_features_after_a_training_step_still_match_the_stage_mean():
    torch.manual_seed(0)
    m = build_backbone("r3d18", in_channels=2, width=8)
    x = torch.randn(4, 2, 4, 24, 24)
    before = m(x)
    before.square().mean().backward()
    with torch.no_grad():  # one plain SGD step (torch.optim's first step imports torch._dynamo: slow)
        for p in m.parameters():
            p -= 0.1 * p.grad
    after, stages = m(x, return_stages=True)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, stages["conv5"].flatten(2).mean(2), atol=1e-6)


# ----------------------------------------------------------------------------- heads


def ref_mlp(mlp: MLP, x: torch.Tensor, bn: bool, last_bn: bool) -> torch.Tensor:
    """Linear -> BN (batch statistics) -> ReLU, ..., Linear [-> BN without affine], written out."""
    linears = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
    hidden_bns = [m for m in mlp.modules() if isinstance(m, nn.BatchNorm1d) and m.affine]

    def normalise(v):
        return (v - v.mean(0)) / torch.sqrt(v.var(0, unbiased=False) + 1e-5)

    for i, lin in enumerate(linears[:-1]):
        x = F.linear(x, lin.weight, lin.bias)
        if bn:
            x = normalise(x) * hidden_bns[i].weight + hidden_bns[i].bias
        x = F.relu(x)
    x = F.linear(x, linears[-1].weight, linears[-1].bias)
    return normalise(x) if last_bn else x


@pytest.mark.parametrize("layers,bn,last_bn", [(1, True, False), (2, True, False), (3, True, True),
                                               (3, False, False), (2, True, True), (1, False, True)])
@pytest.mark.parametrize("n", [4, 7])
def test_mlp_matches_reference(layers, bn, last_bn, n):
    torch.manual_seed(0)
    mlp = MLP(10, 16, 6, layers, bn=bn, last_bn=last_bn).train()
    for m in mlp.modules():  # non-trivial affine BN parameters
        if isinstance(m, nn.BatchNorm1d) and m.affine:
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
    x = torch.randn(n, 10)
    y = mlp(x)
    assert y.shape == (n, 6)
    assert torch.allclose(y, ref_mlp(mlp, x, bn, last_bn), atol=1e-5)
    linears = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
    bns = [m for m in mlp.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(linears) == layers
    assert len(bns) == (layers - 1) * bn + last_bn
    if last_bn:
        assert not bns[-1].affine and linears[-1].bias is None
        assert torch.allclose(y.mean(0), torch.zeros(6), atol=1e-5)


def test_mlp_rejects_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="num_layers"):
        MLP(8, 16, 4, 0)
    with pytest.raises(ValueError, match=r"\[N, 8\]"):
        MLP(8, 16, 4, 2)(torch.randn(3, 9))
    assert math.isclose(sum(p.numel() for p in MLP(8, 16, 4, 2, bn=False).parameters()), 8 * 16 + 16 + 16 * 4 + 4)


# ----------------------------------------------------------------------------- SlowFast and TRN (VIE families 3, 5)


def two_rate(n=2, t=2, alpha=4, size=(32, 32), c=3):
    return (torch.randn(n, c, t, *size), torch.randn(n, c, alpha * t, *size))


@pytest.mark.parametrize("name,mult", [("slowfast_r18", 8), ("slowfast_r50", 32)])
@pytest.mark.parametrize("t,size", [(2, (32, 32)), (1, (24, 36))])
def test_slowfast_shapes_and_pooled_is_conv5_mean(name, mult, t, size):
    torch.manual_seed(0)
    w = 8
    m = build_backbone(name, width=w).eval()
    with torch.no_grad():
        pooled, stages = m(*two_rate(t=t, size=size), return_stages=True)
    assert m.feat_dim == mult * w + mult * w // 8 and pooled.shape == (2, m.feat_dim)
    assert list(stages) == m.stage_names
    slow_shapes = expected_stage_shapes("slow_r50" if name == "slowfast_r50" else "slow_r18", w, t, *size)
    for stage, (c, ts, hs, ws) in slow_shapes.items():
        assert stages[stage].shape == (2, c + c // 8, ts, hs, ws), stage  # Slow + Fast channels, Slow T
    assert torch.allclose(pooled, stages["conv5"].flatten(2).mean(2), atol=1e-5)


def test_slowfast_r50_parameter_count_and_laterals():
    m = build_backbone("slowfast_r50", width=64)
    # pytorchvideo / PySlowFast SlowFast R-50 8x8: 34.57M parameters with its 2304 x 400 head
    assert round((n_params(m) + 2304 * 400 + 400) / 1e6, 2) == 34.57
    assert m.feat_dim == 2304
    assert m.slow["conv3"][0].conv1.in_channels == 256 + 2 * 32  # fused Slow input: C_slow + 2 C_fast
    lat = m.lateral["conv1"][0]
    assert lat.kernel_size == (7, 1, 1) and lat.stride == (4, 1, 1) and lat.out_channels == 16
    assert set(m.lateral) == {"conv1", "conv2", "conv3", "conv4"}
    assert conv_kernels(m.fast["conv1"]) == [((5, 7, 7), (1, 2, 2))]


def test_slowfast_matches_a_written_out_forward():
    torch.manual_seed(0)
    m = build_backbone("slowfast_r18", width=16)
    _randomise_bn(m)
    m.eval()
    slow, fast = two_rate(t=2)
    with torch.no_grad():
        got = m(slow, fast)
        s, f = m.slow["conv1"](slow), m.fast["conv1"](fast)
        s, f = F.max_pool3d(s, (1, 3, 3), (1, 2, 2), (0, 1, 1)), F.max_pool3d(f, (1, 3, 3), (1, 2, 2), (0, 1, 1))
        for stage in ["conv1", "conv2", "conv3", "conv4", "conv5"]:
            if stage != "conv1":
                s, f = m.slow[stage](s), m.fast[stage](f)
            if stage != "conv5":  # lateral: time-strided conv of the Fast map, concatenated to the Slow map
                s = torch.cat([s, m.lateral[stage](f)], 1)
        want = torch.cat([s.mean((2, 3, 4)), f.mean((2, 3, 4))], 1)
    assert torch.allclose(got, want, atol=1e-5)


def test_slowfast_rejects_bad_inputs():
    m = build_backbone("slowfast_r18", width=8)
    with pytest.raises(ValueError, match=r"two pathways, backbone\(slow, fast\)"):
        m(torch.randn(1, 3, 4, 32, 32))
    with pytest.raises(ValueError, match="alpha = 4"):
        m(torch.randn(1, 3, 2, 32, 32), torch.randn(1, 3, 6, 32, 32))
    with pytest.raises(ValueError, match="multiple of beta"):
        build_backbone("slowfast_r18", width=12)


def test_slowfast_gradients_reach_every_parameter():
    torch.manual_seed(0)
    m = build_backbone("slowfast_r18", width=8, channels_last=False).train()
    m(*two_rate()).square().sum().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def ref_trn(m, x: torch.Tensor) -> torch.Tensor:
    """Multi-scale relation written out with loops over the ordered frame tuples."""
    import itertools

    n, _, k = x.shape[:3]
    frames = torch.stack([m.cnn(x[:, :, t:t + 1]) for t in range(k)], 1)  # one frame at a time: [N, K, D]
    out = torch.zeros(n, m.feat_dim)
    scales = range(k, 1, -1) if len(m.relations) > 1 else [k]
    for g, scale in zip(m.relations, scales):
        outs = [g(torch.cat([frames[:, i] for i in combo], 1)) for combo in itertools.combinations(range(k), scale)]
        out += torch.stack(outs).mean(0)
    return out


@pytest.mark.parametrize("segments,multiscale", [(4, True), (3, True), (4, False), (2, True)])
def test_trn_matches_reference(segments, multiscale):
    torch.manual_seed(0)
    m = build_backbone("trn", width=8, segments=segments, multiscale=multiscale)
    _randomise_bn(m)
    m.eval()
    x = torch.randn(2, 3, segments, 32, 32)
    with torch.no_grad():
        pooled, stages = m(x, return_stages=True)
        want = ref_trn(m, x)
    assert pooled.shape == (2, 64) and m.feat_dim == 64
    assert len(m.relations) == (segments - 1 if multiscale else 1)
    assert torch.allclose(pooled, want, atol=1e-5)
    assert stages["conv5"].shape == (2, 64, segments, 1, 1)


def test_trn_checks_segments_and_trains():
    m = build_backbone("trn", width=8, relation_dim=32, bottleneck=16)
    with pytest.raises(ValueError, match="4 segment frames"):
        m(torch.randn(1, 3, 5, 32, 32))
    m(torch.randn(2, 3, 4, 20, 20)).square().sum().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
