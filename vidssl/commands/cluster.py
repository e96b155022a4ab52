"""``vidssl cluster``: k-means clusterings of a run's memory bank (or any saved features),
and how the clusters relate to the labels of the manifest.

    vidssl cluster --run RUN_DIR_OR_CKPT [--stored] [--manifest M] [--clusters K] [--clusterings m]
    vidssl cluster --features FEATS.npy [--manifest M] ...

``--run`` clusters the checkpoint's ``memory_bank.bank`` (IR and LA runs); its rows
follow the run's training manifest, which is the default ``--manifest``. ``--stored``
reports the clusterings an LA checkpoint holds (``cluster_labels``) instead of
clustering again. ``--features`` takes any [N, F] array (.npy, .npz, .pt), e.g. IDT
Fisher vectors, whose rows follow ``--manifest``.

For every clustering and every label column of the manifest (``label`` and the other
columns, e.g. ``appearance`` of the built-in data) it prints NMI, adjusted Rand index
and purity (:func:`vidssl.methods.clustering.cluster_metrics`); ``--json`` writes them,
``--out`` saves the labels as an int64 array [m, N].
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def add_parser(sub) -> None:
    p = sub.add_parser("cluster", help="k-means of a run's memory bank (or saved features) vs. the labels",
                       description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="IR/LA checkpoint (.pt) or run directory: cluster its memory bank")
    src.add_argument("--features", help="an [N, F] array (.npy, .npz, .pt) to cluster")
    p.add_argument("--stored", action="store_true", help="with --run: report the LA checkpoint's own clusterings")
    p.add_argument("--manifest", default=None,
                   help="manifest whose rows match the features (default for --run: the run's training manifest)")
    p.add_argument("--clusters", type=int, nargs="+", default=None,
                   help="K, or one K per clustering (default: the LA run's K, else N/40 as for Kinetics)")
    p.add_argument("--clusterings", type=int, default=None, help="m, clusterings with different seeds (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--niter", type=int, default=20, help="k-means iterations (default 20)")
    p.add_argument("--backend", choices=["auto", "faiss", "torch"], default="auto")
    p.add_argument("--out", default=None, help="save the cluster labels [m, N] as .npy")
    p.add_argument("--json", default=None, help="write the metrics as JSON")
    p.set_defaults(func=run)


def label_columns(manifest) -> dict[str, list]:
    """The manifest's label columns: ``label`` (when labelled) and every other column
    that groups the videos (neither constant nor different for every video)."""
    out = {}
    if any(int(y) >= 0 for y in manifest.labels):
        out["label"] = list(manifest.labels)
    for name, values in manifest.columns.items():
        if name in ("path", "label"):
            continue
        distinct = len(set(values))
        if 1 < distinct < len(values):
            out[name] = list(values)
    return out


def cluster_report(labelings: list[np.ndarray], columns: dict[str, list]) -> dict:
    """{column: {"per_clustering": [metrics...], "mean": {nmi, ari, purity}}}."""
    from vidssl.methods.clustering import cluster_metrics

    report = {}
    for name, truth in columns.items():
        per = [cluster_metrics(lab, np.asarray(truth)) for lab in labelings]
        mean = {k: float(np.mean([m[k] for m in per])) for k in ("nmi", "ari", "purity")}
        report[name] = {"per_clustering": per, "mean": mean}
    return report


def _load_run(path: str):
    from vidssl.commands.evaluate import resolve_checkpoint
    from vidssl.engine.checkpoint import load_checkpoint
    from vidssl.errors import ConfigError

    ckpt = load_checkpoint(resolve_checkpoint(path))
    if "memory_bank.bank" not in ckpt["model"]:
        raise ConfigError(f"checkpoint {path} has no memory bank (method {ckpt.get('method')!r}; "
                          "banks belong to 'ir' and 'la' runs)")
    return ckpt


def stored_clusterings(ckpt: dict, name: str) -> list[np.ndarray]:
    """The m clusterings an LA checkpoint holds (buffer ``cluster_labels`` [m, N]), as int64 arrays [N]
    whose rows follow the run's training manifest."""
    from vidssl.errors import ConfigError

    if "cluster_labels" not in ckpt["model"]:
        raise ConfigError(f"checkpoint {name} holds no cluster labels (not an LA run)")
    if int(ckpt["model"].get("clustered_epoch", 0)) < 0:
        raise ConfigError(f"checkpoint {name} has not clustered yet (still in its IR warm-up)")
    return [row.numpy().astype(np.int64) for row in ckpt["model"]["cluster_labels"]]


def run_manifest(cfg: dict):
    """The training manifest of a run's config (rows of its memory bank and cluster labels)."""
    from vidssl.data.builtin import open_manifest

    d = cfg["data"]
    return open_manifest(d["train"], format=d.get("format", "auto"), root=d.get("root"), split=d.get("split", 1),
                         subset="train", label_column=d.get("label_column", "label"), check_files=False)


def run(args) -> int:
    from vidssl.errors import ConfigError
    from vidssl.methods.clustering import cluster_features, scaled_num_clusters
    from vidssl.methods.feature_file import load_feature_file

    manifest = None
    ks = args.clusters
    if args.run:
        ckpt = _load_run(args.run)
        features = ckpt["model"]["memory_bank.bank"].float().numpy()
        if args.manifest is None:
            manifest = run_manifest(ckpt["config"])
        if ks is None and ckpt["config"]["method"].get("num_clusters"):
            ks = [int(ckpt["config"]["method"]["num_clusters"])]
    else:
        if args.stored:
            raise ConfigError("--stored goes with --run (an LA checkpoint holds its clusterings)")
        features = load_feature_file(args.features)
    if args.manifest is not None:
        from vidssl.data.builtin import open_manifest

        manifest = open_manifest(args.manifest, check_files=False)
    n = len(features)
    if manifest is not None and len(manifest) != n:
        raise ConfigError(f"the features have {n} rows but the manifest {manifest.source} has {len(manifest)} videos")

    if args.stored:
        labelings = stored_clusterings(ckpt, args.run)
        what = "stored clusterings"
    else:
        if ks is None:
            ks = [scaled_num_clusters(n)]
        num = ks if len(ks) > 1 else ks[0]
        labelings = cluster_features(features, num, args.clusterings if len(ks) == 1 else None, seed=args.seed,
                                     niter=args.niter, backend=args.backend)
        what = f"k-means, K = {', '.join(map(str, ks))}"
    print(f"{len(labelings)} clusterings of {n} x {features.shape[1]} features ({what}); "
          f"clusters per clustering: {[int(len(np.unique(lab))) for lab in labelings]}")

    result = {"num_samples": n, "dim": int(features.shape[1]), "clusterings": len(labelings),
              "num_clusters": [int(len(np.unique(lab))) for lab in labelings]}
    if manifest is not None:
        columns = label_columns(manifest)
        if not columns:
            print("the manifest has no label columns: no metrics", file=sys.stderr)
        report = cluster_report(labelings, columns)
        result["metrics"] = report
        width = max([len(c) for c in report] + [6])
        print(f"{'column':<{width}}  clustering    nmi    ari  purity")
        for col, r in report.items():
            for i, m in enumerate(r["per_clustering"]):
                print(f"{col:<{width}}  {i:>10}  {m['nmi']:.3f}  {m['ari']:.3f}  {m['purity']:.3f}")
            mm = r["mean"]
            print(f"{col:<{width}}  {'mean':>10}  {mm['nmi']:.3f}  {mm['ari']:.3f}  {mm['purity']:.3f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        np.save(args.out, np.stack(labelings).astype(np.int64))
        print(f"labels [m, N] saved to {args.out}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0
