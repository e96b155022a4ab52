"""The video-level memory bank: initialisation, the running-average update, state."""
import io
import math

import pytest
import torch
import torch.nn.functional as F

from vidssl.errors import MemoryBankError
from vidssl.methods.memory_bank import MemoryBank, init_bank, occurrence_rank


def test_init_is_uniform_then_normalised():
    n, d = 500, 128
    g = torch.Generator().manual_seed(0)
    bank = init_bank(n, d, g)
    torch.testing.assert_close(bank.norm(dim=1), torch.ones(n))
    # reproduce the draw: uniform in +-1/sqrt(d/3), then l2norm (authors' code)
    raw = torch.rand(n, d, generator=torch.Generator().manual_seed(0)) * (2 / math.sqrt(d / 3)) - 1 / math.sqrt(d / 3)
    assert raw.abs().max() <= 1 / math.sqrt(d / 3)
    torch.testing.assert_close(bank, raw / raw.norm(dim=1, keepdim=True))
    # the range makes the expected squared norm 1 before normalising
    assert (raw ** 2).sum(1).mean().item() == pytest.approx(1.0, abs=0.02)
    assert torch.equal(MemoryBank(n, d, seed=3).bank, MemoryBank(n, d, seed=3).bank)
    assert not torch.equal(MemoryBank(n, d, seed=3).bank, MemoryBank(n, d, seed=4).bank)


def slow_update(bank, index, vectors, m):
    """One pair at a time, in order: bank[i] = l2norm(m * bank[i] + (1 - m) * l2norm(v))."""
    bank = bank.clone()
    for i, v in zip(index.tolist(), vectors):
        v = v / v.norm()
        new = m * bank[i] + (1 - m) * v
        bank[i] = new / new.norm()
    return bank


@pytest.mark.parametrize("n,d,b,m", [(10, 4, 3, 0.5), (50, 16, 20, 0.5), (7, 3, 12, 0.9), (5, 8, 5, 0.0)])
def test_update_matches_formula(n, d, b, m):
    mb = MemoryBank(n, d, momentum=m, seed=1)
    g = torch.Generator().manual_seed(n * b)
    index = torch.randint(0, n, (b,), generator=g)  # repeats happen: applied in order
    vectors = torch.randn(b, d, generator=g) * 3  # not unit: the update normalises them
    expected = slow_update(mb.bank, index, vectors, m)
    untouched = torch.ones(n, dtype=torch.bool)
    untouched[index] = False
    before = mb.bank.clone()
    mb.update(index, vectors)
    torch.testing.assert_close(mb.bank, expected)
    assert torch.equal(mb.bank[untouched], before[untouched])
    torch.testing.assert_close(mb.bank.norm(dim=1), torch.ones(n))


def test_occurrence_rank():
    assert occurrence_rank(torch.tensor([4, 7, 4, 4, 1, 7])).tolist() == [0, 0, 1, 2, 0, 1]
    assert occurrence_rank(torch.tensor([], dtype=torch.long)).tolist() == []


def test_bad_updates():
    mb = MemoryBank(6, 4)
    with pytest.raises(MemoryBankError, match="out of range"):
        mb.update(torch.tensor([6]), torch.randn(1, 4))
    with pytest.raises(MemoryBankError, match="dimension 5"):
        mb.update(torch.tensor([0]), torch.randn(1, 5))
    with pytest.raises(MemoryBankError, match="index"):
        mb.update(torch.tensor([0, 1]), torch.randn(1, 4))
    with pytest.raises(MemoryBankError, match="momentum"):
        MemoryBank(6, 4, momentum=1.0)


def test_bank_is_a_buffer_and_round_trips_bit_exactly():
    mb = MemoryBank(30, 8, seed=2)
    mb.update(torch.arange(5), torch.randn(5, 8))
    assert list(dict(mb.named_parameters())) == [] and "bank" in mb.state_dict()
    buf = io.BytesIO()
    torch.save(mb.state_dict(), buf)
    buf.seek(0)
    other = MemoryBank(30, 8, seed=99)
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(other.bank, mb.bank)


def test_update_all_single_process_equals_update():
    a, b = MemoryBank(12, 4, seed=5), MemoryBank(12, 4, seed=5)
    idx, v = torch.tensor([1, 3, 1]), torch.randn(3, 4)
    a.update(idx, v)
    b.update_all(idx, v)
    assert torch.equal(a.bank, b.bank)
    torch.testing.assert_close(a.get(torch.tensor([3])), F.normalize(b.bank[3:4], dim=1))


def _ddp_worker(rank, world, port, out_dir):
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        mb = MemoryBank(20, 6, seed=7)  # same seed: identical banks on every process
        g = torch.Generator().manual_seed(100 + rank)
        n = 5 if rank == 0 else 3  # a short last batch on rank 1
        index = torch.randint(0, 20, (n,), generator=g)
        vectors = torch.randn(n, 6, generator=g)
        mb.update_all(index, vectors)
        torch.save({"bank": mb.bank, "index": index, "vectors": vectors}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_update_all_under_ddp_keeps_every_copy_identical(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert torch.equal(r0["bank"], r1["bank"])
    # equal to one process applying rank 0's pairs then rank 1's
    ref = MemoryBank(20, 6, seed=7)
    ref.update(torch.cat([r0["index"], r1["index"]]), torch.cat([r0["vectors"], r1["vectors"]]))
    torch.testing.assert_close(r0["bank"], ref.bank)


class _Interrupt(RuntimeError):
    pass


class _RandomClips(torch.utils.data.Dataset):
    """N tiny random 'videos'; each sample drawn from its (index, seed) key.
    ``fail_after``: raise after that many samples (simulates a killed run)."""

    def __init__(self, n, fail_after=None):
        self.n, self.fail_after, self.calls = n, fail_after, 0

    def __len__(self):
        return self.n

    def __getitem__(self, key):
        index, seed = key
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise _Interrupt("killed")
        g = torch.Generator().manual_seed(int(seed))
        return {"clips": (torch.randn(1, 3, 2, 6, 6, generator=g) + index % 3,), "index": index, "label": -1,
                "bad_paths": []}


def _la_run(run_dir, dataset):
    from vidssl.config import load_config, method_config
    from vidssl.engine.trainer import train
    from vidssl.methods import la

    cfg = load_config(None, [
        "method.name=la", "method.num_clusters=3", "method.background_neighbors=10", "method.ir_warmup_epochs=1",
        "method.kmeans_backend=torch", "data.batch_size=8", "data.workers=0", "train.epochs=3",
        "train.checkpoint_every_steps=1", "train.progress=false", "train.device=cpu", "optim.lr=0.5",
        "optim.schedule=cosine", f"train.out={run_dir.parent}", f"train.name={run_dir.name}",
    ])
    torch.manual_seed(0)

    class Backbone(torch.nn.Module):
        feat_dim = 16

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv3d(3, 16, 3, padding=1)

        def forward(self, x):
            return self.conv(x).mean((2, 3, 4))

    method = la.LocalAggregation(method_config(cfg), Backbone(), num_samples=len(dataset))
    train(cfg, run_dir, dataset=dataset, method=method)
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


def test_bank_and_clusters_survive_checkpoint_resume_bit_exactly(tmp_path):
    straight = _la_run(tmp_path / "straight", _RandomClips(16))  # 2 steps of 8 per epoch, 3 epochs
    with pytest.raises(_Interrupt):  # killed in epoch 2 (LA), after its first step's checkpoint
        _la_run(tmp_path / "resumed", _RandomClips(16, fail_after=5 * 8))
    mid = torch.load(tmp_path / "resumed" / "checkpoints" / "last.pt", weights_only=True)
    assert (mid["epoch"], mid["epoch_step"]) == (2, 1)
    resumed = _la_run(tmp_path / "resumed", _RandomClips(16))
    assert straight["step"] == resumed["step"] == 6
    for key in ("memory_bank.bank", "cluster_labels", "clustered_epoch", "backbone.conv.weight", "embed.weight"):
        assert torch.equal(straight["model"][key], resumed["model"][key]), key
    assert int(straight["model"]["clustered_epoch"]) == 2
    # the bank did move away from its initial draw during training
    assert not torch.equal(straight["model"]["memory_bank.bank"], MemoryBank(16, 128).bank)
