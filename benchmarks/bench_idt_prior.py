"""Which IDT prior carries motion on the benchmark data, and which clustering of it is balanced.

    python benchmarks/bench_idt_prior.py [--out /tmp/vidssl_claims] [--no-doc]

On the benchmark-size built-in dataset (``builtin-bench:``), IDT descriptors of the
training and validation videos are extracted once (la_idt_tiny's options; the folder is
shared with ``bench_claims.py``), then for each Fisher-vector option (GMM size, one PCA
over all descriptors or one per descriptor type) the training vectors fit the model and
the **validation** vectors are clustered with each k-means variant:

- the input k-means sees (:func:`vidssl.methods.clustering.transform_features`, fitted on
  the training vectors): ``none`` (the power + L2 normalised count sketches as encoded),
  ``center`` (minus the mean, then L2), ``whiten`` (PCA-whitened, 256 dims, then L2);
- Euclidean or spherical k-means;
- K = 8 (the number of motion classes) and K from LA's rule for the split's size
  (:func:`vidssl.methods.la_regime.la_regime`).

Each row gives, over three k-means seeds (LA combines m = 3 clusterings), the mean NMI
against the motion labels and against the scene, the worst clustering's largest cluster
share and size entropy (1 = equal sizes), and a linear classifier's motion accuracy on the
same vectors (train -> val). A second table clusters the **training** vectors as LA + IDT
does (K and m from :func:`~vidssl.methods.la_regime.la_regime`, six seeds): the size balance
only, no label is read. Nothing here looks at the
test split. The table goes to docs/results.md (section ``idt_prior``).
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from idt_probe import IDT_OPTIONS, cluster_figures, linear_accuracy, parse_options, split_vectors  # noqa: E402

from vidssl.data.builtin import resolve_builtin  # noqa: E402
from vidssl.eval.clusters import label_columns  # noqa: E402
from vidssl.methods.clustering import (FEATURE_TRANSFORMS, cluster_balance, cluster_features,  # noqa: E402
                                       transform_features)
from vidssl.methods.la_regime import la_regime  # noqa: E402

FISHER_OPTIONS = [{"components": 32}, {"components": 16}, {"components": 64},
                  {"components": 32, "pca": "per_type"}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/vidssl_claims", help="the IDT descriptors go to OUT/idt")
    ap.add_argument("--workers", type=int, default=2)
    from results_doc import add_doc_argument, provenance, write_section

    add_doc_argument(ap)
    args = ap.parse_args()
    start = time.time()
    data = {s: resolve_builtin(f"builtin-bench:{s}") for s in ("train", "val")}
    lines = ["| Fisher vectors | k-means input | spherical | K | NMI motion | NMI scene | largest cluster | "
             "size entropy | linear motion (val) |", "|---|---|---|---|---|---|---|---|---|"]
    for fisher in FISHER_OPTIONS:
        vecs = split_vectors(data, Path(args.out) / "idt", parse_options(IDT_OPTIONS), fisher, args.workers,
                             splits=("train", "val"))
        (tr, mtr), (va, mva) = vecs["train"], vecs["val"]
        linear = linear_accuracy(tr, label_columns(mtr)["label"], va, label_columns(mva)["label"])
        name = f"GMM K = {fisher['components']}, PCA {fisher.get('pca', 'variance')}"
        ks = (8, la_regime(len(va)).num_clusters)
        for how, spherical, k in itertools.product(FEATURE_TRANSFORMS, (False, True), ks):
            f = cluster_figures(transform_features(va, how, fit_on=tr), mva, k, spherical=spherical)
            row = (f"| {name} | {how} | {'yes' if spherical else 'no'} | {k} | {f['nmi_motion']:.3f} | "
                   f"{f['nmi_appearance']:.3f} | {100 * f['largest']:.0f}% | {f['entropy']:.2f} | {linear:.3f} |")
            print(row, flush=True)
            lines.append(row)
    lines += ["", "Training vectors (GMM K = 32, PCA variance), clustered as LA + IDT does, six seeds:", "",
              "| k-means input | K | largest cluster per seed |", "|---|---|---|"]
    vecs = split_vectors(data, Path(args.out) / "idt", parse_options(IDT_OPTIONS), FISHER_OPTIONS[0], args.workers,
                         splits=("train",))
    tr = vecs["train"][0]
    k = la_regime(len(tr)).num_clusters
    for how in FEATURE_TRANSFORMS:
        shares = [cluster_balance(lab, k)["largest_share"]
                  for lab in cluster_features(transform_features(tr, how), k, 6, seed=0)]
        lines.append(f"| {how} | {k} | " + " ".join(f"{100 * v:.0f}%" for v in shares) + " |")
    table = "\n".join(lines)
    print("\n" + table)
    if args.doc:
        write_section("idt_prior", table + "\n\n" + provenance((time.time() - start) / 60), args.doc_path)


if __name__ == "__main__":
    main()
