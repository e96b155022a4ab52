"""The comparison report (grouping over seeds, Markdown / HTML), ``vidssl compare`` end to end,
and the cluster montage (``vidssl viz clusters``)."""
import json
import math
import re

import numpy as np
import pytest
import torch

from vidssl.cli import main
from vidssl.errors import ConfigError
from vidssl.viz.report import build_rows, group_runs, mean_std, render_html

TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
        "data.workers=0", "data.test_clips=1", "eval.batch_size=8", "eval.cache=false", "eval.retrieval_queries=2"]


def test_runs_named_seed_k_share_a_row():
    names = ["moco_seed0", "ir", "moco_seed1", "la_seed3", "ir"]
    assert group_runs(names) == [("moco", [0, 2]), ("ir", [1]), ("la", [3]), ("ir (4)", [4])]
    assert [r for r, _ in group_runs(names, group=False)] == ["moco_seed0", "ir", "moco_seed1", "la_seed3", "ir (4)"]


def test_mean_and_spread_over_seeds_by_hand():
    assert mean_std([0.5, 0.7]) == pytest.approx((0.6, math.sqrt(0.02)))  # ddof = 1: (0.01 + 0.01) / 1
    assert mean_std([0.4]) == (0.4, 0.0)
    rows = build_rows(["a_seed0", "a_seed1", "b"], [{"top1": 0.5}, {"top1": 0.7}, {"top1": 0.25}])
    assert [r.name for r in rows] == ["a (2 seeds)", "b"]
    assert rows[0].cell("top1") == "0.600 ± 0.141" and rows[1].cell("top1") == "0.250"
    assert rows[1].cell("missing") == "–"


def test_html_is_self_contained_with_relative_images():
    rows = build_rows(["x<y>"], [{"kNN top1": 0.5}])
    page = render_html("t", "intro & more", rows, ["kNN top1"], [("x<y>", [("t-SNE", "x/tsne.png")])])
    assert "<td>x&lt;y&gt;</td>" in page and "intro &amp; more" in page  # escaped
    assert 'src="x/tsne.png"' in page and "<style>" in page
    assert not re.search(r"(src|href)=\"(https?:|/)", page)  # nothing fetched, nothing absolute


def test_compare_writes_markdown_and_html_with_a_row_per_run(synth_dir, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["compare", "random:supervised_tiny", "random:ir_tiny", "--train", str(synth_dir / "train.csv"),
                 "--test", str(synth_dir / "test.csv"), "--out", str(out), "--evals", "knn,retrieval", "--quiet",
                 *TINY])
    assert code == 0
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    table = [line for line in md.splitlines() if line.startswith("| random:")]
    assert [line.split("|")[1].strip() for line in table] == ["random:supervised_tiny", "random:ir_tiny"]
    assert md.splitlines()[4].split("|")[2:-1] == [" kNN top1 ", " R@1 ", " R@5 "]
    assert page.count("<tr><td>random:") == 2
    for slug in ("random_supervised_tiny", "random_ir_tiny"):
        for pic in ("tsne.png", "retrieval.png"):
            assert (out / slug / pic).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f"]({slug}/{pic})" in md and f'src="{slug}/{pic}"' in page
    data = json.loads((out / "metrics.json").read_text())
    knn = data["runs"][0]["metrics"]["knn"]
    assert knn["views"] == 1 and 0.0 <= knn["top1"] <= 1.0 and "clip_top1" in knn
    assert "random:supervised_tiny" in capsys.readouterr().out  # the table is printed too


def test_compare_rejects_bad_runs_and_evals(tmp_path):
    from vidssl.viz.compare import write_comparison

    for runs, evals, needle in [(["random:no_such_recipe"], "knn", "no_such_recipe"),
                                ([str(tmp_path / "missing_run")], "knn", "missing_run"),
                                (["random:supervised_tiny"], "knn,bogus", "bogus"),
                                ([], "knn", "at least one run")]:
        with pytest.raises(ConfigError, match=needle):
            write_comparison(runs, "builtin:train", "builtin:test", tmp_path / "r", evals=evals, progress=False)


def test_pick_clusters_draws_members_of_each_cluster():
    from vidssl.viz.montage import pick_clusters

    labels = np.array([3, 1, 3, 7, 1, 3, 7, 3, 9])
    picked = pick_clusters(labels, clusters=3, members=2, seed=0)
    assert len(picked) == 3 and len({c for c, _ in picked}) == 3
    for c, idx in picked:
        assert c in (1, 3, 7, 9) and len(idx) == min(2, int((labels == c).sum()))
        assert (labels[idx] == c).all()
    assert len(pick_clusters(labels, clusters=10, members=1)) == 4  # no more clusters than there are


def test_viz_clusters_writes_a_png_from_a_label_file(synth_dir, tmp_path):
    n = sum(1 for _ in open(synth_dir / "train.csv")) - 1
    labels = tmp_path / "labels.npy"
    np.save(labels, np.stack([np.arange(n) % 3, np.arange(n) % 4]))  # [m = 2, N]
    out = tmp_path / "montage.png"
    assert main(["viz", "clusters", "--labels", str(labels), "--manifest", str(synth_dir / "train.csv"),
                 "--clustering", "1", "--clusters", "2", "--members", "3", "--frames", "2", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    h, w = matplotlib.image.imread(out).shape[:2]
    assert w > h > 0  # two rows of three two-frame strips: wider than tall
    np.save(labels, np.arange(n + 1))
    assert main(["viz", "clusters", "--labels", str(labels), "--manifest", str(synth_dir / "train.csv"),
                 "--out", str(out)]) == 2  # does not fit the manifest: a config error


def test_viz_clusters_reads_the_clusterings_of_an_la_checkpoint(synth_dir, tmp_path, capsys):
    from vidssl.engine.checkpoint import FORMAT, save_checkpoint

    n = sum(1 for _ in open(synth_dir / "train.csv")) - 1
    ckpt = {"format": FORMAT, "method": "la", "backbone": "r3d18",
            "config": {"data": {"train": str(synth_dir / "train.csv")}},
            "model": {"cluster_labels": torch.arange(2 * n).view(2, n) % 5, "clustered_epoch": torch.tensor(0)}}
    save_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", ckpt)
    out = tmp_path / "la.png"
    assert main(["viz", "clusters", "--run", str(tmp_path / "run"), "--clusters", "2", "--members", "2",
                 "--frames", "1", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt["model"]["clustered_epoch"] = torch.tensor(-1)
    save_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", ckpt)
    assert main(["viz", "clusters", "--run", str(tmp_path / "run"), "--out", str(out)]) == 2
    assert "not clustered yet" in capsys.readouterr().err
