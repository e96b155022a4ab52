"""What LA's background size k does to its close set, measured on a trained memory bank.

    python benchmarks/bench_la_background.py WORKFLOW_OUT [--ks 16,64,256,600,1200] [--no-doc]

WORKFLOW_OUT is a finished ``vidssl workflow la-idt`` folder (e.g. one of bench_claims.py's
``la_idt_*`` runs). Its IR memory bank (``runs/ir``) gives every video's background set
B_i (top-k of v_i . bank, the video itself excluded); the clusterings stored by its LA stages
(``runs/la``: k-means of the bank; ``runs/la_idt``: k-means of the IDT vectors) give the
close set C_i (videos sharing a cluster with i in any clustering). For each k:

- ``close share``: |C_i n B_i| / k, the share of the background the loss pulls towards
  (the paper: ~3 % at k = 4096 of 240k videos);
- ``other scene``: the share of C_i n B_i whose scene differs from video i's, i.e. the close
  neighbours that come from outside the video's visual neighbourhood; a prior can only
  regroup videos across scenes if those are in the background set;
- ``same motion``: the share of C_i n B_i with i's motion class (what LA + IDT is for).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vidssl.data.builtin import open_manifest  # noqa: E402
from vidssl.engine.checkpoint import load_checkpoint  # noqa: E402
from vidssl.eval.clusters import label_columns  # noqa: E402


def close_statistics(bank: torch.Tensor, clusters: torch.Tensor, scene: np.ndarray, motion: np.ndarray,
                     k: int) -> dict:
    """bank [N, D] (unit rows), clusters [m, N] -> the three shares of the module docstring."""
    n = bank.shape[0]
    sims = bank @ bank.T
    sims.fill_diagonal_(-float("inf"))  # a video is not its own background
    nbr = sims.topk(min(k, n - 1), dim=1).indices  # [N, k]
    close = (clusters[:, nbr] == clusters[:, :, None]).any(0)  # [N, k]
    scene_t, motion_t = torch.as_tensor(scene), torch.as_tensor(motion)
    other = scene_t[nbr] != scene_t[:, None]
    same = motion_t[nbr] == motion_t[:, None]
    count = close.sum().clamp_min(1)
    return {"close_share": float(close.float().mean()), "other_scene": float((close & other).sum() / count),
            "same_motion": float((close & same).sum() / count), "close_per_video": float(close.sum(1).float().mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workflow_out")
    ap.add_argument("--ks", default="16,64,256,600,1200")
    from results_doc import add_doc_argument, provenance, section_name, write_section

    add_doc_argument(ap)
    args = ap.parse_args()
    start = time.time()
    out = Path(args.workflow_out)
    ir = load_checkpoint(out / "runs" / "ir" / "checkpoints" / "last.pt")
    bank = torch.nn.functional.normalize(ir["model"]["memory_bank.bank"].float(), dim=1)
    manifest = open_manifest(ir["config"]["data"]["train"])
    cols = label_columns(manifest)
    scene = np.unique(np.asarray(cols["appearance"]), return_inverse=True)[1]
    motion = np.asarray(cols["label"])
    lines = ["| clusters | K x m | background k | close share | close per video | other scene | same motion |",
             "|---|---|---|---|---|---|---|"]
    for stage, what in (("la", "plain LA (bank)"), ("la_idt", "IDT")):
        ckpt = load_checkpoint(out / "runs" / stage / "checkpoints" / "last.pt")
        clusters = ckpt["model"]["cluster_labels"]
        km = f"{int(clusters.max()) + 1} x {clusters.shape[0]}"
        for k in [int(x) for x in args.ks.split(",") if x]:
            st = close_statistics(bank, clusters, scene, motion, k)
            lines.append(f"| {what} | {km} | {k} | {100 * st['close_share']:.1f}% | {st['close_per_video']:.1f} | "
                         f"{100 * st['other_scene']:.0f}% | {100 * st['same_motion']:.0f}% |")
    table = "\n".join(lines)
    print(table)
    if args.doc:
        write_section(section_name("la_background", args, ap, ["ks"]), table + "\n\n" + provenance(
            (time.time() - start) / 60), args.doc_path)


if __name__ == "__main__":
    main()
