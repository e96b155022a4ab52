"""Video CPC in 2 CPU processes (gloo): with the global batch split, the candidates gathered
with gradient give the 1-process loss and, averaged as DDP does, the 1-process gradient;
and the trainer (DDP, the distributed sampler, checkpoints) run on 2 processes gives the
1-process weights and losses. The model has no BatchNorm (per-process statistics would
differ by design)."""
import json
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from vidssl import distributed as dist
from vidssl.methods.cpc import CPC, CPCConfig

WORLD, B, T = 2, 4, 5


class NoBNEncoder(nn.Module):
    """[N, C, F, H, W] -> pooled [N, 6] and a conv5 map [N, 6, 1, 4, 4]."""

    stage_names = ["conv5"]
    feat_dim = 6

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2 * 3, 6, 3, stride=2, padding=1)

    def forward(self, x, return_stages=False):
        n, c, f, h, w = x.shape
        y = torch.tanh(self.conv(x.reshape(n, c * f, h, w))).unsqueeze(2)
        pooled = y.mean(dim=(2, 3, 4))
        return (pooled, {"conv5": y}) if return_stages else pooled


def _model():
    torch.manual_seed(0)
    return CPC(CPCConfig(segments=T, context="lstm", context_layers=1), NoBNEncoder(), num_samples=8, num_classes=0)


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(B * WORLD, T, 2, 3, 8, 8, generator=g)


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


class SegmentClips:
    """``n`` videos of T random segments [T, C = 2, F = 3, 8, 8], seeded like VideoDataset."""

    def __init__(self, n=16):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, key):
        index, seed = key
        clips = np.random.default_rng([seed, index]).standard_normal((T, 2, 3, 8, 8)).astype(np.float32)
        return {"clips": (torch.from_numpy(clips),), "index": index, "label": -1, "bad_paths": []}


def _train_cfg():
    from vidssl.config import load_config

    items = {"method.name": "cpc", "method.segments": T, "method.context": "lstm", "method.context_layers": 1,
             "data.views": T, "data.batch_size": 8, "data.workers": 0, "train.epochs": 2, "train.log_every": 1,
             "train.progress": False, "optim.lr": 0.05, "optim.warmup_epochs": 0, "train.checkpoint_every_steps": 2}
    return load_config(None, [f"{k}={v}" for k, v in items.items()])


def _train(out_dir):
    from vidssl.engine.trainer import train

    return train(_train_cfg(), out_dir, dataset=SegmentClips(), method=_model())


def _worker(rank, port, out):
    import os

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    dist.init_distributed()
    model = _model()
    clips = _batch()[rank * B:(rank + 1) * B]
    loss = model({"clips": (clips,), "index": torch.arange(B), "label": torch.full((B,), -1)})["loss"]
    loss.backward()
    grads = {n: dist.all_reduce_mean(g).tolist() for n, g in _grads(model).items()}  # what DDP does
    losses = dist.all_gather(loss.detach().view(1)).tolist()
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"losses": losses, "grads": grads}, f)
    _train(f"{out}/run")
    dist.cleanup()


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cpc_ddp")
    import torch.utils.tensorboard  # noqa: F401 - slow first imports before the fork

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(port, str(out)), nprocs=WORLD, join=True, start_method="fork")
    return out


def test_two_process_cpc_matches_one_process(two_process_run):
    tmp_path = two_process_run
    model = _model()
    loss = model({"clips": (_batch(),), "index": torch.arange(B * WORLD), "label": torch.full((B * WORLD,), -1)})["loss"]
    loss.backward()
    ref = _grads(model)
    for r in range(WORLD):
        out = json.loads((tmp_path / f"rank{r}.json").read_text())
        # the mean over processes of the per-process means is the global mean (equal shares)
        assert abs(sum(torch.tensor(out["losses"]).flatten().tolist()) / WORLD - loss.item()) < 1e-5
        assert set(out["grads"]) == set(ref)
        for n, g in out["grads"].items():
            torch.testing.assert_close(torch.tensor(g), ref[n], rtol=1e-4, atol=1e-6, msg=n)


def test_two_process_cpc_training_matches_one_process(two_process_run, tmp_path):
    from vidssl.engine.checkpoint import load_checkpoint

    single = _train(tmp_path / "single")
    a = load_checkpoint(single / "checkpoints" / "last.pt")
    b = load_checkpoint(two_process_run / "run" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 4
    moved = 0
    for k, v in a["model"].items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            torch.testing.assert_close(v, b["model"][k], rtol=1e-4, atol=1e-5, msg=k)
            moved += int(not torch.equal(v, _model().state_dict()[k]))
    assert moved > 0  # training changed the weights

    def rows(run):
        return [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]

    la, lb = ([r["loss"] for r in rows(d) if "loss" in r] for d in (single, two_process_run / "run"))
    assert la == pytest.approx(lb, abs=1e-4) and len(la) == 4
    assert all("acc_k1" in r for r in rows(single) if "loss" in r)
