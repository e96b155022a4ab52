"""Weights in torchvision's layout (vidssl.models.convert) and the weights files (vidssl.engine.weights).

The expected torchvision keys and shapes are written here from torchvision's own model
definition (torchvision/models/video/resnet.py: VideoResNet, BasicStem, R2Plus1dStem,
BasicBlock, Conv3DSimple, Conv2Plus1D, _make_layer), not from vidssl's code; the forward
reference is built from the torchvision-layout dict with torch.nn.functional only.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidssl.errors import WeightsError
from vidssl.models import build_backbone
from vidssl.models.convert import CLASSIFIER_KEYS, TORCHVISION_NAMES, from_torchvision, to_torchvision

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
ARCHS = {"r3d18": "r3d_18", "r2plus1d18": "r2plus1d_18"}
TV = {"stem_pool": False}


def bn(prefix: str, c: int) -> dict:
    return {f"{prefix}.{p}": (() if p == "num_batches_tracked" else (c,)) for p in BN}


def torchvision_keys(arch: str, width: int = 64, in_channels: int = 3) -> dict[str, tuple]:
    """Key -> shape of ``torchvision.models.video.<arch>()``'s state dict without ``fc``, in order.

    torchvision builds width 64 only (its stems hard-code 64 and 45 channels); other widths
    scale every channel count, and R(2+1)D's stem keeps 45/64 of the width."""
    w = width
    keys: dict[str, tuple] = {}
    if arch == "r3d_18":  # BasicStem: Conv3d(3, 64, (3, 7, 7)), BN(64), ReLU
        keys["stem.0.weight"] = (w, in_channels, 3, 7, 7)
        keys |= bn("stem.1", w)
    else:  # R2Plus1dStem: Conv3d(3, 45, (1, 7, 7)), BN(45), ReLU, Conv3d(45, 64, (3, 1, 1)), BN(64), ReLU
        mid = max(1, round(45 * w / 64))
        keys["stem.0.weight"] = (mid, in_channels, 1, 7, 7)
        keys |= bn("stem.1", mid)
        keys["stem.3.weight"] = (w, mid, 3, 1, 1)
        keys |= bn("stem.4", w)
    inplanes = w
    for layer, (planes, stride) in enumerate([(w, 1), (2 * w, 2), (4 * w, 2), (8 * w, 2)], start=1):
        for b in range(2):  # layers=[2, 2, 2, 2]
            cin = inplanes if b == 0 else planes
            midplanes = (cin * planes * 3 * 3 * 3) // (cin * 3 * 3 + 3 * planes)  # BasicBlock, both convs
            p = f"layer{layer}.{b}"
            for conv, c_in in (("conv1", cin), ("conv2", planes)):  # Sequential(conv_builder, BN[, ReLU])
                if arch == "r3d_18":  # Conv3DSimple: one Conv3d (3, 3, 3)
                    keys[f"{p}.{conv}.0.weight"] = (planes, c_in, 3, 3, 3)
                else:  # Conv2Plus1D: Conv3d (1, 3, 3), BN(mid), ReLU, Conv3d (3, 1, 1)
                    keys[f"{p}.{conv}.0.0.weight"] = (midplanes, c_in, 1, 3, 3)
                    keys |= bn(f"{p}.{conv}.0.1", midplanes)
                    keys[f"{p}.{conv}.0.3.weight"] = (planes, midplanes, 3, 1, 1)
                keys |= bn(f"{p}.{conv}.1", planes)
            if b == 0 and (stride != 1 or inplanes != planes):  # _make_layer's downsample
                keys[f"{p}.downsample.0.weight"] = (planes, inplanes, 1, 1, 1)
                keys |= bn(f"{p}.downsample.1", planes)
        inplanes = planes
    return keys


def params(keys: dict[str, tuple]) -> int:
    return sum(torch.Size(s).numel() for k, s in keys.items() if not k.endswith(("running_mean", "running_var",
                                                                                    "num_batches_tracked")))


def random_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Distinct random values in every tensor (positive running variances, counters as integers)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, s in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.randint(0, 1000, s, generator=g, dtype=torch.long)
        elif k.endswith("running_var"):
            out[k] = torch.rand(s, generator=g) + 0.5
        else:
            out[k] = torch.randn(s, generator=g) * 0.3
    return out


def vidssl_state(name: str, width: int, seed: int = 0) -> dict[str, torch.Tensor]:
    net = build_backbone(name, width=width, **TV)
    return random_state({k: tuple(v.shape) for k, v in net.state_dict().items()}, seed)


def test_torchvision_definition_counts_match_its_documented_parameters():
    # R3D_18_Weights / R2Plus1D_18_Weights.KINETICS400_V1 meta: num_params 33,371,472 and 31,505,325
    fc = 400 * 512 + 400
    assert params(torchvision_keys("r3d_18")) + fc == 33_371_472
    assert params(torchvision_keys("r2plus1d_18")) + fc == 31_505_325
    assert TORCHVISION_NAMES == ARCHS


@pytest.mark.parametrize("name", list(ARCHS))
@pytest.mark.parametrize("width", [64, 8])
def test_export_gives_torchvisions_keys_and_shapes_and_round_trips(name, width):
    state = vidssl_state(name, width)
    tv, notes = to_torchvision(name, state, width=width, options=TV)
    expected = torchvision_keys(ARCHS[name], width)
    assert [(k, tuple(v.shape)) for k, v in tv.items()] == list(expected.items())  # every key, shape and order
    assert not set(CLASSIFIER_KEYS) & set(tv)  # fc is not written
    assert (notes == []) == (width == 64)
    back, info = from_torchvision(name, tv, options=TV)
    assert info["width"] == width and info["in_channels"] == 3 and info["dropped"] == {}
    assert list(back) == list(state)
    for k in state:
        assert back[k].dtype == state[k].dtype and torch.equal(back[k], state[k]), k


def test_import_drops_and_reports_the_classifier():
    tv = random_state(torchvision_keys("r3d_18", 8))
    tv |= {"fc.weight": torch.zeros(400, 64), "fc.bias": torch.zeros(400)}
    _, info = from_torchvision("r3d18", tv, options=TV)
    assert info["dropped"] == {"fc.weight": [400, 64], "fc.bias": [400]}


def test_missing_unknown_and_misshapen_keys_are_named_in_one_error():
    tv = random_state(torchvision_keys("r2plus1d_18", 8))
    del tv["layer2.0.downsample.0.weight"]
    tv["layer5.0.conv1.0.weight"] = torch.zeros(1)
    tv["layer3.1.conv2.0.3.weight"] = torch.zeros(32, 7, 3, 1, 1)
    with pytest.raises(WeightsError) as e:
        from_torchvision("r2plus1d18", tv, options=TV)
    msg = str(e.value)
    assert "\n" not in msg
    assert "1 missing (layer2.0.downsample.0.weight [16, 8, 1, 1, 1])" in msg
    assert "1 unknown (layer5.0.conv1.0.weight)" in msg
    assert "layer3.1.conv2.0.3.weight [32, 7, 3, 1, 1], expected [32, " in msg


def test_other_layouts_are_named_with_their_format():
    slowfast_like = {"s1.pathway0_stem.conv.weight": torch.zeros(64, 3, 1, 7, 7)}
    with pytest.raises(WeightsError, match=r"none of its keys is in this layout: they look like pyslowfast's "
                                           r"layout \(--format pyslowfast\)"):
        from_torchvision("r3d18", slowfast_like, options=TV)
    with pytest.raises(WeightsError, match="vidssl's own key names"):
        from_torchvision("r3d18", build_backbone("r3d18", width=4, **TV).state_dict(), options=TV)
    with pytest.raises(WeightsError, match="slow_r50.*does not convert"):
        from_torchvision("slow_r50", slowfast_like)


def test_a_different_network_is_refused_or_converted_with_the_reason():
    net = build_backbone("r3d18", width=8, stem_pool=True)  # the default: a pool torchvision lacks
    state = net.state_dict()
    with pytest.raises(WeightsError, match="stem_pool=true has a 1x3x3 max pool after conv1"):
        to_torchvision("r3d18", state, width=8, options={"stem_pool": True})
    with pytest.raises(WeightsError, match="max pool"):
        to_torchvision("r3d18", state, width=8)  # r3d18's default options
    tv, notes = to_torchvision("r3d18", state, width=8, options={"stem_pool": True}, allow_different=True)
    assert any("not torchvision's network" in n and "max pool" in n for n in notes)
    assert list(tv) == list(torchvision_keys("r3d_18", 8))  # blocks renumbered past the pool
    with pytest.raises(WeightsError, match="max pool"):
        from_torchvision("r3d18", tv, options={"stem_pool": True})


# ----------------------------------------------------------------------------- the maths, not only the shapes


def _bn(x, sd, p):
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
                        training=False, eps=1e-5)


def _conv(x, sd, p, arch, stride):
    """Conv3DSimple (3x3x3, padding 1) or Conv2Plus1D (1x3x3 stride (1, s, s), BN, ReLU, 3x1x1 stride (s, 1, 1))."""
    if arch == "r3d_18":
        return F.conv3d(x, sd[f"{p}.weight"], stride=stride, padding=1)
    x = F.conv3d(x, sd[f"{p}.0.weight"], stride=(1, stride, stride), padding=(0, 1, 1))
    x = F.relu(_bn(x, sd, f"{p}.1"))
    return F.conv3d(x, sd[f"{p}.3.weight"], stride=(stride, 1, 1), padding=(1, 0, 0))


def torchvision_forward(sd: dict, arch: str, x: torch.Tensor) -> torch.Tensor:
    """VideoResNet.forward up to the pooled features (before fc), from the state dict alone."""
    if arch == "r3d_18":
        x = F.relu(_bn(F.conv3d(x, sd["stem.0.weight"], stride=(1, 2, 2), padding=(1, 3, 3)), sd, "stem.1"))
    else:
        x = F.relu(_bn(F.conv3d(x, sd["stem.0.weight"], stride=(1, 2, 2), padding=(0, 3, 3)), sd, "stem.1"))
        x = F.relu(_bn(F.conv3d(x, sd["stem.3.weight"], padding=(1, 0, 0)), sd, "stem.4"))
    for layer, stride in zip(range(1, 5), [1, 2, 2, 2]):
        for b in range(2):
            p, s = f"layer{layer}.{b}", stride if b == 0 else 1
            out = F.relu(_bn(_conv(x, sd, f"{p}.conv1.0", arch, s), sd, f"{p}.conv1.1"))
            out = _bn(_conv(out, sd, f"{p}.conv2.0", arch, 1), sd, f"{p}.conv2.1")
            if f"{p}.downsample.0.weight" in sd:  # Conv3d 1x1x1 stride (s, s, s), BN
                x = _bn(F.conv3d(x, sd[f"{p}.downsample.0.weight"], stride=s), sd, f"{p}.downsample.1")
            x = F.relu(out + x)
    return F.adaptive_avg_pool3d(x, 1).flatten(1)


@pytest.mark.parametrize("name", list(ARCHS))
def test_imported_network_computes_torchvisions_function(name):
    arch = ARCHS[name]
    tv = random_state(torchvision_keys(arch, 4), seed=1)
    weights, _ = from_torchvision(name, tv, options=TV)
    net = build_backbone(name, width=4, **TV)
    net.load_state_dict(weights, strict=True)
    net.eval()
    x = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours, ref = net(x), torchvision_forward(tv, arch, x)
    assert ours.shape == ref.shape == (2, 32)
    assert ref.abs().mean() > 1e-3  # not a trivially zero output
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_state_dicts_without_bn_counters_import_with_a_note():
    tv = {k: v for k, v in random_state(torchvision_keys("r3d_18", 4)).items() if not k.endswith("num_batches_tracked")}
    weights, info = from_torchvision("r3d18", tv, options=TV)
    assert any("num_batches_tracked missing, set to 0" in n for n in info["notes"])
    assert int(weights["stages.conv1.1.num_batches_tracked"]) == 0
