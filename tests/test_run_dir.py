"""The default run folder: ``train.out / <recipe>-<hash of the settings>``, the same for the
same recipe and overrides (so the same command resumes), another for other settings."""
from pathlib import Path

from vidssl.config import load_config, load_recipe
from vidssl.engine.run_dir import changed_settings, default_run_dir, run_key


def name(recipe, *overrides, supervised=False):
    return default_run_dir(load_recipe(recipe, list(overrides), supervised), prefix=recipe)


def test_same_recipe_and_settings_give_the_same_folder():
    a = name("ir_tiny", "optim.lr=0.1", "train.epochs=3")
    assert a == name("ir_tiny", "train.epochs=3", "optim.lr=1e-1")  # order and spelling of values
    assert a.parent == Path("runs") and a.name.startswith("ir_tiny-") and len(a.name) == len("ir_tiny-") + 10
    # keys that leave the result alone do not name the run: a resume may change them
    assert a.name == name("ir_tiny", "optim.lr=0.1", "train.epochs=3", "data.workers=0", "train.device=cpu",
                          "train.progress=false", "train.keep_snapshots=2", "model.compile=true").name
    assert name("ir_tiny", "optim.lr=0.1", "train.epochs=3", "train.out=/scratch/me") == \
        Path("/scratch/me") / a.name


def test_other_settings_give_another_folder():
    base = name("ir_tiny")
    others = {name("ir_tiny", "optim.lr=0.2"), name("ir_tiny", "train.seed=1"), name("ir_tiny", "train.amp=fp16"),
              name("ir_tiny", "data.train=videos.csv"), name("ir_tiny", supervised=True)}
    assert base not in others and len(others) == 5


def test_a_value_at_its_default_is_not_a_setting():
    """Only what differs from the schema's defaults is hashed: giving a default explicitly is
    the same run, and keys added to the schema later (with defaults) move no folder."""
    plain = load_config(None, ["method.name=ir", "data.train=builtin:train"])
    explicit = load_config(None, ["method.name=ir", "data.train=builtin:train", "optim.lr=0.1",
                                  f"method.temperature={plain.method['temperature']}", "train.keep_snapshots=0"])
    assert changed_settings(plain) == {"data.train": "builtin:train", "method.name": "ir"}
    assert run_key(plain) == run_key(explicit)


def test_train_name_wins_and_the_prefix_defaults_to_method_and_backbone():
    cfg = load_recipe("ir_tiny", ["train.name=mine"])
    assert default_run_dir(cfg, prefix="ir_tiny") == Path("runs/mine")
    assert default_run_dir(load_recipe("ir_tiny", [])).name.startswith("ir_r3d18-")


def test_the_command_trains_in_the_default_folder_and_a_rerun_resumes(tmp_path, capsys):
    """``vidssl pretrain`` twice with the same arguments and no --run-dir: one folder; the
    second run finds the finished checkpoint and trains nothing."""
    from test_cuda import frame_folders

    from vidssl.cli import main

    args = ["pretrain", "supervised_tiny", "model.width=4", "data.num_frames=4", "data.crop_size=16",
            "data.augment.short_side=[16,20]", "data.batch_size=4", "data.workers=0", "train.epochs=1",
            "train.max_steps_per_epoch=1", "train.progress=false", f"train.out={tmp_path}",
            f"data.train={frame_folders(tmp_path / 'frames')}", "data.backend=frames"]
    assert main(args) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == first and "already finished" in err
    assert [p.name for p in tmp_path.iterdir() if p.name != "frames"] == [Path(first).name]

