"""The linear probe on augmented clips (App. B.2): every stage frozen (weights and BN
statistics), only the classifier learns, the trained model is a linear map of the pooled
features, and ``vidssl eval linear_clips`` runs end to end and resumes from its run folder."""
import json

import pytest
import torch

from test_eval_finetune import TINY, _batch, _net
from vidssl.cli import main
from vidssl.errors import ConfigError
from vidssl.models import build_backbone


@pytest.mark.parametrize("backbone", ["r3d18", "resnet2d18"])
def test_every_stage_frozen_only_the_classifier_learns(backbone):
    torch.manual_seed(0)
    net = _net(build_backbone(backbone, width=4), dropout=0.0, freeze_stages=-1, feature_bn=True)
    assert net.frozen_stages == list(net.backbone.stage_names)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.weight", "classifier.bias"]
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5, momentum=0.9)
    net.train()
    for seed in range(3):
        loss = net(_batch(seed=seed))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = net.state_dict()
    for k in after:
        if k.startswith("backbone."):
            assert torch.equal(after[k], before[k]), k  # weights and BN buffers of the encoder untouched
    assert not torch.equal(after["classifier.weight"], before["classifier.weight"])


def test_the_trained_probe_is_a_standardised_linear_map_of_the_features():
    torch.manual_seed(1)
    net = _net(build_backbone("r3d18", width=4), dropout=0.0, freeze_stages=-1, feature_bn=True)
    net.train()
    for seed in range(4):  # fills the feature BatchNorm's running statistics
        net(_batch(n=6, seed=seed))
    net.eval()
    clips = _batch(n=5, seed=9)["clips"][0][:, 0]
    with torch.no_grad():
        feats = net.backbone(clips)  # [5, D]
        bn = net.feature_bn
        reference = ((feats - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)) @ net.classifier.weight.T \
            + net.classifier.bias
        torch.testing.assert_close(net.logits((clips,)), reference, rtol=1e-5, atol=1e-5)


def test_bad_clip_probe_settings_are_named():
    from vidssl.config import load_config

    with pytest.raises(ConfigError, match="linear_clips_warmup_epochs"):
        load_config(None, ["eval.linear_clips_epochs=4", "eval.linear_clips_warmup_epochs=4"])
    with pytest.raises(ConfigError, match="linear_clips_lr"):
        load_config(None, ["eval.linear_clips_lr=0"])


def test_linear_clips_cli_end_to_end_and_resume(synth_dir, tmp_path):
    out_json = tmp_path / "lc.json"
    args = ["eval", "linear_clips", "--checkpoint", "random", "--config", "supervised_tiny",
            "--train", str(synth_dir / "train.csv"), "--test", str(synth_dir / "test.csv"),
            "--json", str(out_json), "--quiet", *TINY, f"eval.out_dir={tmp_path}", "eval.linear_clips_epochs=2",
            "eval.linear_clips_warmup_epochs=1", "eval.linear_clips_lr=0.5", "eval.linear_clips_batch_size=8"]
    assert main(args) == 0
    m = json.loads(out_json.read_text())
    assert m["protocol"] == "linear_clips" and m["epochs_run"] == 2 and m["views"] == 2
    assert m["frozen_stages"] == "conv1,conv2,conv3,conv4,conv5" and 0.0 <= m["top1"] <= 1.0
    assert "linear_clips_" in m["run_dir"]
    first = m["top1"]
    assert main(args) == 0  # the finished run is found again: same figures, no training
    assert json.loads(out_json.read_text())["top1"] == first
