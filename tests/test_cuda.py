"""The GPU path: every method's training step in bf16 autocast with channels-last-3d
weights, LA's re-clustering, the memory bank and the MoCo queue on the device, a
compiled step, and a 2-step run of the command line with ``train.device=cuda``.

Every test takes ``device``: ``cpu`` runs here, in CI, and checks the same code and
assertions; ``cuda`` is marked ``cuda`` and skipped without a GPU (``pytest -m cuda``
runs only those; ``benchmarks/device_check.py`` runs them on a GPU machine). On the CPU
the engine's autocast is off, so there the step is float32."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidssl.config import in_channels, load_config
from vidssl.data.batch import flatten_views, to_device
from vidssl.engine import accel
from vidssl.engine.loop import autocast, train_step
from vidssl.engine.optim import build_optimizer
from vidssl.methods import build_method
from vidssl.methods.base import Progress
from vidssl.methods.clustering import cluster_features, faiss_gpu_available, kmeans_torch
from vidssl.methods.memory_bank import MemoryBank
from vidssl.methods.queue import KeyQueue
from vidssl.registry import METHODS

NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (torch.cuda.is_available() is false)")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, NO_CUDA])]

VIDEOS, BATCH, CLASSES = 16, 4, 3
SIZE = ["model.width=4", "data.num_frames=4", "data.stride=1", "data.crop_size=16", f"data.batch_size={BATCH}",
        "data.workers=0", "train.progress=false"]
# each tiny recipe made smaller still (heads, queue, clusters, segments)
EXTRA = {
    "supervised": [],
    "ir": [],
    "la": ["method.ir_warmup_epochs=0", "method.num_clusters=4", "method.background_neighbors=8"],
    "moco": ["method.hidden_dim=32", "method.queue_size=64"],
    "simclr": ["method.hidden_dim=32"],
    "byol": ["method.hidden_dim=32", "method.predictor_hidden_dim=32"],
    "swav": ["method.hidden_dim=32", "method.num_prototypes=8"],
    "cpc": ["data.views=3", "method.segments=3", "model.options.frames=4"],
}


def tiny_config(name: str, extra=()):
    return load_config(f"{name}_tiny", [*SIZE, *EXTRA[name], *extra])


def random_batch(cfg, device: str, num_classes: int) -> dict:
    """``BATCH`` videos of ``data.views`` random clips [C, T, S, S], on ``device``."""
    g = torch.Generator().manual_seed(0)
    d = cfg.data
    clips = torch.randn(BATCH, d.views, in_channels(d.modality), d.num_frames, d.crop_size, d.crop_size, generator=g)
    label = torch.arange(BATCH) % num_classes if num_classes else torch.full((BATCH,), -1)
    return to_device({"clips": (clips,), "index": torch.arange(BATCH), "label": label, "bad_paths": []},
                     torch.device(device))


def build(name: str, device: str, extra=()):
    """The tiny method ``name`` on ``device``, its 5-D weights channels-last-3d, and its optimiser."""
    cfg = tiny_config(name, extra)
    torch.manual_seed(0)
    classes = CLASSES if name == "supervised" else 0
    method = accel.channels_last_3d(build_method(cfg, num_samples=VIDEOS, num_classes=classes).to(device)).train()
    return cfg, method, build_optimizer(method, cfg.optim), random_batch(cfg, device, classes)


def run_steps(method, optimizer, batch, steps: int = 2) -> list[dict]:
    """``steps`` engine steps (:func:`train_step`, bf16 autocast on CUDA) on the same batch."""
    progress = Progress(steps_per_epoch=8, epochs=2)
    outs = []
    for _ in range(steps):
        outs.append(train_step(method, method, batch, optimizer, progress, lr=0.01, amp=True))
        progress.step += 1
    return outs


def check_training_step(name: str, device: str) -> None:
    cfg, method, optimizer, batch = build(name, device)
    before = {k: v.detach().clone() for k, v in method.state_dict().items() if isinstance(v, torch.Tensor)}
    outs = run_steps(method, optimizer, batch)
    for out in outs:
        assert out["loss"].device.type == device and torch.isfinite(out["loss"]).item(), (name, out["loss"])
    state = method.state_dict()
    assert {v.device.type for v in state.values() if isinstance(v, torch.Tensor)} == {device}
    changed = [k for k in before if k.startswith("backbone.") and not torch.equal(before[k], state[k])]
    assert changed, f"{name}: no backbone weight changed in two steps"
    assert accel.is_channels_last_3d(method), f"{name}: the optimiser step lost the channels-last-3d layout"
    x = flatten_views(batch["clips"])
    with torch.no_grad(), autocast(device, True):
        pooled, maps = method.backbone(*x, return_stages=True)
    assert pooled.dtype == (torch.bfloat16 if device == "cuda" else torch.float32), pooled.dtype
    if cfg.model.backbone == "r3d18":  # a 3D net: its maps follow the channels-last-3d weights
        assert maps["conv3"].is_contiguous(memory_format=torch.channels_last_3d)
    if name in ("ir", "la"):  # the bank rows of the batch's videos moved, on the device
        bank = method.memory_bank.bank
        assert not torch.equal(bank[:BATCH], before["memory_bank.bank"][:BATCH])
        assert torch.equal(bank[BATCH:], before["memory_bank.bank"][BATCH:])
        torch.testing.assert_close(bank.norm(dim=1), torch.ones(VIDEOS, device=device))
    if name == "moco":  # two steps of B x rho keys enqueued
        assert method.queue.ptr.device.type == device and int(method.queue.ptr) == 2 * BATCH * cfg.data.views
    if name == "la":
        assert method.cluster_labels.device.type == device and int(method.clustered_epoch) == 0


def check_la_reclustering(device: str) -> None:
    """LA re-clusters a bank of 4 tight groups on the device: faiss on the GPU when it
    has GPU support, else the torch k-means (CUDA when present), the same labels as the
    torch k-means on the CPU with the same seed."""
    backend = "faiss" if device == "cuda" and faiss_gpu_available() else "torch"
    _, method, _, _ = build("la", device, [f"method.kmeans_backend={backend}", "method.num_clusterings=2"])
    g = torch.Generator().manual_seed(1)
    centres = F.normalize(torch.randn(4, 128, generator=g), dim=1)
    bank = F.normalize(centres.repeat_interleave(VIDEOS // 4, 0) + 0.01 * torch.randn(VIDEOS, 128, generator=g), dim=1)
    method.memory_bank.bank.copy_(bank)
    method.cluster(epoch=2)
    labels = method.cluster_labels
    assert labels.device.type == device and labels.shape == (2, VIDEOS) and int(method.clustered_epoch) == 2
    for row in labels.cpu():
        assert row.min() >= 0 and row.max() < 4 and len(row.unique()) == 4  # every cluster used
    if backend == "torch":
        seed = method.cfg.kmeans_seed + 2 * 2  # clustering i of epoch e: kmeans_seed + e * m + i
        ref = cluster_features(bank, 4, 2, seed=seed, niter=method.cfg.kmeans_iters, backend="torch")
        assert np.array_equal(labels.cpu().numpy(), np.stack(ref))
    # the torch k-means itself, on the device: the same as on the CPU (its first centroids come from a CPU generator)
    got, centroids = kmeans_torch(bank.to(device), 4, seed=3, device=device)
    want, _ = kmeans_torch(bank, 4, seed=3, device="cpu")
    assert np.array_equal(got, want) and centroids.shape == (4, 128)


def check_bank_and_queue(device: str) -> None:
    g = torch.Generator().manual_seed(0)
    ref = MemoryBank(10, 8, momentum=0.5, seed=0)
    bank = MemoryBank(10, 8, momentum=0.5, seed=0).to(device)
    index = torch.tensor([3, 7, 3, 3, 9])  # video 3 three times: applied in order
    vectors = torch.randn(5, 8, generator=g)
    ref.update(index, vectors)
    bank.update_all(index.to(device), vectors.to(device))
    assert bank.bank.device.type == device and bank.get(index.to(device)).device.type == device
    torch.testing.assert_close(bank.bank.cpu(), ref.bank, rtol=1e-5, atol=1e-6)
    queue = KeyQueue(6, 4).to(device)
    keys = F.normalize(torch.randn(8, 4, generator=g), dim=1).to(device)
    queue.enqueue(keys[:4])
    queue.enqueue(keys[4:])  # wraps: entries 0, 1 overwritten by keys 6, 7
    assert queue.queue.device.type == queue.ptr.device.type == device and int(queue.ptr) == 2
    torch.testing.assert_close(queue.queue, torch.cat([keys[6:8], keys[2:6]]))


def check_compiled_step(device: str) -> None:
    """A compiled backbone trains like the plain one and keeps its state-dict keys
    (on the CPU traced with the eager backend; on CUDA the default, inductor)."""
    options = {"backend": "eager"} if device == "cpu" else {}
    _, plain, opt_plain, batch = build("supervised", device)
    _, method, optimizer, _ = build("supervised", device)
    keys = list(method.state_dict())
    assert accel.compile_backbones(method, **options) == ["backbone"]
    a, b = run_steps(plain, opt_plain, batch), run_steps(method, optimizer, batch)
    assert list(method.state_dict()) == keys
    tol = 1e-5 if device == "cpu" else 0.1  # bf16 kernels of another order of operations
    for x, y in zip(a, b):
        torch.testing.assert_close(y["loss"].float(), x["loss"].float(), rtol=tol, atol=tol)


def frame_folders(folder, videos: int = 4, frames: int = 10, size: int = 24):
    """``videos`` folders of PNG frames (a bar moving over a grey level per video) and
    their manifest: decoded by OpenCV, so the run needs no PyAV."""
    import cv2

    rows = []
    for i in range(videos):
        d = folder / f"video{i}"
        d.mkdir(parents=True)
        for t in range(frames):
            img = np.full((size, size, 3), 40 * i, np.uint8)
            img[:, (2 * t + i) % size] = 255
            cv2.imwrite(str(d / f"{t:05d}.png"), img)
        rows.append(f"{d},{i % 2}")
    (folder / "train.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    return folder / "train.csv"


def check_cli_run(device: str, tmp_path) -> None:
    from vidssl.cli import main
    from vidssl.engine.checkpoint import load_checkpoint

    manifest = frame_folders(tmp_path / "frames")
    run = tmp_path / "run"
    code = main(["pretrain", "supervised_tiny", f"data.train={manifest}", "data.backend=frames",
                 f"train.device={device}", "--run-dir", str(run), "model.width=4", "data.num_frames=4",
                 "data.stride=1", "data.crop_size=16", "data.augment.short_side=[16, 20]", "data.batch_size=2",
                 "data.workers=0", "train.epochs=1", "train.max_steps_per_epoch=2", "train.log_every=1",
                 "train.progress=false"])
    assert code == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["device"].split(":")[0] == device, summary
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["finished"] and any(k.startswith("backbone.") for k in ckpt["model"])


def test_every_method_is_covered():
    assert set(EXTRA) == set(METHODS)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(METHODS))
def test_training_step(name, device):
    check_training_step(name, device)


@pytest.mark.parametrize("device", DEVICES)
def test_la_reclustering(device):
    check_la_reclustering(device)


@pytest.mark.parametrize("device", DEVICES)
def test_memory_bank_and_queue(device):
    check_bank_and_queue(device)


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_step(device):
    check_compiled_step(device)


@pytest.mark.parametrize("device", DEVICES)
def test_cli_two_steps(device, tmp_path):
    check_cli_run(device, tmp_path)
