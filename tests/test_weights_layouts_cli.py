"""``vidssl weights import|export`` with PySlowFast, PyTorchVideo and MMAction2 checkpoints, end to end.

The source files are made the way those libraries save them (PySlowFast: ``{"model_state": ...}``
from DDP with ``module.`` keys and the head; PyTorchVideo: a plain state dict with ``blocks.5.proj``;
MMAction2: ``{"meta", "state_dict": {"backbone.*", "cls_head.*"}}``); their keys come from the
tables of tests/test_weights_layouts.py, written from those libraries' definitions.
"""
from __future__ import annotations

import pytest
import torch

from test_weights_cli import knn_of
from test_weights_layouts import ARCHS, random_state, table
from vidssl.cli import main
from vidssl.engine import weights
from vidssl.engine.checkpoint import load_checkpoint
from vidssl.models import build_backbone

# tiny input for the synth_dir videos (32 x 32 px, 32 frames)
TINY = ["data.num_frames=4", "data.stride=2", "data.fps=null", "data.crop_size=24", "data.test_short_side=28",
        "data.test_clips=2", "data.test_crops=1", "data.workers=0", "eval.batch_size=8"]
HEAD = {("pyslowfast", "slow"): ("head.projection", 400), ("pyslowfast", "slowfast"): ("head.projection", 400),
        ("pytorchvideo", "slow"): ("blocks.5.proj", 400), ("pytorchvideo", "slowfast"): ("blocks.6.proj", 400),
        ("mmaction2", "slow"): ("cls_head.fc_cls", 400)}
FORMAT_PAIRS = [("pyslowfast", "slow_r50"), ("pyslowfast", "slowfast_r50"), ("pytorchvideo", "slow_r50"),
                ("pytorchvideo", "slowfast_r50"), ("mmaction2", "slow_r50")]


def their_file(path, fmt: str, backbone: str, width: int = 8, seed: int = 0, edit=None) -> dict:
    """Write a checkpoint as ``fmt``'s library saves it; returns its backbone tensors (their keys)."""
    arch = ARCHS[backbone]
    body = random_state(table(fmt, arch, width), seed)
    if edit:
        edit(body)
    head, classes = HEAD[(fmt, arch)]
    feat = (32 * width + (4 * width if arch == "slowfast" else 0))
    full = {**body, f"{head}.weight": torch.zeros(classes, feat), f"{head}.bias": torch.zeros(classes)}
    if fmt == "pyslowfast":
        obj = {"epoch": 196, "model_state": {f"module.{k}": v for k, v in full.items()}, "cfg": "MODEL: ..."}
    elif fmt == "mmaction2":
        obj = {"meta": {"epoch": 256}, "state_dict": full}
    else:
        obj = full
    torch.save(obj, path)
    return body


def test_pyslowfast_checkpoint_imports_and_evaluates_with_knn(synth_dir, tmp_path, capsys):
    src, ckpt = tmp_path / "SLOW_8x8_R50.pyth", tmp_path / "imported.pt"
    body = their_file(src, "pyslowfast", "slow_r50", width=4)
    assert main(["weights", "import", str(src), "--format", "pyslowfast", "--out", str(ckpt), *TINY]) == 0
    out = capsys.readouterr().out
    assert "read: weights read from the checkpoint's 'model_state'" in out
    assert "read: 'module.' (DistributedDataParallel) taken off every key" in out
    assert "backbone slow_r50 width 4" in out  # read from the keys: no --backbone needed
    assert "dropped the classifier (head.projection.weight [400, 128], head.projection.bias [400])" in out
    c = load_checkpoint(ckpt)
    assert c["backbone"] == "slow_r50" and c["config"]["model"]["width"] == 4
    assert c["config"]["data"]["augment"]["mean"] == [0.45, 0.45, 0.45]  # PySlowFast's Kinetics preprocessing
    assert c["imported"] == {"source": str(src), "format": "pyslowfast",
                             "dropped": ["head.projection.bias", "head.projection.weight"]}
    assert torch.equal(c["model"]["backbone.stages.conv4.2.conv1.weight"], body["s4.pathway0_res2.branch2.a.weight"])

    knn_of(ckpt, synth_dir, tmp_path)


@pytest.mark.parametrize("fmt,backbone", FORMAT_PAIRS)
def test_import_then_export_returns_the_same_tensors(tmp_path, capsys, fmt, backbone):
    src, ckpt, back = tmp_path / "src.pth", tmp_path / "c.pt", tmp_path / "back.pth"
    body = their_file(src, fmt, backbone)
    assert main(["weights", "import", str(src), "--format", fmt, "--backbone", backbone, "--out", str(ckpt)]) == 0
    assert main(["weights", "export", str(ckpt), "--format", fmt, "--out", str(back)]) == 0
    assert "without" in capsys.readouterr().out  # no head
    exported = torch.load(back, weights_only=True)
    exported = {"pyslowfast": lambda o: o["model_state"], "mmaction2": lambda o: o["state_dict"]}.get(
        fmt, lambda o: o)(exported)
    assert set(exported) == set(body)
    assert all(torch.equal(exported[k], body[k]) for k in body)
    data = load_checkpoint(ckpt)["config"]["data"]
    assert (data["sampler"] == "two_rate") == (backbone == "slowfast_r50")
    assert (data["num_frames"], data["stride"], data["test_clips"], data["test_crops"]) == (8, 8, 10, 3)


def test_a_vidssl_run_exports_to_every_layout_and_back(tmp_path):
    # a checkpoint as training writes it (the supervised method's keys), exported and read back
    net = build_backbone("slowfast_r50", width=8)
    for v in net.state_dict().values():
        if v.is_floating_point():
            v.copy_(torch.rand_like(v) + 0.5)
    ckpt = tmp_path / "run.pt"
    torch.save({"format": "vidssl/1", "method": "supervised", "backbone": "slowfast_r50",
                "config": {"model": {"backbone": "slowfast_r50", "width": 8},
                           "data": {"sampler": "two_rate", "fast_alpha": 4}},
                "model": {f"backbone.{k}": v for k, v in net.state_dict().items()}}, ckpt)
    for fmt in ("pyslowfast", "pytorchvideo"):
        out, again = tmp_path / f"{fmt}.pth", tmp_path / f"{fmt}.pt"
        assert weights.export_weights(ckpt, fmt, out)["tensors"] == len(net.state_dict())
        weights.import_weights(out, fmt, again)
        model = load_checkpoint(again)["model"]
        assert all(torch.equal(model[f"backbone.{k}"], v) for k, v in net.state_dict().items())


def test_what_does_not_fit_is_one_line_listing_it(tmp_path, capsys):
    def edit(sd):
        del sd["backbone.layer2.0.downsample.bn.weight"]
        sd["backbone.layer5.0.conv1.conv.weight"] = torch.zeros(2)
        sd["backbone.layer3.1.conv2.conv.weight"] = torch.zeros(32, 32, 3, 3, 3)

    src = tmp_path / "slowonly.pth"
    their_file(src, "mmaction2", "slow_r50", edit=edit)
    assert main(["weights", "import", str(src), "--format", "mmaction2", "--out", str(tmp_path / "x.pt")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "1 missing (backbone.layer2.0.downsample.bn.weight [64])" in err
    assert "1 unknown (backbone.layer5.0.conv1.conv.weight)" in err
    assert "backbone.layer3.1.conv2.conv.weight [32, 32, 3, 3, 3], expected [32, 32, 1, 3, 3]" in err
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("args,message", [
    (["--format", "pyslowfast", "--backbone", "r3d18"], "'r3d18' does not convert to or from PySlowFast's layout"),
    (["--format", "mmaction2", "--backbone", "slowfast_r50"], "ResNet3dSlowFast is not vidssl's SlowFast"),
    (["--format", "pytorchvideo", "--backbone", "slowfast_r50"],
     r"no Fast pathway in the file: a Slow-only network (--backbone slow_r50)"),
    (["--format", "torchvision", "--backbone", "r3d18"], "they look like pyslowfast's layout (--format pyslowfast)"),
])
def test_a_wrong_backbone_or_format_is_named(tmp_path, capsys, args, message):
    src = tmp_path / "slow.pth"
    fmt = "pytorchvideo" if "pytorchvideo" in args else "pyslowfast"
    their_file(src, fmt, "slow_r50")
    if "torchvision" in args:  # a PySlowFast state dict given as torchvision's
        torch.save(torch.load(src, weights_only=True)["model_state"], src)
    assert main(["weights", "import", str(src), *args, "--out", str(tmp_path / "o.pt")]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bad_format_and_backbone_names_are_usage_errors(tmp_path, capsys):
    src = tmp_path / "slow.pth"
    their_file(src, "pyslowfast", "slow_r50")
    assert main(["weights", "import", str(src), "--format", "slowfast", "--out", str(tmp_path / "o.pt")]) == 2
    assert "invalid choice: 'slowfast'" in capsys.readouterr().err
    assert main(["weights", "import", str(src), "--format", "pyslowfast", "--backbone", "x3d",
                 "--out", str(tmp_path / "o.pt")]) == 2


def test_export_of_a_backbone_without_a_counterpart_is_refused(tmp_path, capsys):
    ckpt = tmp_path / "r3d.pt"
    state = {f"backbone.{k}": v for k, v in build_backbone("r3d18", width=4).state_dict().items()}
    torch.save({"format": "vidssl/1", "method": "supervised", "backbone": "r3d18",
                "config": {"model": {"backbone": "r3d18", "width": 4}}, "model": state}, ckpt)
    assert main(["weights", "export", str(ckpt), "--format", "pytorchvideo", "--out", str(tmp_path / "p.pth")]) == 1
    assert "'r3d18' does not convert to or from PyTorchVideo's layout" in capsys.readouterr().err
    assert not (tmp_path / "p.pth").exists()


def test_slowfast_options_and_overrides_must_agree(tmp_path, capsys):
    src = tmp_path / "SLOWFAST_4x16_R50.pyth"
    their_file(src, "pyslowfast", "slowfast_r50", width=16)
    out = tmp_path / "sf.pt"
    assert main(["weights", "import", str(src), "--format", "pyslowfast", "--out", str(out),
                 "model.options.alpha=8"]) == 1
    assert "model.options.alpha=8 needs data.fast_alpha=8" in capsys.readouterr().err
    assert main(["weights", "import", str(src), "--format", "pyslowfast", "--out", str(out),
                 "model.options.fusion_kernel=5"]) == 1
    assert "fusion_kernel=7 in the weights, 5 asked" in capsys.readouterr().err
    assert main(["weights", "import", str(src), "--format", "pyslowfast", "--out", str(out),
                 "model.options.alpha=8", "data.fast_alpha=8"]) == 0
    assert "alpha=8" in capsys.readouterr().err  # the note: not the 8x8 setting
    c = load_checkpoint(out)["config"]
    assert c["model"]["options"] == {"beta": 8, "fusion_ratio": 2, "fusion_kernel": 7, "alpha": 8}
    assert (c["data"]["sampler"], c["data"]["fast_alpha"]) == ("two_rate", 8)


class MessageHub:  # stands for the Python objects a training checkpoint pickles beside its tensors
    pass


def test_a_checkpoint_pickling_other_objects_is_refused_with_the_way_out(tmp_path, capsys):
    src = tmp_path / "epoch_256.pth"
    body = random_state(table("mmaction2", "slow", 8))
    torch.save({"meta": {"hub": MessageHub()}, "state_dict": body}, src)
    assert main(["weights", "import", str(src), "--format", "mmaction2", "--out", str(tmp_path / "o.pt")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read" in err
    assert "save its state dict alone where you trust the file" in err and "['state_dict']" in err
