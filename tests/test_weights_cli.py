"""``vidssl weights import|export`` end to end: torchvision .pth / .safetensors in, a checkpoint that
``vidssl eval`` takes, and back out as torchvision's layout or safetensors."""
from __future__ import annotations

import json

import pytest
import torch

from vidssl.cli import main
from vidssl.commands import weights as command
from vidssl.engine import weights
from vidssl.engine.checkpoint import load_checkpoint
from vidssl.models import build_backbone
from vidssl.models.convert import TORCHVISION_NAMES, to_torchvision
from vidssl.models.layouts import LAYOUTS

# tiny input for the synth_dir videos (32 x 32 px, 32 frames)
TINY = ["data.num_frames=4", "data.stride=2", "data.fps=null", "data.crop_size=24", "data.test_short_side=28",
        "data.test_clips=2", "data.workers=0", "eval.batch_size=8"]


def torchvision_file(path, name="r3d18", width=4, fc=True):
    """A torchvision-layout state dict (.pth or .safetensors) of a random vidssl network, with its fc."""
    torch.manual_seed(0)
    net = build_backbone(name, width=width, stem_pool=False)
    for v in net.state_dict().values():  # every tensor distinct, not the init's ones and zeros
        if v.is_floating_point():
            v.copy_(torch.rand_like(v) + 0.5)
    tv, _ = to_torchvision(name, net.state_dict(), width=width, options={"stem_pool": False})
    if fc:
        tv = {**tv, "fc.weight": torch.zeros(400, 8 * width), "fc.bias": torch.zeros(400)}
    if path.suffix == ".safetensors":
        weights.write_safetensors(path, tv, {})
    else:
        torch.save(tv, path)
    return tv


def knn_of(ckpt, synth_dir, tmp_path) -> dict:
    """`vidssl eval knn` of an imported checkpoint on the built-in data: its JSON, checked sane."""
    result = tmp_path / "knn.json"
    assert main(["eval", "knn", "--checkpoint", str(ckpt), "--train", str(synth_dir / "train.csv"),
                 "--test", str(synth_dir / "test.csv"), "--json", str(result), "--quiet", "eval.cache=false",
                 "eval.knn_k=5"]) == 0
    metrics = json.loads(result.read_text())
    assert 0.0 <= metrics["top1"] <= 1.0 and metrics["views"] == 2
    return metrics


def test_command_constants_match_the_library():
    assert command.FORMATS == weights.FORMATS
    convertible = dict.fromkeys([*TORCHVISION_NAMES, *(b for lay in LAYOUTS.values() for b in lay.models)])
    assert command.CONVERTIBLE == tuple(convertible)


def test_import_then_eval_knn_end_to_end(synth_dir, tmp_path, capsys):
    src, ckpt = tmp_path / "r3d_18.pth", tmp_path / "imported.pt"
    tv = torchvision_file(src)
    assert main(["weights", "import", str(src), "--format", "torchvision", "--backbone", "r3d18",
                 "--out", str(ckpt), *TINY]) == 0
    out = capsys.readouterr().out
    assert "backbone r3d18 width 4 stem_pool=False" in out
    assert "dropped the classifier (fc.weight [400, 32], fc.bias [400])" in out
    c = load_checkpoint(ckpt)
    assert c["backbone"] == "r3d18" and c["method"] == "supervised" and c["config"]["model"]["width"] == 4
    assert c["config"]["data"]["augment"]["mean"] == [0.43216, 0.394666, 0.37645]  # torchvision's preset
    assert c["imported"]["dropped"] == ["fc.bias", "fc.weight"]
    assert torch.equal(c["model"]["backbone.stages.conv2.1.conv2.weight"], tv["layer1.1.conv2.0.weight"])

    metrics = knn_of(ckpt, synth_dir, tmp_path)
    assert metrics["num_test"] == len((synth_dir / "test.csv").read_text().splitlines()) - 1

    # back out: torchvision's layout without fc, the same tensors
    back = tmp_path / "back.pth"
    assert main(["weights", "export", str(ckpt), "--format", "torchvision", "--out", str(back)]) == 0
    assert "without fc" in capsys.readouterr().out
    exported = torch.load(back, weights_only=True)
    assert list(exported) == [k for k in tv if not k.startswith("fc.")]
    assert all(torch.equal(exported[k], tv[k]) for k in exported)


def test_safetensors_source_and_safetensors_round_trip(tmp_path, capsys):
    src, ckpt = tmp_path / "r2plus1d_18.safetensors", tmp_path / "a.pt"
    torchvision_file(src, "r2plus1d18", fc=False)
    assert main(["weights", "import", str(src), "--format", "torchvision", "--backbone", "r2plus1d18",
                 "--out", str(ckpt), "data.num_frames=8"]) == 0
    assert "dropped" not in capsys.readouterr().out
    st = tmp_path / "backbone.safetensors"
    assert main(["weights", "export", str(ckpt), "--format", "safetensors", "--out", str(st)]) == 0
    tensors, meta = weights.read_state_dict(st)
    first = load_checkpoint(ckpt)
    assert set(tensors) == {k[len("backbone."):] for k in first["model"]}  # vidssl's own key names
    assert meta["backbone"] == "r2plus1d18" and meta["width"] == "4"
    again = tmp_path / "b.pt"
    assert main(["weights", "import", str(st), "--format", "safetensors", "--out", str(again)]) == 0
    second = load_checkpoint(again)
    assert second["config"]["model"] == first["config"]["model"]
    assert first["config"]["data"]["num_frames"] == 8 and first["config"]["data"]["crop_size"] == 112
    assert second["config"]["data"] == first["config"]["data"]  # num_frames=8 and the preset kept
    assert list(second["model"]) == list(first["model"])
    assert all(torch.equal(second["model"][k], first["model"][k]) for k in first["model"])


def test_the_errors_a_user_meets_are_one_line(tmp_path, capsys):
    src = tmp_path / "r3d_18.pth"
    tv = torchvision_file(src)
    del tv["layer4.1.conv2.1.bias"]
    tv["stem.0.weight"] = torch.zeros(4, 3, 1, 7, 7)
    tv["extra.weight"] = torch.zeros(2)
    torch.save(tv, src)
    assert main(["weights", "import", str(src), "--format", "torchvision", "--backbone", "r3d18",
                 "--out", str(tmp_path / "x.pt")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "layer4.1.conv2.1.bias" in err and "extra.weight" in err and "stem.0.weight [4, 3, 1, 7, 7]" in err
    assert not (tmp_path / "x.pt").exists()

    # r3d18 as vidssl builds it by default (with the stem pool) is not torchvision's network
    ckpt = tmp_path / "pool.pt"
    state = {f"backbone.{k}": v for k, v in build_backbone("r3d18", width=4).state_dict().items()}
    torch.save({"format": "vidssl/1", "method": "supervised", "backbone": "r3d18",
                "config": {"model": {"backbone": "r3d18", "width": 4}}, "model": state}, ckpt)
    assert main(["weights", "export", str(ckpt), "--format", "torchvision", "--out", str(tmp_path / "p.pth")]) == 1
    assert "max pool after conv1" in capsys.readouterr().err
    assert main(["weights", "export", str(ckpt), "--format", "torchvision", "--out", str(tmp_path / "p.pth"),
                 "--allow-different-network"]) == 0
    assert "warning: not torchvision's network" in capsys.readouterr().err

    assert main(["weights", "import", str(ckpt), "--format", "torchvision", "--backbone", "r3d18",
                 "--out", str(tmp_path / "y.pt")]) == 1
    assert "already a vidssl checkpoint" in capsys.readouterr().err


def test_import_needs_a_backbone_for_torchvision(tmp_path, capsys):
    src = tmp_path / "w.pth"
    torchvision_file(src)
    assert main(["weights", "import", str(src), "--format", "torchvision", "--out", str(tmp_path / "o.pt")]) == 1
    assert "--backbone is needed" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["model.width=8", "data.modality=flow"])
def test_overrides_that_contradict_the_weights_are_refused(tmp_path, capsys, bad):
    src = tmp_path / "w.pth"
    torchvision_file(src)
    assert main(["weights", "import", str(src), "--format", "torchvision", "--backbone", "r3d18",
                 "--out", str(tmp_path / "o.pt"), bad]) == 1
    assert "width 4 on 3 input channels" in capsys.readouterr().err
