"""The typed config: recipes, inheritance, overrides and one-line errors (exit 2)."""
import subprocess
import sys

import pytest

from vidssl.cli import main
from vidssl.config import PACKAGED_CONFIGS, apply_overrides, build_config, dump_config, load_config, parse_override
from vidssl.errors import ConfigError


def test_defaults_follow_the_large_scale_study():
    cfg = load_config(None)
    a = cfg.data.augment
    assert a.short_side == (256, 320) and a.color_strength == 0.5 and a.color_p == 0.8
    assert a.grayscale_p == 0.2 and a.blur_p == 0.5 and a.blur_sigma == (0.1, 2.0)
    assert (cfg.data.num_frames, cfg.data.stride, cfg.data.crop_size) == (8, 8, 224)
    assert cfg.method == {"name": "supervised", "dropout": 0.5, "label_smoothing": 0.0, "freeze_stages": 0, "l2sp": 0.0,
                          "feature_bn": False, "pool_views": False, "multi_label": False}


def test_overrides_are_typed_and_nested():
    cfg = load_config("supervised_tiny", ["optim.lr=0.5", "data.augment.flip=false", "data.t_max=null",
                                          "data.augment.short_side=[70, 90]", "train.epochs=3"])
    assert cfg.optim.lr == 0.5 and cfg.data.augment.flip is False and cfg.data.t_max is None
    assert cfg.data.augment.short_side == (70, 90) and cfg.train.epochs == 3
    # int is accepted where a float is expected, and converted
    assert isinstance(load_config(None, ["optim.lr=1"]).optim.lr, float)
    # exponent notation without a dot, which YAML 1.1 reads as a string, is a float too
    assert load_config(None, ["optim.weight_decay=1e-4"]).optim.weight_decay == 1e-4
    assert load_config(None, ["optim.lr=-2.5E+1"]).optim.lr == -25.0
    with pytest.raises(ConfigError, match="optim.lr"):
        load_config(None, ["optim.lr=1e"])
    with pytest.raises(ConfigError, match="data.stride"):  # an int key stays an int key
        load_config(None, ["data.stride=1e2"])


def test_recipe_inheritance():
    cfg = load_config("supervised_2d_tiny")
    assert cfg.model.backbone == "resnet2d18"  # own
    assert cfg.model.width == 16 and cfg.data.crop_size == 56  # from tiny_base through supervised_tiny
    assert cfg.data.views == 1  # from supervised_tiny


@pytest.mark.parametrize("override, needle", [
    ("data.fram=3", "unknown key 'data.fram'"),
    ("dat.frames=3", "unknown key 'dat'"),
    ("data.modality=xyz", "'data.modality'"),
    ("data.num_frames=abc", "'data.num_frames'"),
    ("data.num_frames=0", "'data.num_frames'"),
    ("optim.name=adagrad", "one of 'sgd', 'lars'"),
    ("method.name=nosuchmethod", "'method.name'"),
    ("method.dropout=high", "'method.dropout'"),
    ("method.nosuchkey=1", "unknown key 'method.nosuchkey'"),
    ("data.augment.area=[0.9, 0.1]", "low > high"),
    ("noequals", "expected key=value"),
])
def test_bad_keys_and_values_name_the_key(override, needle):
    with pytest.raises(ConfigError) as e:
        load_config("supervised_tiny", [override])
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_key_lists_allowed_keys():
    with pytest.raises(ConfigError, match="allowed: .*num_frames"):
        load_config(None, ["data.nframes=4"])


def test_missing_recipe_lists_packaged_ones():
    with pytest.raises(ConfigError, match="supervised_tiny"):
        load_config("no_such_recipe")


def test_every_packaged_recipe_validates():
    recipes = sorted(PACKAGED_CONFIGS.glob("*.yaml"))
    assert len(recipes) >= 4
    for path in recipes:
        load_config(path)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config("supervised_tiny", ["optim.lr=0.25"])
    dump_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg


def test_parse_override_reads_yaml_values():
    assert parse_override("a.b=0.1") == (["a", "b"], 0.1)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=text") == (["a"], "text")
    assert apply_overrides({"a": {"b": 1}}, ["a.c=2"]) == {"a": {"b": 1, "c": 2}}
    with pytest.raises(ConfigError):
        build_config({"data": 3})


def test_cli_config_error_exits_2_with_one_line(tmp_path, capsys):
    code = main(["eval", "knn", "--checkpoint", "random", "--config", "supervised_tiny",
                 "--train", "x.csv", "--test", "y.csv", "data.fram=3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "unknown key 'data.fram'" in err[0]


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "vidssl", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("pretrain", "train-supervised", "eval", "data", "check-videos", "demo"):
        assert command in out.stdout
