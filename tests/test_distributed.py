"""DDP helpers and the trainer in 2 CPU processes (gloo), against 1-process references.

The 2-process trainer run uses a backbone with GroupNorm and no dropout: BatchNorm
statistics and dropout masks are per process, so only such a model gives the same
steps with the global batch split over 2 processes as with it in one process.
"""
import json
import socket

import pytest
import torch
import torch.multiprocessing as mp

from vidssl import distributed as dist
from vidssl.engine.checkpoint import load_checkpoint

WORLD = 2


def _x(r):
    return torch.arange(6, dtype=torch.float64).reshape(3, 2) + 10 * r


def _w(r):
    return torch.linspace(-1, 1, 12, dtype=torch.float64).reshape(6, 2) * (r + 1)


def _worker(rank, port, out_dir):
    import os

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    assert dist.init_distributed() == (rank, WORLD)
    res = {"rank": dist.rank(), "world": dist.world_size(), "main": dist.is_main()}
    res["gather"] = dist.all_gather(_x(rank)).tolist()
    x = _x(rank).requires_grad_(True)
    g = dist.all_gather_with_grad(x)
    (g.pow(2) * _w(rank)).sum().backward()  # every process's loss depends on every slice
    res["gather_grad_value"] = g.detach().tolist()
    res["grad"] = x.grad.tolist()
    res["mean_tensor"] = dist.all_reduce_mean(torch.tensor([float(rank), 2.0 * rank])).tolist()
    res["mean_float"] = dist.all_reduce_mean(float(rank + 1))
    res["objects"] = dist.all_gather_object({"r": rank})
    res["broadcast"] = dist.broadcast_object(f"from {rank}")
    dist.barrier()
    from test_trainer import RandomClips, make_method

    from vidssl.engine.trainer import train

    data = RandomClips(n=24)
    train(_ddp_cfg(), out_dir, dataset=data, method=make_method(data, dropout=0.0))
    _finetune(f"{out_dir}/finetune", f"{out_dir}/checkpoints/last.pt")
    with open(f"{out_dir}/rank{rank}.json", "w") as f:
        json.dump(res, f)
    dist.cleanup()


def _finetune(out_dir, pretrained):
    """The fine-tuning recipe on the engine: the supervised method from a pretrained
    checkpoint (train.init_from), L2-SP, a validation set with the plateau schedule."""
    from test_trainer import RandomClips, TinyBackbone, make_cfg

    from vidssl.engine.trainer import train
    from vidssl.methods.supervised import Supervised, SupervisedConfig

    data = RandomClips(n=24)
    torch.manual_seed(0)
    method = Supervised(SupervisedConfig(dropout=0.0, l2sp=0.1), TinyBackbone(), num_samples=24, num_classes=3)
    cfg = make_cfg(**{"data.batch_size": 8, "train.epochs": 3, "method.dropout": 0.0, "method.l2sp": 0.1,
                      "train.init_from": pretrained, "optim.schedule": "plateau", "optim.plateau_patience": 0,
                      "train.checkpoint_every_steps": 2})
    return train(cfg, out_dir, dataset=data, method=method, val_dataset=RandomClips(n=6, views=2))


def _ddp_cfg():
    from test_trainer import make_cfg

    return make_cfg(**{"data.batch_size": 8, "train.epochs": 2, "method.dropout": 0.0,
                       "train.checkpoint_every_steps": 2})


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    # fork (not spawn) after the slow first-time imports (torch._dynamo, pulled in by the
    # first optimiser; TensorBoard), so that the children start at once
    import torch.utils.tensorboard  # noqa: F401

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True, start_method="fork")
    return out, [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]


def test_collectives_match_single_process_references(two_process_run):
    _, res = two_process_run
    full = torch.cat([_x(r) for r in range(WORLD)])
    xs = [_x(r).requires_grad_(True) for r in range(WORLD)]
    cat = torch.cat(xs)
    sum((cat.pow(2) * _w(r)).sum() for r in range(WORLD)).backward()  # the sum of the processes' losses
    for r, out in enumerate(res):
        assert (out["rank"], out["world"], out["main"]) == (r, WORLD, r == 0)
        assert torch.equal(torch.tensor(out["gather"], dtype=torch.float64), full)
        assert torch.equal(torch.tensor(out["gather_grad_value"], dtype=torch.float64), full)
        torch.testing.assert_close(torch.tensor(out["grad"], dtype=torch.float64), xs[r].grad)
        assert out["mean_tensor"] == [0.5, 1.0] and out["mean_float"] == 1.5
        assert out["objects"] == [{"r": 0}, {"r": 1}] and out["broadcast"] == "from 0"


def test_two_process_training_matches_one_process(two_process_run, tmp_path):
    from test_trainer import RandomClips, losses, make_method

    from vidssl.engine.trainer import train

    ddp_dir, _ = two_process_run
    data = RandomClips(n=24)
    single = train(_ddp_cfg(), tmp_path / "single", dataset=data, method=make_method(data, dropout=0.0))
    a = load_checkpoint(single / "checkpoints" / "last.pt")
    b = load_checkpoint(ddp_dir / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6 and len(b["rng"]) == WORLD
    for k, v in a["model"].items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            torch.testing.assert_close(v, b["model"][k], rtol=1e-5, atol=1e-6, msg=k)
    assert losses(single) == pytest.approx(losses(ddp_dir), abs=1e-5)


def test_two_process_finetune_matches_one_process(two_process_run, tmp_path):
    """Fine-tuning is a recipe on the engine, so it runs data-parallel: 2 processes with the
    global batch split give the 1-process weights, losses and validation record."""
    from test_trainer import losses

    ddp_dir, _ = two_process_run
    single = _finetune(tmp_path / "single", str(ddp_dir / "checkpoints" / "last.pt"))
    a = load_checkpoint(single / "checkpoints" / "last.pt")
    b = load_checkpoint(ddp_dir / "finetune" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 9 and a["validation"] == b["validation"]
    assert a["validation"]["best_epoch"] >= 1 and (single / "checkpoints" / "best.pt").is_file()
    assert any(k.startswith("anchor.") for k in a["model"])  # L2-SP's starting weights travel in the state
    for k, v in a["model"].items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            torch.testing.assert_close(v, b["model"][k], rtol=1e-5, atol=1e-6, msg=k)
    assert losses(single) == pytest.approx(losses(ddp_dir / "finetune"), abs=1e-5)


def test_single_process_helpers_are_identities():
    x = torch.randn(3, 2, requires_grad=True)
    assert dist.all_gather(x) is x and dist.all_gather_with_grad(x) is x
    assert dist.all_reduce_mean(2.5) == 2.5 and dist.all_reduce_mean(x) is x
    assert (dist.rank(), dist.world_size(), dist.is_main()) == (0, 1, True)
    assert dist.all_gather_object(7) == [7] and dist.broadcast_object("a") == "a"
    dist.barrier()


def test_slurm_environment_is_translated(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_STEP_NODELIST"):
        # set, then delete: monkeypatch records only variables it touched, and the code under test
        # sets these; left behind, WORLD_SIZE=8 would make every later train() wait for 8 processes
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    monkeypatch.setenv("SLURM_PROCID", "5")
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[07-09,12],cpu3")
    monkeypatch.setenv("SLURM_JOB_ID", "41234")
    assert dist._env_from_slurm()
    import os

    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == ("5", "8", "1")
    assert os.environ["MASTER_ADDR"] == "gpu07" and os.environ["MASTER_PORT"] == str(20000 + 1234)
    assert dist._first_slurm_host("node12") == "node12"
    monkeypatch.setenv("SLURM_NTASKS", "1")  # a one-task job is not distributed
    assert not dist._env_from_slurm()
