"""The dense-trajectory paper's full method as one resumable workflow (docs/la_idt.md).

    extract -> fit -> encode -> ir -> [la] -> la_idt -> [la_joint] -> analysis

1. ``extract``: IDT descriptors of every training video (Sec. 3.3; :mod:`vidssl.idt`);
2. ``fit``: PCA (90 % variance) + diagonal GMM (K = 256) on 500 descriptors x up to
   3500 videos, and the count sketch (Sec. 4.2);
3. ``encode``: one power + L2 normalised, count-sketched Fisher vector per video,
   N x 2000, with the manifest order (``OUT/idt/idt_train.npz``);
4. ``ir``: Video IR warm-up (40 epochs in the paper, Sec. 4.2);
5. ``la`` (optional): plain Video LA from the same IR run — Table 1's "Video LA", Fig. 2;
6. ``la_idt``: Video LA whose clusters are k-means of the IDT vectors, computed once
   and kept fixed (``method.cluster_source: file``, ``recluster: false``);
7. ``la_joint`` (optional; off = App. A's "Ours\\Tune"): a few epochs of LA re-clustered
   every epoch in the joint space [bank ; IDT] (``cluster_source: joint``);
8. ``analysis``: the clusters of every stage against each label column of the manifest
   (``OUT/clusters.json``) and cluster montages (``OUT/montages/``).

Everything lives under OUT (``idt/``, ``runs/STAGE/``, ``workflow.json``). A finished
stage is skipped; an interrupted one runs again and resumes (extraction per video,
training from ``runs/STAGE/checkpoints/last.pt``); ``redo=STAGE`` starts that stage and
every later one over.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from vidssl.config import Config, _read_recipe, apply_overrides, build_config, find_recipe, to_dict
from vidssl.errors import ConfigError, WorkflowError
from vidssl.workflow.recipe import TRAINING_STAGES, WORKFLOW_CONFIGS, WorkflowRecipe, load_workflow, stage_overrides
from vidssl.workflow.state import WorkflowState, digest

STAGES = ("extract", "fit", "encode", *TRAINING_STAGES, "analysis")
# stage -> the stage whose checkpoint initialises it (train.init_from)
INIT_FROM = {"la": "ir", "la_idt": "ir", "la_joint": "la_idt"}
# stage -> (method, cluster_source) its training recipe must have
EXPECTED = {"ir": ("ir", None), "la": ("la", "bank"), "la_idt": ("la", "file"), "la_joint": ("la", "joint")}


@dataclass(frozen=True)
class Layout:
    """Where the workflow writes under ``out``."""

    out: Path

    @property
    def descriptors(self) -> Path:
        return self.out / "idt" / "descriptors"

    @property
    def fisher_model(self) -> Path:
        return self.out / "idt" / "fisher.npz"

    @property
    def features(self) -> Path:
        return self.out / "idt" / "idt_train.npz"

    def run_dir(self, stage: str) -> Path:
        return self.out / "runs" / stage

    def checkpoint(self, stage: str) -> Path:
        return self.run_dir(stage) / "checkpoints" / "last.pt"


# ----------------------------------------------------------------------------- configs


def manifest_spec(spec: str) -> str:
    """An existing manifest path made absolute (run directories must not depend on the cwd)."""
    p = Path(spec)
    return str(p.resolve()) if p.exists() else str(spec)


def stage_config(recipe: WorkflowRecipe, cli: dict, recipe_dir: Path, stage: str, layout: Layout, spec: str,
                 progress: bool) -> Config:
    """The validated training config of ``stage``: its recipe, the overrides, then the
    wiring (manifest, IDT vectors, initialisation from the previous stage)."""
    # a packaged workflow names packaged training recipes (some share a workflow recipe's name)
    relative = None if recipe_dir.resolve() == WORKFLOW_CONFIGS.resolve() else recipe_dir
    raw = apply_overrides(_read_recipe(find_recipe(getattr(recipe.stages, stage), relative)),
                          stage_overrides(recipe, cli, stage))
    # set directly, not as key=value text: paths must not be read as YAML
    raw.setdefault("data", {})["train"] = spec
    raw.setdefault("train", {})["progress"] = progress
    if stage in INIT_FROM:
        raw["train"]["init_from"] = str(layout.checkpoint(INIT_FROM[stage]))
    if stage in ("la_idt", "la_joint"):
        raw.setdefault("method", {})["cluster_features"] = str(layout.features)
    cfg = build_config(raw)
    method, source = EXPECTED[stage]
    if cfg.method_name != method or (source and cfg.method.get("cluster_source") != source):
        got = cfg.method_name + (f" with cluster_source {cfg.method.get('cluster_source')!r}" if source else "")
        want = method + (f" with method.cluster_source: {source}" if source else "")
        raise ConfigError(f"workflow stage '{stage}' needs a {want} recipe; stages.{stage}="
                          f"{getattr(recipe.stages, stage)} is {got}")
    return cfg


def config_settings(cfg: Config) -> dict:
    """The config as a dict without the keys that do not change the result (those the
    engine lets change between an interrupted run and its resume)."""
    from vidssl.engine.resume import RESUME_FREE_KEYS

    d = to_dict(cfg)
    for key in RESUME_FREE_KEYS:
        *parents, last = key.split(".")
        node = d
        for part in parents:
            node = node.get(part, {})
        node.pop(last, None)
    return d


def la_clusters(cfg: Config, num_videos: int) -> tuple[int, int]:
    """(K, m) of an LA config for ``num_videos`` videos (K from :func:`~vidssl.methods.la_regime.la_regime`
    when unset)."""
    from vidssl.methods.la_regime import la_regime

    m = int(cfg.method.get("num_clusterings", 3))
    k = cfg.method.get("num_clusters") or la_regime(num_videos, m).num_clusters
    return int(k), m


# ----------------------------------------------------------------------------- stages


def _extract(manifest, layout: Layout, recipe: WorkflowRecipe, progress: bool, redo: bool) -> tuple[str, str]:
    from vidssl.idt.extract import extract_manifest

    if redo and layout.descriptors.exists():
        shutil.rmtree(layout.descriptors)
    stats = extract_manifest(manifest.paths, layout.descriptors, recipe.idt_options(), workers=recipe.workers,
                             boxes=recipe.boxes, progress=progress)
    if stats["failed"]:
        listed = "; ".join(f"{p}: {why}" for p, why in stats["failed"][:5])
        raise WorkflowError(f"IDT extraction failed for {len(stats['failed'])} videos ({listed}); remove them from "
                            "the manifest (`vidssl check-videos MANIFEST` lists the unreadable ones) and run again")
    return str(layout.descriptors), (f"{len(manifest)} videos ({stats['done']} extracted now, "
                                     f"{stats['trajectories']} trajectories; {stats['skipped']} done before)")


def _fit(manifest, layout: Layout, recipe: WorkflowRecipe) -> tuple[str, str]:
    from vidssl.idt.pipeline import descriptor_files, fit_fisher

    model, sampled = fit_fisher(descriptor_files(manifest.paths, layout.descriptors), recipe.fisher_config())
    model.save(layout.fisher_model)
    dims = "+".join(str(b.dim) for b in model.blocks)
    return str(layout.fisher_model), (f"{sampled} descriptors; PCA {dims} dims, K={model.cfg.components}, "
                                      f"Fisher vector {model.fv_dim} -> {model.out_dim}")


def _encode(manifest, layout: Layout, progress: bool) -> tuple[str, str]:
    from vidssl.idt.fisher import FisherModel
    from vidssl.idt.pipeline import descriptor_files, encode_files, save_encoded

    model = FisherModel.load(layout.fisher_model)
    feats, missing = encode_files(descriptor_files(manifest.paths, layout.descriptors), model, progress=progress)
    if missing.any():
        raise WorkflowError(f"{int(missing.sum())} videos have no descriptor file; run the extract stage again "
                            "(--redo extract)")
    save_encoded(layout.features, feats, manifest.paths, manifest.labels, missing)
    empty = int((abs(feats).sum(1) == 0).sum())
    note = f"{len(feats)} x {feats.shape[1]}" + (f"; {empty} videos without trajectories (zero rows)" if empty else "")
    return str(layout.features), note


def _train(cfg: Config, run_dir: Path, redo: bool) -> tuple[str, str]:
    from vidssl.engine.trainer import train

    train(cfg, run_dir=run_dir, resume=not redo)  # resumes from run_dir/checkpoints/last.pt
    summary = run_dir / "summary.json"
    if not summary.is_file():  # the engine found the run finished and returned at once
        return str(run_dir), f"{cfg.train.epochs} epochs"
    s = json.loads(summary.read_text())
    return str(run_dir), f"{s['epochs']} epochs, final loss {s['final_loss']:.4f}"


def _finished(run_dir: Path) -> bool:
    """The run's last checkpoint says it finished (read memory-mapped: only the flag is needed)."""
    import torch

    path = run_dir / "checkpoints" / "last.pt"
    try:
        return bool(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("finished"))
    except Exception:  # noqa: BLE001 - missing or unreadable: not finished, the stage runs (and resumes)
        return False


# ----------------------------------------------------------------------------- the workflow


def run_la_idt(manifest: str, out: str | Path, recipe: str = "la_idt_r3d18", overrides: list[str] = (),
               redo: Optional[str] = None, progress: bool = False) -> dict:
    """Run (or resume) the workflow on the training manifest ``manifest`` into ``out``.

    Returns {"state": workflow.json records, "clusters": the cluster report or None,
    "final": the final encoder's checkpoint}.
    """
    from vidssl.data.builtin import open_manifest
    from vidssl.workflow.analysis import analyse, format_report

    rec, cli, recipe_path = load_workflow(recipe, overrides)
    if redo is not None and redo not in STAGES:
        raise ConfigError(f"bad value for --redo: {redo!r} (allowed: {', '.join(STAGES)})")
    layout, spec = Layout(Path(out).resolve()), manifest_spec(manifest)
    active = rec.active_stages()
    configs = {s: stage_config(rec, cli, recipe_path.parent, s, layout, spec, progress) for s in active}
    d = configs["ir"].data
    videos = open_manifest(spec, format=d.format, root=d.root, split=d.split, label_column=d.label_column)
    state = WorkflowState(layout.out, list(STAGES), {"workflow": "la-idt", "recipe": str(recipe_path),
                                                     "manifest": spec})
    first_redo = STAGES.index(redo) if redo else len(STAGES)

    def again(stage: str) -> bool:
        return STAGES.index(stage) >= first_redo

    digests = {}
    try:
        settings = {"idt": rec.idt_options().to_dict(), "boxes": rec.boxes, "videos": digest(videos.paths)}
        digests["extract"] = state.run("extract", settings, lambda r: _extract(videos, layout, rec, progress, r),
                                       redo=again("extract"))
        settings = {"fisher": dataclasses.asdict(rec.fisher_config()), "in": digests["extract"]}
        digests["fit"] = state.run("fit", settings, lambda r: _fit(videos, layout, rec), redo=again("fit"),
                                   done_ok=layout.fisher_model.is_file)
        digests["encode"] = state.run("encode", {"in": [digests["extract"], digests["fit"]]},
                                      lambda r: _encode(videos, layout, progress), redo=again("encode"),
                                      done_ok=layout.features.is_file)
        for stage in TRAINING_STAGES:
            if stage not in configs:
                state.mark_off(stage)
                continue
            inputs = [digests[INIT_FROM[stage]]] if stage in INIT_FROM else []
            if stage in ("la_idt", "la_joint"):  # they cluster the IDT vectors
                inputs.append(digests["encode"])
            run_dir = layout.run_dir(stage)
            defaults = {"config": config_settings(build_config({"method": {"name": configs[stage].method_name}}))}
            digests[stage] = state.run(stage, {"config": config_settings(configs[stage]), "in": inputs},
                                       lambda r, c=configs[stage], p=run_dir: _train(c, p, r),
                                       redo=again(stage), done_ok=lambda p=run_dir: _finished(p), defaults=defaults)
        k, m = la_clusters(configs["la_idt"], len(videos))
        checkpoints = {s: layout.checkpoint(s) for s in active}

        def analysis(_redo):
            report = analyse(checkpoints, videos, layout.out, k, m, rec.analysis)
            return str(layout.out / "clusters.json"), f"{len(report['entries'])} clusterings compared"

        settings = {"opts": dataclasses.asdict(rec.analysis), "k": k, "m": m, "in": [digests[s] for s in active]}
        state.run("analysis", settings, analysis, redo=again("analysis"),
                  done_ok=(layout.out / "clusters.json").is_file)
    finally:
        print("\n[workflow] stages:\n" + state.summary(), flush=True)
    report = json.loads((layout.out / "clusters.json").read_text())
    print(f"\n[workflow] clusters of every stage vs the labels of {spec} (mean over m clusterings):\n"
          + format_report(report))
    final = layout.checkpoint("la_joint" if "la_joint" in configs else "la_idt")
    print(f"\n[workflow] final encoder: {final}")
    return {"state": state.stages, "clusters": report, "final": str(final)}
