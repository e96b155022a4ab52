"""Slow R-50 / SlowFast R-50 in PySlowFast's, PyTorchVideo's and MMAction2's layouts (vidssl.models.layouts).

The expected keys and shapes are written here from the other libraries' model definitions,
not from vidssl's code: :func:`table` walks the published networks (PySlowFast
``video_model_builder.py`` / ``resnet_helper.py`` / ``stem_helper.py``: SLOW_8x8_R50 and
SLOWFAST_8x8_R50; PyTorchVideo ``hub.slow_r50`` / ``hub.slowfast_r50``; MMAction2
``ResNet3dSlowOnly`` depth 50) in their module order and names every tensor with
:data:`NAMES`, each written from that library's source. PyTorchVideo's real key lists
(``tests/data/layouts/``, written by PyTorchVideo 0.1.5's own builders) check the walk.
The forward reference (:func:`reference_forward`) is torch.nn.functional on those dicts.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vidssl.errors import WeightsError
from vidssl.models import build_backbone
from vidssl.models.layouts import LAYOUTS, from_layout, to_layout, unwrap, wrap

DATA = Path(__file__).parent / "data" / "layouts"
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
DEPTH = (3, 4, 6, 3)  # R-50 blocks in res2..res5
SLOW_KT, FAST_KT = (1, 1, 3, 3), (3, 3, 3, 3)  # _TEMPORAL_KERNEL_BASIS "slow" / "slowfast" (res2..res5)
ARCHS = {"slow_r50": "slow", "slowfast_r50": "slowfast"}
PAIRS = [("pyslowfast", "slow_r50"), ("pyslowfast", "slowfast_r50"), ("pytorchvideo", "slow_r50"),
         ("pytorchvideo", "slowfast_r50"), ("mmaction2", "slow_r50")]
HEADS = {("pyslowfast", "slow"): "head.projection", ("pyslowfast", "slowfast"): "head.projection",
         ("pytorchvideo", "slow"): "blocks.5.proj", ("pytorchvideo", "slowfast"): "blocks.6.proj",
         ("mmaction2", "slow"): "cls_head.fc_cls"}


# ----------------------------------------------------------------------------- their names

def _pyslowfast(arch: str, what: tuple) -> str:
    """ResNetBasicStem (conv, bn) in VideoModelStem.pathway{p}_stem; FuseFastToSlow (conv_f2s, bn) as
    s{k}_fuse; ResBlock (branch1, branch1_bn, branch2 = BottleneckTransform a, a_bn, b, b_bn, c, c_bn)
    as s{s}.pathway{p}_res{b}."""
    if what[0] == "stem":
        return f"s1.pathway{what[1]}_stem.{what[2]}"
    if what[0] == "fuse":
        return f"s{what[1]}_fuse.{'conv_f2s' if what[2] == 'conv' else 'bn'}"
    _, s, p, b, m = what
    inner = {"short": "branch1", "short_bn": "branch1_bn"}.get(m, f"branch2.{m}")
    return f"s{s}.pathway{p}_res{b}.{inner}"


def _pytorchvideo(arch: str, what: tuple) -> str:
    """Net.blocks: 0 the stem (ResNetBasicStem conv, norm; in SlowFast a MultiPathWayWithFuse whose
    multipathway_blocks are the stems and multipathway_fusion a FuseFastToSlow: conv_fast_to_slow,
    norm), 1..4 the stages (ResStage.res_blocks: ResBlock branch1_conv, branch1_norm, branch2 =
    BottleneckBlock conv_a, norm_a, conv_b, norm_b, conv_c, norm_c)."""
    multi = lambda k, p: f"blocks.{k}" + (f".multipathway_blocks.{p}" if arch == "slowfast" else "")
    if what[0] == "stem":
        return f"{multi(0, what[1])}.{'conv' if what[2] == 'conv' else 'norm'}"
    if what[0] == "fuse":
        return f"blocks.{what[1] - 1}.multipathway_fusion.{'conv_fast_to_slow' if what[2] == 'conv' else 'norm'}"
    _, s, p, b, m = what
    inner = {"a": "branch2.conv_a", "a_bn": "branch2.norm_a", "b": "branch2.conv_b", "b_bn": "branch2.norm_b",
             "c": "branch2.conv_c", "c_bn": "branch2.norm_c", "short": "branch1_conv", "short_bn": "branch1_norm"}[m]
    return f"{multi(s - 1, p)}.res_blocks.{b}.{inner}"


def _mmaction2(arch: str, what: tuple) -> str:
    """Recognizer3D.backbone = ResNet3dSlowOnly: conv1 (ConvModule: conv, bn), layer{1..4} of
    Bottleneck3d (conv1, conv2, conv3, downsample: ConvModules)."""
    if what[0] == "stem":
        return f"backbone.conv1.{what[2]}"
    _, s, p, b, m = what
    inner = {"a": "conv1.conv", "a_bn": "conv1.bn", "b": "conv2.conv", "b_bn": "conv2.bn", "c": "conv3.conv",
             "c_bn": "conv3.bn", "short": "downsample.conv", "short_bn": "downsample.bn"}[m]
    return f"backbone.layer{s - 1}.{b}.{inner}"


NAMES = {"pyslowfast": _pyslowfast, "pytorchvideo": _pytorchvideo, "mmaction2": _mmaction2}


def table(fmt: str, arch: str, width: int = 64, in_channels: int = 3, beta: int = 8, ratio: int = 2,
          fusion_kernel: int = 7) -> dict[str, tuple]:
    """Key -> shape of the published network's backbone (no head), in PySlowFast's / PyTorchVideo's
    module order. Widths: WIDTH_PER_GROUP (PySlowFast), stem_dim_out(s) (PyTorchVideo), base_channels
    (MMAction2); the Fast pathway has width // BETA_INV."""
    name = lambda *what: NAMES[fmt](arch, what)
    two = arch == "slowfast"
    paths = (0, 1) if two else (0,)
    w = {0: width, 1: width // beta}
    keys: dict[str, tuple] = {}

    def conv(prefix, shape):
        keys[f"{prefix}.weight"] = shape

    def bn(prefix, c):
        keys.update({f"{prefix}.{p}": (() if p == "num_batches_tracked" else (c,)) for p in BN})

    def fuse(k, c):  # FuseFastToSlow(dim_in=c): conv [fusion_kernel, 1, 1] to c * ratio channels
        conv(name("fuse", k, "conv"), (ratio * c, c, fusion_kernel, 1, 1))
        bn(name("fuse", k, "bn"), ratio * c)

    for p in paths:  # stems: 1x7x7 (Slow), 5x7x7 (Fast), stride (1, 2, 2)
        conv(name("stem", p, "conv"), (w[p], in_channels, 1 if p == 0 else 5, 7, 7))
        bn(name("stem", p, "bn"), w[p])
    if two:
        fuse(1, w[1])
    out = {0: width, 1: w[1]}
    for i, blocks in enumerate(DEPTH):
        stage, stride = i + 2, (1 if i == 0 else 2)
        for p in paths:
            dim_in = out[p]
            if two and p == 0:  # width_per_group * X + width_per_group * X // (BETA_INV // FUSION_CONV_CHANNEL_RATIO)
                dim_in = out[0] + out[0] // (beta // ratio)
            inner, dim_out = w[p] * 2 ** i, 4 * w[p] * 2 ** i
            kt = SLOW_KT[i] if p == 0 else FAST_KT[i]
            for b in range(blocks):
                cin = dim_in if b == 0 else dim_out
                block = lambda m: name("block", stage, p, b, m)
                if cin != dim_out or (b == 0 and stride != 1):  # ResBlock: branch1 where dim or stride change
                    conv(block("short"), (dim_out, cin, 1, 1, 1))
                    bn(block("short_bn"), dim_out)
                conv(block("a"), (inner, cin, kt, 1, 1))
                bn(block("a_bn"), inner)
                conv(block("b"), (inner, inner, 1, 3, 3))
                bn(block("b_bn"), inner)
                conv(block("c"), (dim_out, inner, 1, 1, 1))
                bn(block("c_bn"), dim_out)
            out[p] = dim_out
        if two and i < 3:  # s2_fuse .. s4_fuse; none after res5
            fuse(stage, out[1])
    return keys


def real_list(arch: str) -> dict[str, tuple]:
    """PyTorchVideo's own state-dict keys and shapes (tests/data/layouts/pytorchvideo_*.txt)."""
    out = {}
    for line in (DATA / f"pytorchvideo_{arch}.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, shape = line.partition(" ")
            out[key] = tuple(int(d) for d in shape.split(",") if d)
    return out


def random_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    """Distinct random values: convs ~ N(0, 2 / fan_in) (activations stay of order 1), BN affine and
    statistics around (1, 0), positive variances, integer counters."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, s in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.randint(0, 1000, s, generator=g, dtype=torch.long)
        elif k.endswith("running_var"):
            out[k] = torch.rand(s, generator=g) + 0.5
        elif len(s) == 5:
            out[k] = torch.randn(s, generator=g) * (2.0 / (s[1] * s[2] * s[3] * s[4])) ** 0.5
        elif k.endswith("weight"):
            out[k] = 1 + 0.2 * torch.randn(s, generator=g)
        else:
            out[k] = 0.1 * torch.randn(s, generator=g)
    return out


def vidssl_state(backbone: str, width: int, seed: int = 0) -> dict[str, torch.Tensor]:
    net = build_backbone(backbone, width=width)
    return random_state({k: tuple(v.shape) for k, v in net.state_dict().items()}, seed)


# ----------------------------------------------------------------------------- the forward, from their dicts

def reference_forward(sd: dict, fmt: str, arch: str, clips: list[torch.Tensor], alpha: int = 4) -> torch.Tensor:
    """The pooled features (before the head) of their network, with torch.nn.functional only:
    stem conv (stride (1, 2, 2), 'same' padding) -> BN -> ReLU -> 1x3x3 max pool stride (1, 2, 2);
    bottlenecks Tx1x1 -> 1x3x3 (spatial stride) -> 1x1x1 with BN (eps 1e-5) and ReLU, plus
    branch1 (1x1x1 conv stride (1, s, s) + BN) or the identity, ReLU after the sum; fusion:
    conv [k, 1, 1] stride (alpha, 1, 1) -> BN -> ReLU, concatenated to the Slow map; head pool =
    global average of each pathway, concatenated (Slow first)."""
    name = lambda *what: NAMES[fmt](arch, what)

    def bn(x, p):
        return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"],
                            sd[f"{p}.bias"], training=False, eps=1e-5)

    def conv(x, p, stride=(1, 1, 1)):
        w = sd[f"{p}.weight"]
        return F.conv3d(x, w, stride=stride, padding=tuple(k // 2 for k in w.shape[2:]))

    def fuse(x, k):
        f = F.relu(bn(F.conv3d(x[1], sd[f"{name('fuse', k, 'conv')}.weight"], stride=(alpha, 1, 1),
                               padding=(sd[f"{name('fuse', k, 'conv')}.weight"].shape[2] // 2, 0, 0)),
                      name("fuse", k, "bn")))
        return [torch.cat([x[0], f], 1), x[1]]

    two = arch == "slowfast"
    x = [F.max_pool3d(F.relu(bn(conv(c, name("stem", p, "conv"), (1, 2, 2)), name("stem", p, "bn"))),
                      (1, 3, 3), (1, 2, 2), (0, 1, 1)) for p, c in enumerate(clips)]
    if two:
        x = fuse(x, 1)
    for i, blocks in enumerate(DEPTH):
        stage = i + 2
        for p in range(len(x)):
            for b in range(blocks):
                s = 2 if (i > 0 and b == 0) else 1
                block = lambda m: name("block", stage, p, b, m)
                h = F.relu(bn(conv(x[p], block("a")), block("a_bn")))
                h = F.relu(bn(conv(h, block("b"), (1, s, s)), block("b_bn")))
                h = bn(conv(h, block("c")), block("c_bn"))
                short = bn(conv(x[p], block("short"), (1, s, s)), block("short_bn")) \
                    if f"{block('short')}.weight" in sd else x[p]
                x[p] = F.relu(h + short)
        if two and i < 3:
            x = fuse(x, stage)
    return torch.cat([t.mean(dim=(2, 3, 4)) for t in x], 1)


def clips(arch: str, size: int = 64, frames: int = 8, alpha: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    slow = torch.randn(1, 3, frames, size, size, generator=g)
    return [slow] if arch == "slow" else [slow, torch.randn(1, 3, alpha * frames, size, size, generator=g)]


# ----------------------------------------------------------------------------- keys and shapes

@pytest.mark.parametrize("arch", ["slow_r50", "slowfast_r50"])
def test_the_tables_are_pytorchvideos_own_lists(arch):
    real = real_list(arch)
    head = HEADS[("pytorchvideo", ARCHS[arch])]
    body = {k: s for k, s in real.items() if not k.startswith(head)}
    assert list(table("pytorchvideo", ARCHS[arch]).items()) == list(body.items())  # keys, shapes and order
    assert real[f"{head}.weight"] == (400, 2048 if arch == "slow_r50" else 2304)
    params = sum(torch.Size(s).numel() for k, s in real.items() if not k.endswith(("running_mean", "running_var",
                                                                                   "num_batches_tracked")))
    if arch == "slow_r50":  # models/slow.py: 31,634,496 without the head, 32.45M with it
        assert params == 31_634_496 + 400 * 2048 + 400


@pytest.mark.parametrize("fmt,backbone", PAIRS)
def test_export_gives_their_keys_and_shapes_at_width_64(fmt, backbone):
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        state = build_backbone(backbone).state_dict()
    theirs, notes = to_layout(fmt, backbone, state, width=64)
    assert {k: tuple(v.shape) for k, v in theirs.items()} == table(fmt, ARCHS[backbone])
    assert notes == []  # the published network
    back, info = from_layout(fmt, backbone, theirs)
    assert list(back) == list(state) and all(back[k] is state[k] for k in state)
    assert (info["width"], info["in_channels"], info["dropped"]) == (64, 3, {})


@pytest.mark.parametrize("fmt,backbone", PAIRS)
def test_round_trip_returns_the_same_tensors_at_other_widths(fmt, backbone):
    state = vidssl_state(backbone, 16)
    theirs, notes = to_layout(fmt, backbone, state, width=16)
    assert {k: tuple(v.shape) for k, v in theirs.items()} == table(fmt, ARCHS[backbone], 16)
    assert any("width 16" in n for n in notes)
    back, info = from_layout(fmt, backbone, theirs)
    assert info["width"] == 16 and list(back) == list(state)
    for k in state:
        assert back[k].dtype == state[k].dtype and torch.equal(back[k], state[k]), k


def test_slowfast_options_are_read_from_the_weights():
    # a 4x16-like network: fusion kernel 5; and beta 4 (Fast width w / 4)
    shapes = table("pyslowfast", "slowfast", 32, beta=4, fusion_kernel=5)
    _, info = from_layout("pyslowfast", "slowfast_r50", random_state(shapes))
    assert info["options"] == {"beta": 4, "fusion_ratio": 2, "fusion_kernel": 5}
    assert any("fusion_kernel=5" in n and "beta=4" in n and "4x16" in n for n in info["notes"])


# ----------------------------------------------------------------------------- the same function

@pytest.mark.parametrize("fmt,backbone", PAIRS)
def test_imported_network_computes_their_function(fmt, backbone):
    arch = ARCHS[backbone]
    theirs = random_state(table(fmt, arch, 16), seed=1)
    weights, _ = from_layout(fmt, backbone, theirs)
    net = build_backbone(backbone, width=16).eval()
    net.load_state_dict(weights, strict=True)
    x = clips(arch)
    with torch.no_grad():
        ours, ref = net(*x), reference_forward(theirs, fmt, arch, x)
    assert ours.shape == ref.shape == (1, 512 if arch == "slow" else 576)
    assert ref.abs().mean() > 1e-2  # not a trivially zero output
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


@pytest.mark.parametrize("fmt,backbone", PAIRS)
def test_exported_then_imported_network_gives_the_same_features(fmt, backbone):
    arch = ARCHS[backbone]
    first = build_backbone(backbone, width=8).eval()
    first.load_state_dict(vidssl_state(backbone, 8, seed=2))
    theirs, _ = to_layout(fmt, backbone, first.state_dict(), width=8)
    again = build_backbone(backbone, width=8).eval()
    again.load_state_dict(from_layout(fmt, backbone, theirs)[0], strict=True)
    x = clips(arch)
    with torch.no_grad():
        a, b, ref = first(*x), again(*x), reference_forward(theirs, fmt, arch, x)
    assert torch.equal(a, b)
    torch.testing.assert_close(a, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


# ----------------------------------------------------------------------------- their checkpoint files

def test_checkpoints_are_unwrapped_and_heads_dropped_and_reported():
    body = random_state(table("pyslowfast", "slow", 8))
    head = {"head.projection.weight": torch.zeros(400, 256), "head.projection.bias": torch.zeros(400)}
    ckpt = {"epoch": 196, "model_state": {f"module.{k}": v for k, v in {**body, **head}.items()}, "cfg": "..."}
    state, notes = unwrap("pyslowfast", ckpt)
    assert set(state) == set(body) | set(head)
    assert any("model_state" in n for n in notes) and any("module." in n for n in notes)
    _, info = from_layout("pyslowfast", "slow_r50", state)
    assert info["dropped"] == {"head.projection.weight": [400, 256], "head.projection.bias": [400]}

    mm = random_state(table("mmaction2", "slow", 8))
    mm_head = {"cls_head.fc_cls.weight": torch.zeros(400, 256), "cls_head.fc_cls.bias": torch.zeros(400)}
    state, _ = unwrap("mmaction2", {"meta": {}, "state_dict": {**mm, **mm_head}})
    assert from_layout("mmaction2", "slow_r50", state)[1]["dropped"] == {"cls_head.fc_cls.weight": [400, 256],
                                                                          "cls_head.fc_cls.bias": [400]}
    bare, notes = unwrap("mmaction2", {k[len("backbone."):]: v for k, v in mm.items()})  # model.backbone's own
    assert set(bare) == set(mm) and any("backbone.*" in n for n in notes)
    assert wrap("mmaction2", mm) == {"state_dict": mm} and wrap("pytorchvideo", mm) is mm
    assert list(wrap("pyslowfast", body)) == ["model_state"]


def test_state_dicts_without_bn_counters_import_with_a_note():
    theirs = {k: v for k, v in random_state(table("pytorchvideo", "slow", 8)).items()
              if not k.endswith("num_batches_tracked")}
    weights, info = from_layout("pytorchvideo", "slow_r50", theirs)
    assert any("num_batches_tracked missing, set to 0" in n for n in info["notes"])
    assert int(weights["stages.conv1.1.num_batches_tracked"]) == 0


# ----------------------------------------------------------------------------- what does not fit

def test_missing_unknown_and_misshapen_keys_are_named_in_one_error():
    theirs = random_state(table("pyslowfast", "slowfast", 16))
    del theirs["s3.pathway1_res0.branch1.weight"]
    theirs["s6.pathway0_res0.branch2.a.weight"] = torch.zeros(1)
    theirs["s2_fuse.conv_f2s.weight"] = torch.zeros(16, 8, 5, 1, 1)
    with pytest.raises(WeightsError) as e:
        from_layout("pyslowfast", "slowfast_r50", theirs)
    msg = str(e.value)
    assert "\n" not in msg
    assert "1 missing (s3.pathway1_res0.branch1.weight [16, 8, 1, 1, 1])" in msg
    assert "1 unknown (s6.pathway0_res0.branch2.a.weight)" in msg
    assert "s2_fuse.conv_f2s.weight [16, 8, 5, 1, 1], expected [16, 8, 7, 1, 1]" in msg
    assert "shortcut: no projection shortcut in s3.pathway1_res0." in msg


@pytest.mark.parametrize("fmt,backbone,message", [
    ("pyslowfast", "r3d18", r"'r3d18' does not convert to or from PySlowFast's layout .*convertible: "
                            r"slow_r50 <-> SLOW_8x8_R50"),
    ("pytorchvideo", "slow_r18", "'slow_r18' does not convert to or from PyTorchVideo"),
    ("mmaction2", "slowfast_r50", r"laterals? .*bare time-strided convolution.*conv -> BN -> ReLU"),
])
def test_backbones_without_a_counterpart_are_refused_with_the_reason(fmt, backbone, message):
    with pytest.raises(WeightsError, match=message):
        from_layout(fmt, backbone, {})
    with pytest.raises(WeightsError, match=message):
        to_layout(fmt, backbone, {}, width=64)


def test_a_slowfast_file_for_slow_r50_and_the_reverse_say_which_backbone():
    sf = random_state(table("pytorchvideo", "slowfast", 8))
    with pytest.raises(WeightsError, match=r"none of its keys is in this layout.*Fast pathway: a SlowFast "
                                           r"network \(--backbone slowfast_r50\)"):
        from_layout("pytorchvideo", "slow_r50", sf)
    slow = random_state(table("pyslowfast", "slow", 8))
    with pytest.raises(WeightsError, match=r"no Fast pathway in the file: a Slow-only network "
                                           r"\(--backbone slow_r50\)"):
        from_layout("pyslowfast", "slowfast_r50", slow)


def test_another_layout_is_named():
    theirs = random_state(table("pytorchvideo", "slow", 8))
    with pytest.raises(WeightsError, match=r"they look like pytorchvideo's layout \(--format pytorchvideo\)"):
        from_layout("mmaction2", "slow_r50", theirs)
    mm = random_state(table("mmaction2", "slow", 8))
    mm["backbone.slow_path.conv1_lateral.conv.weight"] = torch.zeros(16, 8, 7, 1, 1)
    with pytest.raises(WeightsError, match="MMAction2's ResNet3dSlowFast is not vidssl's SlowFast"):
        from_layout("mmaction2", "slow_r50", mm)


def test_another_stem_inflation_or_shortcut_is_named():
    # MMAction2's I3D R-50 (resnet3d.py defaults): a 5x7x7 stem and 3x1x1 conv1 in res2 / res3 blocks too
    i3d = random_state(table("mmaction2", "slow", 8))
    i3d["backbone.conv1.conv.weight"] = torch.zeros(8, 3, 5, 7, 7)
    for b in range(3):
        w = i3d[f"backbone.layer1.{b}.conv1.conv.weight"]
        i3d[f"backbone.layer1.{b}.conv1.conv.weight"] = torch.zeros(w.shape[0], w.shape[1], 3, 1, 1)
    with pytest.raises(WeightsError) as e:
        from_layout("mmaction2", "slow_r50", i3d)
    msg = str(e.value)
    assert "stem: backbone.conv1.conv.weight is a 5x7x7 convolution, vidssl's slow_r50 slow stem is 1x7x7" in msg
    assert "temporal kernels: 3 convolutions differ only in time (e.g. backbone.layer1.0.conv1.conv.weight: " \
           "3 frames, vidssl's 1)" in msg
    extra = random_state(table("pytorchvideo", "slow", 8))
    extra["blocks.2.res_blocks.1.branch1_conv.weight"] = torch.zeros(128, 128, 1, 1, 1)
    with pytest.raises(WeightsError, match=r"shortcut: a projection shortcut \(branch1_\*\) in "
                                           r"blocks.2.res_blocks.1. where vidssl's slow_r50 has the identity"):
        from_layout("pytorchvideo", "slow_r50", extra)


def test_every_layout_is_registered_with_a_table_here():
    assert set(LAYOUTS) == set(NAMES)
    assert {(f, b) for f, lay in LAYOUTS.items() for b in lay.models} == set(PAIRS)


@pytest.mark.skipif("conv5_dilation" not in __import__("vidssl.models").models.backbone_options("slow_r50"),
                    reason="no dilated conv5 option")
def test_a_dilated_conv5_exports_with_a_note():
    state = vidssl_state("slow_r50", 8)
    _, notes = to_layout("pyslowfast", "slow_r50", state, width=8, options={"conv5_dilation": 2})
    assert any("conv5_dilation=2" in n and "SPATIAL_DILATIONS" in n for n in notes)
