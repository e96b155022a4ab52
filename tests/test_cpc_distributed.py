"""Video CPC in 2 CPU processes (gloo): with the global batch split, the candidates gathered
with gradient give the 1-process loss and, averaged as DDP does, the 1-process gradient.
The model has no BatchNorm (per-process statistics would differ by design)."""
import json
import socket

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
    dist.cleanup()


def test_two_process_cpc_matches_one_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(port, str(tmp_path)), nprocs=WORLD, join=True, start_method="fork")
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
