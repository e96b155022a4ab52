"""Every manifest format that carries labels, through the commands that read labels.

The same 16 videos of the built-in data (4 motion classes, 2 training and 2 test videos
each) are given as

- ``names``: a CSV whose ``label`` column holds the class names;
- ``ints``: a CSV whose ``label`` column holds integers (the index of the name in sorted
  order, the mapping of ``names``), so the manifest has ``classes == []``;
- ``column_names`` / ``column_ints``: the motion class in a ``motion`` column (names /
  integers) while ``label`` holds the scene, chosen with ``data.label_column=motion`` /
  ``--label-column motion``;
- ``folder``: class sub-folders (``train/<class>/*.mp4``, ``test/<class>/*.mp4``).

Every variant lists the same files in the same order, so ``vidssl pretrain``,
``vidssl train-supervised`` and every ``vidssl eval`` protocol must give exactly the
numbers of ``names``, with 4 classes.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vidssl.cli import main
from vidssl.data.builtin import open_manifest
from vidssl.data.manifests import write_manifest
from vidssl.engine.checkpoint import load_checkpoint
from vidssl.eval.features import make_context
from vidssl.eval.protocols import PROTOCOLS

NUM_CLASSES = 4
VARIANTS = ["names", "ints", "column_names", "column_ints", "folder"]
TINY = ["model.width=4", "data.num_frames=4", "data.stride=2", "data.crop_size=24", "data.test_short_side=28",
        "data.augment.short_side=[28, 32]", "data.batch_size=4", "data.workers=0", "data.test_clips=2",
        "train.epochs=1", "train.max_steps_per_epoch=2", "train.log_every=1", "train.progress=false"]
EVAL = ["eval.cache=false", "eval.batch_size=8", "eval.knn_k=5", "eval.linear_epochs=5", "eval.linear_batch_size=8",
        "eval.linear_clips_epochs=2", "eval.linear_clips_warmup_epochs=0", "eval.linear_clips_batch_size=4",
        "eval.finetune_epochs=2", "eval.finetune_batch_size=4", "eval.finetune_val_fraction=0.5",
        "eval.finetune_milestones=[1]", "eval.fewshot_shots=[1]", "eval.fewshot_draws=2",
        "eval.fewshot_fractions=[0.5, 1.0]", "eval.retrieval_ks=[1, 5]", "eval.retrieval_queries=1"]


@pytest.fixture(scope="module")
def data(synth_dir, tmp_path_factory) -> dict:
    """{variant: {"train": spec, "test": spec, "column": label column or None}}."""
    root = tmp_path_factory.mktemp("label_formats")
    rows = []  # (motion class, scene, source video) of the built-in train and test splits
    for split in ("train", "test"):
        m = open_manifest(synth_dir / f"{split}.csv")
        rows += [(m.classes[y], m.columns["appearance"][i], Path(m.paths[i])) for i, y in enumerate(m.labels)]
    classes = sorted({c for c, _, _ in rows})[:NUM_CLASSES]
    out = {v: {"column": "motion" if v.startswith("column") else None} for v in VARIANTS}
    for split, part in (("train", slice(0, 2)), ("test", slice(2, 4))):
        videos = []  # (class, scene, copied path), in the order of the folder scan: class, then file name
        for c in classes:
            for _, scene, src in sorted((r for r in rows if r[0] == c), key=lambda r: r[2].name)[part]:
                dst = root / split / c / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, dst)
                videos.append((c, scene, dst))
        paths = [p for _, _, p in videos]
        names = [c for c, _, _ in videos]
        ints = [classes.index(c) for c in names]
        scenes = [s for _, s, _ in videos]
        out["names"][split] = write_manifest(root / f"{split}_names.csv", paths, names, appearance=scenes)
        out["ints"][split] = write_manifest(root / f"{split}_ints.csv", paths, ints, appearance=scenes)
        out["column_names"][split] = write_manifest(root / f"{split}_column_names.csv", paths, scenes, motion=names)
        out["column_ints"][split] = write_manifest(root / f"{split}_column_ints.csv", paths, scenes, motion=ints)
        out["folder"][split] = root / split
    for v in out.values():
        v["train"], v["test"] = str(v["train"]), str(v["test"])
    # the scene labels of the column variants are another label space: a run that ignored the
    # label column would not see 4 classes
    assert len(set(open_manifest(out["column_names"]["train"]).labels)) != NUM_CLASSES
    return out


def label_args(variant: dict, style: str) -> list[str]:
    """How the label column is chosen: a config override or the command's option."""
    if variant["column"] is None:
        return []
    return [f"data.label_column={variant['column']}"] if style == "override" else ["--label-column", variant["column"]]


def numbers(metrics: dict) -> dict:
    """The metrics without the paths (run directories, pictures differ between variants)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, str)}


def test_every_variant_reads_the_same_labels(data):
    ref = open_manifest(data["names"]["train"])
    assert ref.classes == sorted(ref.classes) and ref.num_classes == NUM_CLASSES
    for name in VARIANTS:
        for split in ("train", "test"):
            kw = {"label_column": data[name]["column"]} if data[name]["column"] else {}
            m = open_manifest(data[name][split], **kw)
            names = open_manifest(data["names"][split])
            assert m.paths == names.paths, name
            assert m.labels == names.labels, name
            assert m.num_classes == NUM_CLASSES, name
            assert m.classes == ([] if name.endswith("ints") else ref.classes), name


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """train(command, variant) -> the final checkpoint of that run (each run once)."""
    root, runs = tmp_path_factory.mktemp("label_runs"), {}

    def train(command: str, name: str) -> dict:
        if (command, name) not in runs:
            v = data[name]
            recipe, style = {"pretrain": ("supervised_tiny", "override"),
                             "train-supervised": ("simclr_tiny", "option")}[command]
            run = root / f"{command}_{name}"
            code = main([command, recipe, f"data.train={v['train']}", "--run-dir", str(run), *TINY,
                         *label_args(v, style)])
            assert code == 0, (command, name)
            runs[command, name] = load_checkpoint(run / "checkpoints" / "last.pt")
        return runs[command, name]

    return train


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("command", ["pretrain", "train-supervised"])
def test_supervised_training_reads_every_label_format(trained, command, name, capsys):
    ckpt = trained(command, name)
    assert "at least 2 classes" not in capsys.readouterr().err
    assert ckpt["method"] == "supervised" and ckpt["finished"]
    assert ckpt["model"]["classifier.weight"].shape[0] == NUM_CLASSES
    if name != "names":  # the same videos, labels and seed: the same weights as with class names
        ref = trained(command, "names")
        for k, w in ref["model"].items():
            if isinstance(w, torch.Tensor):
                assert torch.equal(ckpt["model"][k], w), (command, name, k)


# ----------------------------------------------------------------------------- evaluation


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory) -> str:
    """One tiny self-supervised run shared by the evaluations (trained on the integer labels)."""
    run = tmp_path_factory.mktemp("label_ckpt") / "simclr"
    assert main(["pretrain", "simclr_tiny", f"data.train={data['ints']['train']}", "--run-dir", str(run),
                 *TINY]) == 0
    return str(run / "checkpoints" / "last.pt")


@pytest.fixture(scope="module")
def evaluated(data, checkpoint, tmp_path_factory):
    """evaluate(protocol, variant) -> the metrics written by ``vidssl eval`` (each once)."""
    root, results = tmp_path_factory.mktemp("label_evals"), {}

    def evaluate(protocol: str, name: str) -> dict:
        if (protocol, name) not in results:
            v, out = data[name], root / f"{protocol}_{name}"
            code = main(["eval", protocol, "--checkpoint", checkpoint, "--train", v["train"], "--test", v["test"],
                         "--json", str(out / "metrics.json"), "--quiet", *label_args(v, "option"),
                         *TINY, *EVAL, f"eval.out_dir={out}"])
            assert code == 0, (protocol, name)
            results[protocol, name] = json.loads((out / "metrics.json").read_text())
        return results[protocol, name]

    return evaluate


def test_eval_context_counts_the_classes_of_every_variant(data, checkpoint):
    for name in VARIANTS:
        v = data[name]
        ctx = make_context(checkpoint, v["train"], v["test"], [*TINY, *EVAL], v["column"], progress=False)
        assert ctx.num_classes() == NUM_CLASSES, name


@pytest.mark.parametrize("name", VARIANTS[1:])
@pytest.mark.parametrize("protocol", sorted(set(PROTOCOLS) - {"detect"}))  # detect's labels are in its boxes CSVs
def test_every_eval_protocol_gives_the_numbers_of_class_names(evaluated, protocol, name):
    ref, got = evaluated(protocol, "names"), evaluated(protocol, name)
    assert got["protocol"] == protocol and got["num_train"] == 8 and got["num_test"] == 8
    assert numbers(got) == numbers(ref)
    assert any(isinstance(x, float) for x in numbers(got).values())  # accuracies were compared


def test_label_column_option_of_eval_overrides_the_config(data, checkpoint, tmp_path):
    # --label-column and eval's data.label_column=... pick the same column
    v = data["column_ints"]
    outs = []
    for how in (["--label-column", "motion"], ["data.label_column=motion"]):
        out = tmp_path / f"{len(outs)}.json"
        assert main(["eval", "knn", "--checkpoint", checkpoint, "--train", v["train"], "--test", v["test"],
                     "--json", str(out), "--quiet", *how, *TINY, *EVAL]) == 0
        outs.append(numbers(json.loads(out.read_text())))
    assert outs[0] == outs[1]


# ----------------------------------------------------------------------------- errors


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("how", ["pretrain", "train-supervised", "eval"])
def test_a_missing_label_column_is_a_one_line_error(data, checkpoint, tmp_path, capsys, how):
    v = data["names"]
    if how == "eval":
        args = ["eval", "knn", "--checkpoint", checkpoint, "--train", v["train"], "--test", v["test"], "--quiet",
                "--label-column", "nope", *TINY, *EVAL]
    else:
        choose = ["data.label_column=nope"] if how == "pretrain" else ["--label-column", "nope"]
        args = [how, "supervised_tiny", f"data.train={v['train']}", "--run-dir", str(tmp_path / "run"), *TINY,
                *choose]
    capsys.readouterr()
    assert main(args) == 1
    err = one_line_error(capsys)
    assert "no label column 'nope'" in err and "path, label, appearance" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_label_column_on_a_folder_is_a_one_line_error(data, checkpoint, capsys):
    v = data["folder"]
    capsys.readouterr()
    assert main(["eval", "knn", "--checkpoint", checkpoint, "--train", v["train"], "--test", v["test"], "--quiet",
                 "--label-column", "motion", *TINY, *EVAL]) == 1
    assert "has only class labels" in one_line_error(capsys)


def test_tsne_colours_integer_labels_by_their_number_of_classes(monkeypatch, tmp_path):
    import matplotlib.pyplot as plt

    from vidssl.viz.tsne import plot_tsne

    asked = []
    get_cmap = plt.get_cmap
    monkeypatch.setattr(plt, "get_cmap", lambda name, *a, **k: asked.append(name) or get_cmap(name, *a, **k))
    labels = np.arange(12)  # 12 classes given as integers: no class names
    plot_tsne(np.random.default_rng(0).normal(size=(12, 2)), labels, [], tmp_path / "t.png")
    plot_tsne(np.random.default_rng(0).normal(size=(12, 2)), labels, [str(i) for i in range(12)], tmp_path / "n.png")
    assert asked == ["tab20", "tab20"]  # tab10 would give classes 0 and 10 the same colour
