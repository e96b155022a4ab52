"""Workflow recipes: the IDT options, the Fisher-vector options and one training recipe
(plus overrides) per stage, as one YAML file in ``vidssl/configs/workflows``.

A workflow recipe may start from another with ``base: other.yaml`` (ablations do:
``la_idt_r3d18_no_tune.yaml`` is the paper recipe with ``stages.la_joint: null``).
Every key is checked; an unknown one raises :class:`~vidssl.config.ConfigError`.

``key=value`` overrides on the command line go, by their first word, to:

- the recipe itself: ``idt.flow=dis``, ``fisher.components=16``, ``stages.la=null``,
  ``workers=4``, ``boxes=DIR``, ``analysis.montage=false``;
- one training stage: ``ir.train.epochs=1``, ``la_idt.method.num_clusters=12``;
  every LA stage: ``la_all.method.num_clusterings=1``;
- anything else to every training stage: ``model.width=8``, ``train.epochs=1``.

Command-line overrides are applied after the recipe's own, so they win.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from vidssl.config import PACKAGED_CONFIGS, _read_recipe, apply_overrides, from_dict, parse_override
from vidssl.errors import ConfigError

WORKFLOW_CONFIGS = PACKAGED_CONFIGS / "workflows"
TRAINING_STAGES = ("ir", "la", "la_idt", "la_joint")  # in the order they run
LA_STAGES = ("la", "la_idt", "la_joint")
OVERRIDE_GROUPS = ("all", "la_all") + TRAINING_STAGES


@dataclass
class StagesConfig:
    """Training recipe of each stage (packaged name or path); null switches a stage off."""

    ir: Optional[str] = "ir_r3d18"  # Video IR warm-up (Sec. 4.2: 40 epochs before LA)
    la: Optional[str] = None  # plain Video LA from the same IR run (Table 1, Fig. 2); optional
    la_idt: Optional[str] = "la_idt_r3d18"  # LA with the fixed IDT clusters (Sec. 3.3)
    la_joint: Optional[str] = "la_joint_r3d18"  # joint-space tuning; null = App. A's "Ours\Tune"


@dataclass
class OverridesConfig:
    """``key=value`` overrides of the training stages: every stage, every LA stage, one stage."""

    all: list[str] = field(default_factory=list)
    la_all: list[str] = field(default_factory=list)
    ir: list[str] = field(default_factory=list)
    la: list[str] = field(default_factory=list)
    la_idt: list[str] = field(default_factory=list)
    la_joint: list[str] = field(default_factory=list)


@dataclass
class AnalysisConfig:
    """Cluster analysis (``clusters.json``) and montages (the paper's Figs. 2 and 3)."""

    montage: bool = True
    clusters: int = 4  # clusters per montage (each figure of the paper shows 4)
    members: int = 6  # videos per cluster
    frames: int = 3  # frames per video
    seed: int = 0  # which clusters and members are drawn


@dataclass
class WorkflowRecipe:
    workflow: str = "la-idt"
    description: str = ""
    idt: dict = field(default_factory=dict)  # IDTOptions fields (docs/idt.md)
    boxes: Optional[str] = None  # person boxes (file or folder) for idt.person=boxes
    workers: int = 1  # IDT extraction processes
    fisher: dict = field(default_factory=dict)  # FisherConfig fields (vidssl idt fit)
    stages: StagesConfig = field(default_factory=StagesConfig)
    overrides: OverridesConfig = field(default_factory=OverridesConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    def __post_init__(self):
        self.idt_options()
        self.fisher_config()
        if self.workers < 1:
            raise ConfigError(f"bad value for 'workers': {self.workers} (must be >= 1)")
        for stage in ("ir", "la_idt"):
            if not getattr(self.stages, stage):
                raise ConfigError(f"'stages.{stage}' is required by the la-idt workflow (a training recipe name)")
        if self.idt_options().person == "boxes" and not self.boxes:
            raise ConfigError("'idt.person: boxes' needs 'boxes' (a box file, or a folder of <video stem>.txt; "
                              "docs/idt.md), e.g. boxes=DIR; without person boxes use idt.person=none "
                              "(App. A's \"Ours\\Det\": the *_no_det recipes)")
        for key in ("clusters", "members", "frames"):
            if getattr(self.analysis, key) < 1:
                raise ConfigError(f"bad value for 'analysis.{key}': {getattr(self.analysis, key)} (must be >= 1)")

    def idt_options(self):
        from vidssl.errors import IDTOptionError
        from vidssl.idt.options import IDTOptions

        try:
            return IDTOptions.from_dict(self.idt)
        except (IDTOptionError, TypeError) as e:
            raise ConfigError(f"bad 'idt' options: {e}") from None

    def fisher_config(self):
        from vidssl.errors import FisherModelError
        from vidssl.idt.fisher import FisherConfig

        names = [f.name for f in dataclasses.fields(FisherConfig)]
        unknown = sorted(set(self.fisher) - set(names))
        if unknown:
            raise ConfigError(f"unknown key 'fisher.{unknown[0]}' (allowed: {', '.join(names)})")
        try:
            return FisherConfig(**self.fisher)
        except (FisherModelError, TypeError) as e:
            raise ConfigError(f"bad 'fisher' options: {e}") from None

    def active_stages(self) -> list[str]:
        """The training stages that run, in order."""
        return [s for s in TRAINING_STAGES if getattr(self.stages, s)]


def find_workflow_recipe(name_or_path: str | Path) -> Path:
    """A workflow recipe: a path, or a name in ``vidssl/configs/workflows``."""
    p = Path(name_or_path)
    stem = p.name if p.suffix in (".yaml", ".yml") else p.name + ".yaml"
    for c in (p, WORKFLOW_CONFIGS / stem):
        if c.is_file():
            return c
    known = sorted(q.stem for q in WORKFLOW_CONFIGS.glob("*.yaml"))
    raise ConfigError(f"workflow recipe '{name_or_path}' not found (packaged: {', '.join(known)})")


def split_overrides(items: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Command-line ``key=value`` items -> (recipe overrides, {group: training overrides})."""
    recipe_keys = {f.name for f in dataclasses.fields(WorkflowRecipe)}
    recipe, groups = [], {g: [] for g in OVERRIDE_GROUPS}
    for item in items:
        parse_override(item)  # checks the key=value form
        key, value = item.split("=", 1)
        head, _, rest = key.strip().partition(".")
        if head in OVERRIDE_GROUPS and rest:
            groups[head].append(f"{rest}={value}")
        elif head in recipe_keys:
            recipe.append(item)
        else:
            groups["all"].append(item)
    return recipe, groups


def load_workflow(name_or_path: str | Path, overrides: list[str] = ()) -> tuple[WorkflowRecipe, dict, Path]:
    """(recipe with its overrides applied, {group: command-line training overrides}, recipe path)."""
    path = find_workflow_recipe(name_or_path)
    recipe_items, groups = split_overrides(list(overrides))
    raw = apply_overrides(_read_recipe(path), recipe_items)
    return from_dict(WorkflowRecipe, raw), groups, path


def stage_overrides(recipe: WorkflowRecipe, cli: dict, stage: str) -> list[str]:
    """Overrides of one training stage: the recipe's (all, la_all, the stage), then the
    command line's in the same order."""
    groups = ["all"] + (["la_all"] if stage in LA_STAGES else []) + [stage]
    out = [o for g in groups for o in getattr(recipe.overrides, g)]
    return out + [o for g in groups for o in cli.get(g, [])]
