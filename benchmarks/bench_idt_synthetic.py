"""IDT Fisher vectors on the built-in dataset (motion classes crossed with appearance).

  python benchmarks/bench_idt_synthetic.py [--videos 160] [--workers 2] [--components 32]

Renders the built-in dataset (vidssl.data.synthetic), extracts IDT (default options),
fits PCA (90%) + GMM, encodes count-sketched 2000-d Fisher vectors, and reports:
- linear classifier (logistic regression) on the IDT vectors vs a linear probe on
  frozen random-init r3d18 (width 16) pooled features, on the motion labels (test accuracy);
- k-means (K = number of motion classes) on the IDT vectors: NMI with the motion labels
  and with the appearance labels.
K of the GMM is smaller than the paper's 256 by default because a few hundred tiny
videos give only a few thousand descriptors (--components 256 works with more videos).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def random_features(manifest, frames: int = 16, stride: int = 2) -> np.ndarray:
    """Pooled conv5 features of frozen random-init r3d18 (width 16), the centre clip."""
    import torch

    from vidssl.data.video import probe, read_frames
    from vidssl.models import build_backbone

    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = build_backbone("r3d18", width=16).eval()
    out = []
    mean = torch.tensor([0.45, 0.45, 0.45]).view(3, 1, 1, 1)
    std = torch.tensor([0.225, 0.225, 0.225]).view(3, 1, 1, 1)
    with torch.no_grad():
        for path in manifest.paths:
            n = probe(path).num_frames
            start = max(0, (n - frames * stride) // 2)
            idx = [min(start + i * stride, n - 1) for i in range(frames)]
            x = torch.from_numpy(read_frames(path, idx)).float().div(255).permute(3, 0, 1, 2)
            out.append(net(((x - mean) / std)[None])[0].numpy())
    return np.stack(out)


def probe_accuracy(xtr, ytr, xte, yte) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(xtr)
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(sc.transform(xtr), ytr)
    return float((clf.predict(sc.transform(xte)) == yte).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/vidssl_bench_idt_synth")
    ap.add_argument("--videos", type=int, default=160)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--components", type=int, default=32)
    ap.add_argument("--pca", default="variance", choices=["variance", "per_type"])
    ap.add_argument("--seed", type=int, default=0)
    try:  # benchmarks/results_doc.py: on sys.path[0] when run as `python benchmarks/bench_idt_synthetic.py`
        from results_doc import add_doc_argument, provenance, section_name, write_section
    except ModuleNotFoundError:  # python -m benchmarks.bench_idt_synthetic
        from benchmarks.results_doc import add_doc_argument, provenance, section_name, write_section
    add_doc_argument(ap)
    args = ap.parse_args()

    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score as nmi

    from vidssl.data.builtin import open_manifest
    from vidssl.data.synthetic import make_synthetic
    from vidssl.idt.extract import descriptor_file, extract_manifest, load_descriptors
    from vidssl.idt.fisher import FisherConfig, FisherModel, sample_rows
    from vidssl.idt.options import IDTOptions

    out = Path(args.out)
    files = make_synthetic(out / "data", videos=args.videos, seed=args.seed)
    train = open_manifest(files["train"])
    test = open_manifest(files["test"])
    opts = IDTOptions()
    t = time.perf_counter()
    for m in (train, test):
        extract_manifest(m.paths, out / "desc", opts, workers=args.workers, progress=False)
    print(f"extracted IDT of {len(train) + len(test)} videos in {time.perf_counter() - t:.1f}s")

    desc = lambda m: [descriptor_file(out / "desc", p) for p in m.paths]  # noqa: E731
    cfg = FisherConfig(pca=args.pca, components=args.components, seed=args.seed)
    samples = sample_rows(desc(train), cfg, load_descriptors)
    model = FisherModel.fit(samples, cfg, opts)
    enc = lambda m: np.stack([model.encode([load_descriptors(f)]) for f in desc(m)])  # noqa: E731
    xtr, xte = enc(train), enc(test)
    ytr, yte = np.asarray(train.labels), np.asarray(test.labels)
    n_traj = [len(load_descriptors(f)) for f in desc(train)]
    print(f"{len(samples)} sampled descriptors (median {int(np.median(n_traj))} trajectories/video); "
          f"PCA ({args.pca}) {[b.dim for b in model.blocks]} dims, K={args.components}, FV {model.fv_dim} -> {model.out_dim}")

    acc_idt = probe_accuracy(xtr, ytr, xte, yte)
    t = time.perf_counter()
    rtr, rte = random_features(train), random_features(test)
    acc_rand = probe_accuracy(rtr, ytr, rte, yte)
    print(f"random-init r3d18 features: {time.perf_counter() - t:.1f}s")
    chance = 1.0 / len(train.classes)
    print(f"[linear, motion labels] IDT FV: {acc_idt:.3f}   random-init r3d18 (w16): {acc_rand:.3f}   "
          f"chance {chance:.3f}")

    x_all = np.concatenate([xtr, xte])
    motion = np.concatenate([ytr, yte])
    app = np.concatenate([np.asarray(train.relabel("appearance").labels), np.asarray(test.relabel("appearance").labels)])
    km = KMeans(n_clusters=len(train.classes), n_init=10, random_state=args.seed).fit(x_all)
    print(f"[k-means K={len(train.classes)} on IDT FV] NMI motion {nmi(motion, km.labels_):.3f}   "
          f"NMI appearance {nmi(app, km.labels_):.3f}")
    # the same figures as one Markdown row, for docs/results.md
    table = ("| videos | PCA | GMM K | FV dims | linear probe, motion: IDT FV | random-init r3d18 (w16) | chance "
             "| k-means NMI motion | k-means NMI appearance |\n|---|---|---|---|---|---|---|---|---|\n"
             f"| {len(train) + len(test)} | {args.pca} | {args.components} | {model.out_dim} | {acc_idt:.3f} "
             f"| {acc_rand:.3f} | {chance:.3f} | {nmi(motion, km.labels_):.3f} | {nmi(app, km.labels_):.3f} |")
    print(f"\n{table}")
    if args.doc:  # --no-doc: print only
        name = section_name("idt_synthetic", args, ap, ["videos", "components", "pca", "seed"])
        path = write_section(name, table + "\n\n" + provenance(), args.doc_path)
        print(f"wrote section {name} of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
