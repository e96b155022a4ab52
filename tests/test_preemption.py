"""SIGTERM / SIGUSR1 during training: a checkpoint after the step in progress, a clean exit
(code 128 + signal), and a resume that ends with the weights of an uninterrupted run;
the same for the real command in a child process, for 2 DDP processes of which one got
the signal, and DataLoader workers that outlive the signal."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp
from test_trainer import RandomClips, Recording, TinyBackbone, losses, make_cfg

from vidssl.engine.checkpoint import load_checkpoint
from vidssl.engine.signals import StopSignals, worker_init
from vidssl.engine.trainer import train
from vidssl.errors import StopRequested
from vidssl.methods import supervised


class Signalling(Recording):
    """Sends itself ``signum`` in ``after_step`` of step ``at`` (0-based)."""

    def __init__(self, *args, at=None, signum=signal.SIGTERM, **kw):
        super().__init__(*args, **kw)
        self.at, self.signum = at, signum

    def after_step(self, progress):
        super().after_step(progress)
        if progress.step == self.at:
            os.kill(os.getpid(), self.signum)


def signalling(data, **kw):
    torch.manual_seed(0)
    return Signalling(supervised.SupervisedConfig(dropout=0.5), TinyBackbone(), num_samples=len(data),
                      num_classes=data.num_classes, **kw)


def model_tensors(run_dir):
    return {k: v for k, v in load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"].items()
            if isinstance(v, torch.Tensor)}


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert torch.equal(v, b[k]), k  # bit-exact: same batches, same RNG draws, same arithmetic


@pytest.mark.parametrize("at,signum,saved_step", [
    (5, signal.SIGUSR1, 6),  # mid-epoch (4 steps an epoch): a checkpoint at once, after step 6
    (3, signal.SIGTERM, 4),  # the last step of epoch 1: the epoch's own checkpoint, then the stop
])
def test_a_signal_stops_after_the_step_with_a_checkpoint_and_resumes_exactly(tmp_path, at, signum, saved_step):
    data = RandomClips()
    cfg = make_cfg()  # 3 epochs of 4 steps, log_every 1
    full = train(cfg, tmp_path / "full", dataset=data, method=signalling(data))
    before = signal.getsignal(signum)
    with pytest.raises(StopRequested, match=rf"stopped by {signal.Signals(signum).name} after step {saved_step}") as e:
        train(cfg, tmp_path / "cut", dataset=data, method=signalling(data, at=at, signum=signum))
    assert e.value.exit_code == 128 + signum and "checkpoints/last.pt" in str(e.value)
    assert signal.getsignal(signum) is before  # the previous handler is back
    saved = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert saved["step"] == saved_step and not saved["finished"]
    assert (saved["epoch"], saved["epoch_step"]) == divmod(saved_step, 4)
    resumed = train(cfg, tmp_path / "cut", dataset=data, method=signalling(data))
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["finished"]
    assert_same_weights(model_tensors(full), model_tensors(resumed))
    assert losses(full) == losses(resumed)  # metrics.jsonl reads as one run


def test_a_signal_during_the_last_step_lets_the_run_finish(tmp_path):
    data = RandomClips()
    run = train(make_cfg(), tmp_path / "r", dataset=data, method=signalling(data, at=11))  # 12 steps in all
    assert load_checkpoint(run / "checkpoints" / "last.pt")["finished"]


def test_stop_signals_restore_handlers_and_keep_the_first_signal():
    before = signal.getsignal(signal.SIGUSR1)
    with StopSignals() as stop:
        assert signal.getsignal(signal.SIGUSR1) != before
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.agreed() == signal.SIGUSR1  # the first one; the process is still alive
    assert signal.getsignal(signal.SIGUSR1) is before


# ----------------------------------------------------------------------------- the real command

TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=16", "data.augment.short_side=[16,20]",
        "data.batch_size=2", "data.workers=0", "train.epochs=4", "train.progress=false", "train.log_every=1",
        "method.dropout=0.5"]


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory):
    from vidssl.data.synthetic import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synth"), videos=12, seed=1, size=32, frames=16)["train"]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread here and in the child: the same arithmetic in all three runs, and no
    thread pool spinning against other work on a loaded 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def metric_lines(run_dir) -> int:
    path = run_dir / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_sigterm_to_pretrain_checkpoints_exits_143_and_the_same_command_resumes(tiny_videos, tmp_path):
    """``vidssl pretrain`` in a child process, SIGTERM once it has logged 5 steps: exit code
    143 and a checkpoint; the same command again (its default run folder: no --run-dir)
    resumes and ends with the weights of an uninterrupted run, bit for bit."""
    from vidssl.cli import main

    args = ["pretrain", "supervised_tiny", f"data.train={tiny_videos}", *TINY]
    assert main([*args, f"train.out={tmp_path / 'full'}"]) == 0  # train.out leaves the run's name alone
    (full,) = (tmp_path / "full").iterdir()
    assert full.name.startswith("supervised_tiny-")
    steps = load_checkpoint(full / "checkpoints" / "last.pt")["step"]  # 8 training videos: 4 steps an epoch

    cut_args = [*args, f"train.out={tmp_path / 'cut'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vidssl", *cut_args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "cut" / full.name  # the same name: the same recipe and settings
    try:
        deadline = time.time() + 120
        while proc.poll() is None and metric_lines(run_dir) < 5 and time.time() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be signalled: " + proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM after step" in err.splitlines()[-1] and str(run_dir) not in out
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert 5 <= saved["step"] < steps and not saved["finished"]

    assert main(cut_args) == 0  # the same command: resumes
    resumed = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert resumed["finished"] and resumed["step"] == steps
    print(f"signalled after step {saved['step']} of {steps}")
    assert_same_weights(model_tensors(full), model_tensors(run_dir))
    assert losses(full) == pytest.approx(losses(run_dir), abs=1e-6)


# ----------------------------------------------------------------------------- DDP

WORLD = 2


def _ddp_cfg(out):
    return make_cfg(**{"data.batch_size": 4, "train.epochs": 2, "method.dropout": 0.0, "train.log_every": 3,
                       "train.out": out})


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from vidssl import distributed as dist

    dist.init_distributed()
    data = RandomClips(n=24)  # 6 steps an epoch
    torch.manual_seed(0)
    method = Signalling(supervised.SupervisedConfig(dropout=0.0), TinyBackbone(), num_samples=24, num_classes=3,
                        at=1 if rank == 1 else None)  # only rank 1 is signalled, during step 2
    res = {}
    try:
        train(_ddp_cfg(out_dir), f"{out_dir}/run", dataset=data, method=method)
    except StopRequested as e:
        res["stopped"] = [e.signum, int(method.steps_seen)]
    torch.manual_seed(0)
    method = Recording(supervised.SupervisedConfig(dropout=0.0), TinyBackbone(), num_samples=24, num_classes=3)
    train(_ddp_cfg(out_dir), f"{out_dir}/run", dataset=data, method=method)
    with open(f"{out_dir}/rank{rank}.json", "w") as f:
        json.dump(res, f)
    dist.cleanup()


def test_ddp_processes_stop_after_the_same_step_when_one_is_signalled(tmp_path):
    """Rank 1 gets SIGTERM during step 2; both stop after step 3 (mid-epoch, at the first metrics
    line, where they agree), one checkpoint; the resumed run gives the 1-process uninterrupted weights."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import torch.utils.tensorboard

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    mp.start_processes(_worker, args=(port, str(tmp_path)), nprocs=WORLD, join=True, start_method="fork")
    res = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert [r["stopped"] for r in res] == [[signal.SIGTERM, 3]] * WORLD
    torch.manual_seed(0)
    method = Recording(supervised.SupervisedConfig(dropout=0.0), TinyBackbone(), num_samples=24, num_classes=3)
    single = train(_ddp_cfg(str(tmp_path)), tmp_path / "single", dataset=RandomClips(n=24), method=method)
    a, b = model_tensors(single), model_tensors(tmp_path / "run")
    for k, v in a.items():
        if v.is_floating_point():  # 2 processes average their gradients: float rounding, as in test_distributed
            torch.testing.assert_close(v, b[k], rtol=1e-5, atol=1e-6, msg=k)


# ----------------------------------------------------------------------------- DataLoader workers


class Slow(torch.utils.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        time.sleep(0.05)
        return torch.tensor([i])


def test_dataloader_workers_outlive_the_first_sigterm():
    """SLURM signals every process of the job: a worker keeps serving batches through a
    SIGTERM and a SIGUSR1 (the main process decides when to stop, then shuts it down)."""
    loader = torch.utils.data.DataLoader(Slow(), batch_size=2, num_workers=1, worker_init_fn=worker_init)
    it = iter(loader)
    assert next(it).tolist() == [[0], [1]]
    (worker,) = it._workers
    os.kill(worker.pid, signal.SIGTERM)
    os.kill(worker.pid, signal.SIGUSR1)
    assert [next(it).tolist() for _ in range(3)] == [[[2], [3]], [[4], [5]], [[6], [7]]]
    assert worker.is_alive()
    del it  # the loader's own shutdown still ends the worker
    worker.join(timeout=30)
    assert not worker.is_alive()


def _initialised_then_wait(ready):
    worker_init(0)
    ready.set()
    while True:
        time.sleep(0.05)


def test_a_second_sigterm_ends_a_worker():
    """A worker that hangs can still be ended: its parent's terminate() (SIGTERM) after SLURM's."""
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_initialised_then_wait, args=(ready,), daemon=True)
    proc.start()
    assert ready.wait(30)
    os.kill(proc.pid, signal.SIGTERM)
    os.kill(proc.pid, signal.SIGUSR1)
    proc.join(timeout=0.5)
    assert proc.is_alive()
    proc.terminate()
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGTERM
