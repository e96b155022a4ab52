"""Multi-label classification (Charades-style, large-scale study App. B.4): the BCE linear
probe, max-over-views pooling, the supervised method's sigmoid loss and scores, the protocols
that refuse label sets, and ``vidssl eval linear`` / ``finetune`` end to end from the CLI."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidssl.cli import main
from vidssl.config import EvalConfig
from vidssl.data.label_groups import write_multilabel_manifest
from vidssl.errors import ConfigError
from vidssl.eval.linear import multilabel_probe_metrics
from vidssl.eval.map import mean_average_precision
from vidssl.eval.multilabel import max_over_views, multilabel_metrics
from vidssl.methods.supervised import Supervised, SupervisedConfig
from vidssl.models import build_backbone

TINY = ["model.width=4", "data.num_frames=4", "data.crop_size=24", "data.test_short_side=28",
        "data.augment.short_side=[28, 32]", "data.batch_size=4", "data.workers=0", "data.test_clips=2",
        "train.progress=false", "eval.batch_size=8", "eval.cache=false", "eval.linear_epochs=5",
        "eval.finetune_epochs=1", "eval.finetune_batch_size=4"]


@pytest.fixture(scope="module")
def multilabel_dir(synth_dir, tmp_path_factory):
    """The built-in data with two label groups per video: {motion class, scene}."""
    out = tmp_path_factory.mktemp("multilabel")
    for split in ("train", "test"):
        write_multilabel_manifest(synth_dir / f"{split}.csv", out / f"{split}.csv")
    return out


def test_bce_probe_learns_separable_features():
    g = torch.Generator().manual_seed(0)
    k, d = 5, 16
    proto = torch.randn(k, d, generator=g) * 3

    def split(n):
        targets = (torch.rand(n, k, generator=g) < 0.4).float()
        feats = targets @ proto + 0.3 * torch.randn(n, 3, d, generator=g).permute(1, 0, 2)  # [3 views, n, d]
        return feats.permute(1, 0, 2), targets  # [n, 3, d]

    train_f, train_t = split(200)
    test_f, test_t = split(80)
    out = multilabel_probe_metrics(train_f, train_t, test_f, test_t, EvalConfig(linear_epochs=30), seed=0)
    assert out["mAP"] > 0.97 and out["classes_scored"] == k and out["num_classes"] == k and out["views"] == 3
    assert "top1" not in out


def test_video_scores_are_the_maximum_over_the_views():
    scores = torch.tensor([[[0.1, 0.9], [0.7, 0.2]],   # video 0: views 0, 1
                           [[0.3, 0.4], [0.2, 0.6]],
                           [[0.8, 0.1], [0.5, 0.05]]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    hand = torch.tensor([[0.7, 0.9], [0.3, 0.6], [0.8, 0.1]])
    assert torch.equal(max_over_views(scores), hand)
    out = multilabel_metrics(scores, targets)
    # class 0: videos ranked 2 (0.8, +), 0 (0.7, +), 1 (0.3, -) -> AP 1; class 1: 0 (0.9, -), 1 (0.6, +) -> 1/2
    assert out["mAP"] == pytest.approx(0.75) and out["classes_scored"] == 2
    assert out["clip_mAP"] == pytest.approx(mean_average_precision(scores.flatten(0, 1),
                                                                   targets.repeat_interleave(2, 0))[0])
    with pytest.raises(ConfigError, match="no positive label"):
        multilabel_metrics(scores, torch.zeros(3, 2))


def test_supervised_multi_label_loss_and_scores_by_hand():
    torch.manual_seed(0)
    net = Supervised(SupervisedConfig(dropout=0.0, multi_label=True), build_backbone("r3d18", width=4),
                     num_samples=2, num_classes=3).eval()
    clips = torch.randn(2, 2, 3, 4, 16, 16)  # [B, V, C, T, H, W]
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    batch = {"clips": (clips,), "label": torch.tensor([-1, -1]), "multi_hot": targets}
    logits = net.logits((clips.flatten(0, 1),))  # [4, 3], video-major
    out = net(batch)
    assert out["loss"].item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, targets.repeat_interleave(2, 0)).item(), rel=1e-5)
    want = logits.sigmoid().view(2, 2, 3).max(1).values
    torch.testing.assert_close(net.predict(batch), want)
    with pytest.raises(ConfigError, match="multi_label=true"):
        Supervised(SupervisedConfig(), build_backbone("r3d18", width=4), num_samples=2, num_classes=3)(batch)
    with pytest.raises(ConfigError, match="needs a multi-label training manifest"):
        net({"clips": (clips,), "label": torch.tensor([0, 1])})


@pytest.mark.parametrize("protocol", ["knn", "fewshot", "retrieval"])
def test_single_label_protocols_refuse_label_sets(multilabel_dir, capsys, protocol):
    code = main(["eval", protocol, "--checkpoint", "random", "--config", "supervised_tiny",
                 "--train", str(multilabel_dir / "train.csv"), "--test", str(multilabel_dir / "test.csv"),
                 "--quiet", *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"eval {protocol} needs one label per video" in err and "multi-label" in err


def _run(protocol, multilabel_dir, tmp_path, extra=()):
    out_json = tmp_path / f"{protocol}.json"
    code = main(["eval", protocol, "--checkpoint", "random", "--config", "supervised_tiny",
                 "--train", str(multilabel_dir / "train.csv"), "--test", str(multilabel_dir / "test.csv"),
                 "--json", str(out_json), "--quiet", *TINY, f"eval.out_dir={tmp_path}", *extra])
    assert code == 0
    return json.loads(out_json.read_text())


def test_linear_probe_cli_on_a_multi_label_manifest(multilabel_dir, tmp_path):
    m = _run("linear", multilabel_dir, tmp_path)
    assert 0.0 <= m["mAP"] <= 1.0 and 0.0 <= m["clip_mAP"] <= 1.0
    assert 1 <= m["classes_scored"] <= m["num_classes"] and m["views"] == 2
    assert not {"top1", "top5", "clip_top1"} & set(m)


def test_finetune_cli_on_a_multi_label_manifest_with_doubled_clips(multilabel_dir, tmp_path):
    m = _run("finetune", multilabel_dir, tmp_path, ["eval.finetune_clip_scale=2"])
    assert 0.0 <= m["mAP"] <= 1.0 and m["classes_scored"] >= 1 and m["views"] == 2
    assert m["clip_frames"] == 8 and m["num_val"] == 0 and m["epochs_run"] == 1
    assert not {"top1", "val_top1"} & set(m)


def test_the_exported_label_table_keeps_label_sets():
    from vidssl.data.manifests import Manifest
    from vidssl.eval.export import label_table

    m = Manifest(["/a.mp4", "/b.mp4"], [-1, -1], ["drink", "sit"], {"scene": ["x", "y"]}, label_column="labels",
                 label_sets=[[0, 1], []])
    assert label_table(m, [True, False]).splitlines() == [
        "path,label,decoded,labels,scene", "/a.mp4,,1,drink;sit,x", "/b.mp4,,0,,y"]


def test_compare_refuses_label_sets(multilabel_dir, tmp_path, capsys):
    code = main(["compare", "random:supervised_tiny", "--train", str(multilabel_dir / "train.csv"),
                 "--test", str(multilabel_dir / "test.csv"), "--out", str(tmp_path / "report"), "--evals", "linear",
                 *TINY])
    assert code == 2 and "is multi-label" in capsys.readouterr().err
