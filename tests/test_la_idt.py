"""Video LA with the IDT prior (dense-trajectory paper Sec. 3.3): fixed external clusters,
the joint [bank ; IDT] space, alignment of the IDT vectors with the manifest, and the
`vidssl workflow la-idt` pipeline end to end (resumable) on a tiny synthetic dataset."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_ir_la import FakeBackbone, fake_batch

from vidssl.cli import main
from vidssl.data.manifests import load_manifest
from vidssl.errors import ConfigError
from vidssl.idt.pipeline import save_encoded
from vidssl.losses.local_aggregation import local_aggregation_loss
from vidssl.methods import la
from vidssl.methods.base import Progress
from vidssl.methods.clustering import cluster_features, cluster_metrics, joint_space, transform_features
from vidssl.methods.la_regime import la_regime
from vidssl.methods.feature_file import check_alignment

TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
        "data.augment.short_side=[28, 32]", "data.batch_size=4", "data.workers=0", "train.epochs=1"]
# IDT that finds trajectories in 32 x 32 px, 16-frame videos with slow motion
TINY_IDT = ["idt.flow=dis", "idt.camera=false", "idt.track_length=8", "idt.patch_size=16", "idt.min_var=0.3",
            "idt.min_distance=3", "idt.max_tracks=200", "workers=1", "fisher.components=2", "fisher.sketch_dim=64",
            "analysis.clusters=2", "analysis.members=3", "analysis.frames=1"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from vidssl.data.synthetic import make_synthetic

    out = tmp_path_factory.mktemp("la_idt")
    files = make_synthetic(out / "data", videos=16, size=32, frames=16, seed=1)
    return files["train"]


def make_la(n, tmp_path, feats=None, **kw):
    """An LA method on FakeBackbone whose file source holds ``feats`` [n, F] (.npz with paths)."""
    torch.manual_seed(0)
    if feats is not None:
        path = save_encoded(tmp_path / "idt.npz", np.asarray(feats, np.float32), [f"v{i}.mp4" for i in range(n)],
                            [-1] * n, np.zeros(n, bool))
        kw.setdefault("cluster_features", str(path))
    kw.setdefault("kmeans_backend", "torch")
    kw.setdefault("kmeans_iters", 5)  # tiny, well separated sets converge in a few Lloyd steps
    return la.LocalAggregation(la.LocalAggregationConfig(**kw), FakeBackbone(), num_samples=n)


def same_partition(a, b) -> bool:
    return cluster_metrics(a, b)["nmi"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- fixed external clusters


@pytest.mark.parametrize("n,f,k,m,background", [(20, 6, 3, 3, 8), (33, 10, 5, 2, 33), (12, 4, 2, 1, 5)])
def test_fixed_external_clusters_give_exactly_the_la_loss(tmp_path, n, f, k, m, background):
    feats = np.random.default_rng(n).normal(size=(n, f)).astype(np.float32)
    method = make_la(n, tmp_path, feats, cluster_source="file", recluster=False, num_clusters=k,
                     num_clusterings=m, background_neighbors=background, embed_dim=8)
    method.on_train_start(Progress(step=0))
    method.on_epoch_start(Progress(epoch=0))
    # the clusters are k-means of the file's rows (seeds kmeans_seed + i), not of the bank
    expected = np.stack(cluster_features(feats, k, m, seed=0, niter=5, backend="torch"))
    np.testing.assert_array_equal(method.cluster_labels.numpy(), expected)
    for epoch in (1, 2):  # fixed: later epochs keep them, whatever the bank does
        method.memory_bank.bank.copy_(F.normalize(torch.randn(n, 8), dim=1))
        method.on_epoch_start(Progress(epoch=epoch))
        np.testing.assert_array_equal(method.cluster_labels.numpy(), expected)
        method.progress = Progress(epoch=epoch)
        index = [0, 3, n - 1, 5, 3]
        batch = fake_batch(index, views=2, seed=epoch)
        out = method(batch)
        v = F.normalize(method.embed(method.backbone(batch["clips"][0].flatten(0, 1))).float(), dim=1).detach()
        ref, _ = local_aggregation_loss(v, method.memory_bank.bank, torch.tensor(index).repeat_interleave(2),
                                        torch.as_tensor(expected), background=background, temperature=0.07,
                                        eps=1e-7)
        assert out["loss"].item() == pytest.approx(ref.item(), rel=1e-6, abs=1e-7)


def test_clusters_from_init_from_are_dropped_but_a_resume_keeps_its_own(tmp_path):
    feats = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    method = make_la(16, tmp_path, feats, cluster_source="file", recluster=False, num_clusters=3, embed_dim=8)
    stale = torch.randint(0, 3, method.cluster_labels.shape)
    method.cluster_labels.copy_(stale)
    method.clustered_epoch.fill_(0)  # as loaded by train.init_from from an earlier LA stage
    method.on_train_start(Progress(step=7))  # a resume: its own clusters stay
    method.on_epoch_start(Progress(epoch=1, step=7))
    assert torch.equal(method.cluster_labels, stale)
    method.on_train_start(Progress(step=0))  # a fresh run: clusters its own source
    method.on_epoch_start(Progress(epoch=0))
    expected = np.stack(cluster_features(feats, 3, 3, seed=0, niter=5, backend="torch"))
    np.testing.assert_array_equal(method.cluster_labels.numpy(), expected)


# ----------------------------------------------------------------------------- the joint space


def blobs(n, dim, split, spread, seed):
    """Unit rows: videos < split near one random direction, the others near an orthogonal one
    (spread = 0: both groups share the first direction, i.e. no structure)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(dim, 2)))
    centre = np.where(np.arange(n)[:, None] < split, q[:, 0], q[:, 0] * (1 - spread) + q[:, 1] * spread)
    x = centre + 0.02 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def joint_labels(tmp_path, bank, idt, weight=1.0):
    n = len(bank)
    method = make_la(n, tmp_path, idt, cluster_source="joint", num_clusters=2, num_clusterings=1,
                     embed_dim=bank.shape[1], joint_weight=weight)
    method.memory_bank.bank.copy_(torch.as_tensor(bank))
    feats = method.clustering_features()
    np.testing.assert_allclose(feats, np.concatenate([bank, weight * idt / np.linalg.norm(idt, axis=1,
                                                                                           keepdims=True)], 1),
                               rtol=1e-5, atol=1e-6)
    method.cluster(0)
    return method.cluster_labels[0].numpy()


def test_joint_space_clustering_sees_both_parts(tmp_path):
    n, half = 12, np.repeat([0, 1], 6)
    # IDT carries the structure (two orthogonal groups), the bank only a weak one
    bank, idt = blobs(n, 8, 6, 0.3, seed=1), blobs(n, 20, 6, 1.0, seed=2)
    assert same_partition(joint_labels(tmp_path, bank, idt), half)
    moved = idt.copy()
    moved[0] = idt[-1]  # video 0's IDT vector now looks like the second group's
    lab = joint_labels(tmp_path, bank, moved)
    assert lab[0] == lab[-1] and lab[1] != lab[0] and not same_partition(lab, half)
    assert same_partition(joint_labels(tmp_path, bank, moved, weight=0.0), half)  # weight 0: the bank alone
    # the bank carries the structure, the IDT vectors a weak one: now moving a bank row moves the video
    bank, idt = blobs(n, 8, 6, 1.0, seed=3), blobs(n, 20, 6, 0.3, seed=4)
    assert same_partition(joint_labels(tmp_path, bank, idt), half)
    moved = bank.copy()
    moved[0] = bank[-1]
    lab = joint_labels(tmp_path, moved, idt)
    assert lab[0] == lab[-1] and lab[1] != lab[0]


def test_joint_space_weights_and_shapes():
    a, b = np.array([[3.0, 4.0], [0.0, 0.0]]), np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(joint_space([a, b], [1.0, 0.5]), [[0.6, 0.8, 0.0, 0.5, 0.0], [0, 0, 0.5, 0, 0]])
    with pytest.raises(ValueError, match="rows"):
        joint_space([a, b[:1]])


# ----------------------------------------------------------------------------- alignment with the manifest


def test_alignment_errors_name_count_order_and_missing(tmp_path):
    paths = [f"/data/v{i}.mp4" for i in range(6)]
    f = save_encoded(tmp_path / "ok.npz", np.ones((6, 3), np.float32), paths, [0] * 6, np.zeros(6, bool))
    check_alignment(f, 6, paths)
    # moved videos (same names under another root) still match
    check_alignment(f, 6, [p.replace("/data", "/mnt/other") for p in paths])
    short = save_encoded(tmp_path / "short.npz", np.ones((5, 3), np.float32), paths[:5], [0] * 5, np.zeros(5, bool))
    with pytest.raises(ConfigError, match=r"1 videos of the training manifest are not in the file: /data/v5.mp4"):
        check_alignment(short, 6, paths)
    with pytest.raises(ConfigError, match="has 5 rows but the training manifest has 6"):
        check_alignment(short, 6)  # no manifest paths: the count only
    swapped = save_encoded(tmp_path / "swap.npz", np.ones((6, 3), np.float32), paths[::-1], [0] * 6,
                           np.zeros(6, bool))
    with pytest.raises(ConfigError, match=r"another order .*row 0 is /data/v5.mp4"):
        check_alignment(swapped, 6, paths)
    missing = np.zeros(6, bool)
    missing[[1, 4]] = True
    holes = save_encoded(tmp_path / "holes.npz", np.ones((6, 3), np.float32), paths, [0] * 6, missing)
    with pytest.raises(ConfigError, match=r"2 videos have no IDT descriptors .*v1.mp4, /data/v4.mp4"):
        check_alignment(holes, 6, paths)
    np.save(tmp_path / "plain.npy", np.ones((4, 3), np.float32))
    with pytest.raises(ConfigError, match="has 4 rows"):
        check_alignment(tmp_path / "plain.npy", 6, paths)


@pytest.mark.parametrize("problem,message", [("count", "not in the file"), ("order", "another order"),
                                             ("missing", "no IDT descriptors")])
def test_pretrain_refuses_misaligned_idt_vectors(tiny, tmp_path, capsys, problem, message):
    m = load_manifest(str(tiny))
    paths, n = list(m.paths), len(m)
    feats, missing = np.random.default_rng(0).normal(size=(n, 16)).astype(np.float32), np.zeros(n, bool)
    if problem == "count":
        paths, feats, missing = paths[1:], feats[1:], missing[1:]
    elif problem == "order":
        paths = paths[1:] + paths[:1]
    else:
        missing[2] = True
    bad = save_encoded(tmp_path / "idt.npz", feats, paths, [0] * len(paths), missing)
    run = tmp_path / "run"
    code = main(["pretrain", "la_idt_tiny", f"data.train={tiny}", f"method.cluster_features={bad}",
                 "--run-dir", str(run), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "vidssl: error: " in err and message in err and str(bad) in err
    assert not run.exists()  # refused before the run directory was made


# ----------------------------------------------------------------------------- the workflow


def test_workflow_runs_end_to_end_resumes_and_skips(tiny, tmp_path, capsys, monkeypatch):
    out = tmp_path / "wf"
    args = ["workflow", "la-idt", str(tiny), "--out", str(out), "--recipe", "la_idt_tiny", *TINY, *TINY_IDT,
            "la_joint.train.checkpoint_every_steps=1"]
    # interrupt the joint stage after its first step (a checkpoint exists at step 1)
    original = la.LocalAggregation.after_step

    def interrupted(self, progress):
        original(self, progress)
        if self.cfg.cluster_source == "joint" and progress.step == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(la.LocalAggregation, "after_step", interrupted)
    assert main(args) == 130
    state = json.loads((out / "workflow.json").read_text())["stages"]
    assert [state[s]["status"] for s in ("extract", "fit", "encode", "ir", "la", "la_idt")] == ["done"] * 6
    assert state["la_joint"]["status"] == "interrupted" and "analysis" not in state
    monkeypatch.setattr(la.LocalAggregation, "after_step", original)

    capsys.readouterr()
    assert main(args) == 0
    io = capsys.readouterr()
    assert "resuming" in io.err and "at epoch 0, step 1" in io.err  # the joint stage went on from its checkpoint
    lines = {ln.split()[0]: ln.split()[1] for ln in io.out.split("[workflow] stages:")[1].splitlines()[2:10]}
    assert lines == {"extract": "skipped", "fit": "skipped", "encode": "skipped", "ir": "skipped",
                     "la": "skipped", "la_idt": "skipped", "la_joint": "done", "analysis": "done"}
    with np.load(out / "idt" / "idt_train.npz") as z:
        assert z["features"].shape == (11, 64) and list(z["paths"]) == load_manifest(str(tiny)).paths
    report = json.loads((out / "clusters.json").read_text())
    assert list(report["entries"]) == ["ir", "la", "idt", "la_idt", "la_joint"]
    assert report["columns"] == ["label", "appearance"]
    for entry in report["entries"].values():
        assert set(entry["metrics"]) == {"label", "appearance"} and 0 <= entry["metrics"]["label"]["nmi"] <= 1
    assert all((out / "montages" / f"{e}.png").is_file() for e in report["entries"])
    # LA(IDT) trained on k-means of the IDT vectors, computed once (before its first step)
    ckpt = torch.load(out / "runs" / "la_idt" / "checkpoints" / "last.pt", weights_only=True)
    with np.load(out / "idt" / "idt_train.npz") as z:
        idt = z["features"]
    m = ckpt["config"]["method"]["num_clusterings"]
    k = la_regime(11, m).num_clusters
    how = ckpt["config"]["method"]["cluster_transform"]  # the tiny recipe: "center"
    expected = cluster_features(transform_features(idt, how), k, m, seed=0)
    np.testing.assert_array_equal(ckpt["model"]["cluster_labels"].numpy(), np.stack(expected))
    joint = torch.load(out / "runs" / "la_joint" / "checkpoints" / "last.pt", weights_only=True)
    assert joint["config"]["method"]["cluster_source"] == "joint" and joint["finished"]
    assert joint["config"]["train"]["init_from"].endswith("la_idt/checkpoints/last.pt")

    stamp = (out / "runs" / "ir" / "checkpoints" / "last.pt").stat().st_mtime_ns
    assert main(args) == 0
    text = capsys.readouterr().out
    assert all(ln.split()[1] == "skipped" for ln in text.split("[workflow] stages:")[1].splitlines()[2:10])
    assert "nmi/ari/purity" in text and (out / "runs" / "ir" / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp
    # a finished stage with other settings is not silently reused
    assert main([*args, "idt.max_tracks=50"]) == 2
    assert "--redo extract" in capsys.readouterr().err


def test_workflow_overrides_go_to_recipe_stage_or_every_stage():
    from vidssl.workflow.recipe import load_workflow, split_overrides, stage_overrides

    recipe, groups = split_overrides(["idt.flow=dis", "stages.la=null", "ir.train.epochs=3", "model.width=8",
                                      "la_all.method.num_clusterings=1", "workers=2"])
    assert recipe == ["idt.flow=dis", "stages.la=null", "workers=2"]
    assert groups["ir"] == ["train.epochs=3"] and groups["all"] == ["model.width=8"]
    rec, cli, _ = load_workflow("la_idt_tiny", ["ir.train.epochs=3", "model.width=8", "stages.la=null"])
    assert rec.active_stages() == ["ir", "la_idt", "la_joint"]
    assert stage_overrides(rec, cli, "ir") == ["train.epochs=10", "model.width=8", "train.epochs=3"]  # CLI last
    assert "model.width=8" in stage_overrides(rec, cli, "la_joint")
    with pytest.raises(ConfigError, match="boxes"):
        load_workflow("la_idt_r3d18")  # person boxes are part of the paper recipe
    assert load_workflow("la_idt_r3d18_no_det")[0].idt_options().person == "none"
    with pytest.raises(ConfigError, match="fisher.bogus"):
        load_workflow("la_idt_tiny", ["fisher.bogus=1"])
    with pytest.raises(ConfigError, match="stages.la_idt"):
        load_workflow("la_idt_tiny", ["stages.la_idt=null"])


def test_stage_state_skips_refuses_changed_settings_and_redoes(tmp_path):
    from vidssl.workflow.state import WorkflowState

    calls = []

    def work(redo):
        calls.append(redo)
        return "out", "note"

    state = WorkflowState(tmp_path, ["a", "b"], {})
    state.run("a", {"k": 1}, work)
    state = WorkflowState(tmp_path, ["a", "b"], {})  # a new invocation reads workflow.json
    state.run("a", {"k": 1}, work)
    assert calls == [False] and state.now["a"][0] == "skipped"
    with pytest.raises(ConfigError, match=r"changed: k\b.*--redo a"):
        state.run("a", {"k": 2}, work)
    state.run("a", {"k": 2}, work, redo=True)
    assert calls == [False, True] and state.stages["a"]["status"] == "done"
    # a key added to vidssl since the stage ran is no change at its default, and one otherwise
    before = state.stages["a"]["digest"]
    assert state.run("a", {"k": 2, "new": {"x": 0}}, work, defaults={"new": {"x": 0}}) == before
    assert calls == [False, True] and state.now["a"][0] == "skipped"
    with pytest.raises(ConfigError, match=r"changed: new\b"):
        state.run("a", {"k": 2, "new": {"x": 5}}, work, defaults={"new": {"x": 0}})
    with pytest.raises(ConfigError, match=r"changed: new\b"):
        state.run("a", {"k": 2, "new": {"x": 0}}, work)  # no defaults given: a change

    def broken(redo):
        raise ValueError("no such video")

    with pytest.raises(ValueError):
        state.run("b", {}, broken)
    assert state.stages["b"]["status"] == "failed" and "no such video" in state.stages["b"]["error"]
    assert "failed" in state.summary() and "no such video" in state.summary()
