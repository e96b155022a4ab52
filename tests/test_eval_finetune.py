"""Fine-tuning: frozen stages, the subsets it trains and validates on, the lr schedules,
early stopping, and the CLI end to end on a tiny built-in dataset."""
import json

import numpy as np
import pytest
import torch

from vidssl.cli import main
from vidssl.eval import finetune
from vidssl.eval.finetune import FinetuneNet, finetune_subsets, stage_modules, step_lr
from vidssl.models import build_backbone

TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
        "data.augment.short_side=[28, 32]", "data.workers=0", "data.test_clips=2", "train.progress=false",
        "eval.batch_size=8", "eval.cache=false", "eval.finetune_batch_size=8"]


def _batch(n=4, size=16, frames=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"clips": torch.randn(n, 1, 3, frames, size, size, generator=g), "label": torch.arange(n) % 2}


@pytest.mark.parametrize("freeze", [0, 2, 5])
def test_frozen_stages_get_no_gradient_and_keep_their_bn_statistics(freeze):
    torch.manual_seed(0)
    net = FinetuneNet(build_backbone("r3d18", width=4), num_classes=2, dropout=0.5, freeze_stages=freeze)
    names = net.backbone.stage_names
    assert net.frozen_stages == names[:freeze]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5, momentum=0.9)
    loss = finetune.train_one_epoch(net, [_batch(), _batch(seed=1)], opt, torch.device("cpu"), False, "t")
    assert np.isfinite(loss)
    # one more backward to look at the gradients themselves
    net.train()
    torch.nn.functional.cross_entropy(net(_batch()["clips"][:, 0]), _batch()["label"]).backward()
    after = net.state_dict()
    for i, name in enumerate(names):
        stage = net.backbone.stages[name]
        params = list(stage.named_parameters())
        assert params
        if i < freeze:
            assert all(p.grad is None and not p.requires_grad for _, p in params), name
            assert not stage.training  # eval mode: BN uses and keeps its running statistics
            for k in after:  # weights and BN buffers bit-identical
                if k.startswith(f"backbone.stages.{name}."):
                    assert torch.equal(after[k], before[k]), k
        else:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in params), name
            assert stage.training
            changed = [k for k in after if k.startswith(f"backbone.stages.{name}.") and k.endswith("running_mean")]
            assert any(not torch.equal(after[k], before[k]) for k in changed), name
    assert net.classifier.weight.grad is not None and net.classifier.weight.grad.abs().sum() > 0


def test_stage_modules_cover_every_backbone_family():
    sf = build_backbone("slowfast_r18", width=8, beta=8)
    mods = stage_modules(sf, "conv2")
    assert mods[0] is sf.slow["conv2"] and mods[1] is sf.fast["conv2"] and mods[2] is sf.lateral["conv2"]
    assert len(stage_modules(sf, "conv5")) == 2  # no lateral out of the last stage
    trn = build_backbone("trn", width=4, segments=2)
    assert stage_modules(trn, "conv1") == [trn.cnn.stages["conv1"]]
    net = FinetuneNet(trn, 3, freeze_stages=2)
    assert not any(p.requires_grad for p in trn.cnn.stages["conv2"].parameters())
    assert all(p.requires_grad for p in trn.relations.parameters())
    with pytest.raises(ValueError, match="finetune_freeze_stages"):
        FinetuneNet(build_backbone("r3d18", width=4), 2, freeze_stages=6)
    assert net.frozen_stages == ["conv1", "conv2"]


def test_finetune_subsets_are_disjoint_training_videos_of_the_right_size():
    labels = np.array([0] * 40 + [1] * 20 + [2] * 10)
    tr, va = finetune_subsets(labels, 1.0, 0.1, seed=0)
    assert set(tr.tolist()).isdisjoint(va.tolist()) and len(tr) + len(va) == 70
    assert np.bincount(labels[va]).tolist() == [4, 2, 1]
    tr, va = finetune_subsets(labels, 0.5, 0.1, seed=0)  # half the labels: 20, 10, 5, then validation from those
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert np.bincount(labels[np.concatenate([tr, va])]).tolist() == [20, 10, 5]
    assert np.bincount(labels[va], minlength=3).tolist() == [2, 1, 0]  # round(0.5) = 0 (banker's): class 2 keeps all 5
    again = finetune_subsets(labels, 0.5, 0.1, seed=0)
    assert np.array_equal(again[0], tr) and np.array_equal(again[1], va)


def test_step_schedule_by_hand():
    # App. B.6: 0.025, x 0.1 at epochs 60, 120, 180
    ms = [60, 120, 180]
    assert step_lr(0.025, 0, ms, 0.1) == pytest.approx(0.025)
    assert step_lr(0.025, 59, ms, 0.1) == pytest.approx(0.025)
    assert step_lr(0.025, 60, ms, 0.1) == pytest.approx(0.0025)
    assert step_lr(0.025, 150, ms, 0.1) == pytest.approx(0.00025)
    assert step_lr(0.025, 199, ms, 0.1) == pytest.approx(0.000025)


def _scripted_run(monkeypatch, synth_dir, val_accs, overrides):
    """Run finetune.evaluate with training replaced by a no-op and the validation accuracy scripted."""
    from vidssl.eval.features import make_context

    ctx = make_context("random", str(synth_dir / "train.csv"), str(synth_dir / "test.csv"), TINY + overrides,
                       progress=False, recipe="supervised_tiny")
    lrs, script = [], iter(val_accs)

    def fake_train(model, loader, optimizer, device, progress, desc):
        lrs.append(optimizer.param_groups[0]["lr"])
        return 1.0

    def fake_predict(model, dataset, ctx_, desc):
        n, k = len(dataset), ctx_.num_classes()
        labels = torch.as_tensor(dataset.manifest.labels)
        if desc == "validation":  # the first round(acc * n) videos right, the rest wrong
            right = torch.arange(n) < round(next(script) * n)
            pred = torch.where(right, labels, (labels + 1) % k)
        else:
            pred = labels
        return torch.nn.functional.one_hot(pred, k).float()[:, None]  # [N, 1, K]

    monkeypatch.setattr(finetune, "train_one_epoch", fake_train)
    monkeypatch.setattr(finetune, "predict", fake_predict)
    return finetune.evaluate(ctx), lrs


def test_early_stopping_keeps_the_best_validation_epoch(monkeypatch, synth_dir):
    # 22 training videos, 8 classes: validation 0.5 -> some classes give 1 video each
    out, lrs = _scripted_run(monkeypatch, synth_dir, [0.2, 0.6, 0.4, 0.4, 0.8],
                             ["eval.finetune_epochs=20", "eval.finetune_stop_patience=2",
                              "eval.finetune_val_fraction=0.5", "eval.finetune_milestones=[1]"])
    assert out["epochs_run"] == 4 and out["best_epoch"] == 2  # no gain in epochs 3 and 4: stop
    assert out["num_val"] > 0 and out["num_finetune_train"] + out["num_val"] == 22
    assert out["top1"] == 1.0 and out["views"] == 1
    assert lrs == pytest.approx([0.025, 0.0025, 0.0025, 0.0025])  # step schedule, milestone at epoch 1


def test_plateau_schedule_drops_when_validation_stalls(monkeypatch, synth_dir):
    out, lrs = _scripted_run(monkeypatch, synth_dir, [0.5, 0.5, 0.5, 0.5, 0.5],
                             ["eval.finetune_epochs=5", "eval.finetune_schedule=plateau", "eval.finetune_lr=0.1",
                              "eval.finetune_lr_patience=1", "eval.finetune_stop_patience=null",
                              "eval.finetune_val_fraction=0.5"])
    assert out["epochs_run"] == 5
    # ReduceLROnPlateau(patience=1): epoch 1 sets the best, epoch 2 is the first bad one, epoch 3 the second
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01])


def test_finetune_cli_end_to_end(synth_dir, tmp_path):
    out_json = tmp_path / "ft.json"
    code = main(["eval", "finetune", "--checkpoint", "random", "--config", "supervised_tiny",
                 "--train", str(synth_dir / "train.csv"), "--test", str(synth_dir / "test.csv"),
                 "--json", str(out_json), "--quiet", *TINY, "eval.finetune_epochs=2",
                 "eval.finetune_val_fraction=0.2", "eval.finetune_freeze_stages=2"])
    assert code == 0
    m = json.loads(out_json.read_text())
    assert m["protocol"] == "finetune" and m["views"] == 2  # data.test_clips=2, one crop
    assert 0.0 <= m["clip_top1"] <= 1.0 and 0.0 <= m["video_top1"] <= 1.0 and m["top1"] == m["video_top1"]
    assert m["epochs_run"] == 2 and m["frozen_stages"] == "conv1,conv2"
    assert m["num_finetune_train"] + m["num_val"] == m["num_train"] and m["num_val"] >= 1


def test_finetune_on_a_label_fraction_without_validation(synth_dir, tmp_path):
    out_json = tmp_path / "ft.json"
    code = main(["eval", "finetune", "--checkpoint", "random", "--config", "supervised_tiny",
                 "--train", str(synth_dir / "train.csv"), "--test", str(synth_dir / "test.csv"),
                 "--json", str(out_json), "--quiet", *TINY, "eval.finetune_epochs=1", "eval.label_fraction=0.05",
                 "eval.views=1x1"])
    assert code == 0
    m = json.loads(out_json.read_text())
    # 5 % of 2-3 videos per class rounds to the minimum of one video per class; none left to validate
    classes = len({line.split(",")[1] for line in (synth_dir / "train.csv").read_text().splitlines()[1:]})
    assert m["num_finetune_train"] == classes and m["num_val"] == 0 and m["val_top1"] is None
    assert m["views"] == 1 and m["label_fraction"] == 0.05


def test_plateau_without_validation_is_a_config_error(synth_dir, capsys):
    code = main(["eval", "finetune", "--checkpoint", "random", "--config", "supervised_tiny",
                 "--train", str(synth_dir / "train.csv"), "--test", str(synth_dir / "test.csv"), "--quiet", *TINY,
                 "eval.finetune_schedule=plateau", "eval.finetune_val_fraction=0"])
    assert code == 2 and "finetune_val_fraction" in capsys.readouterr().err
