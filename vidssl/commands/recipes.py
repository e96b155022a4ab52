"""``vidssl recipes`` (every packaged recipe with its description) and
``vidssl config show RECIPE [key=value ...]`` (the resolved config as YAML, what a run's
``config.yaml`` would hold; nothing is trained or rendered).
"""
from __future__ import annotations


def add_parser(sub) -> None:
    r = sub.add_parser("recipes", help="list the packaged recipes (training and workflow) with their descriptions",
                       description=__doc__)
    r.set_defaults(func=run_recipes)

    c = sub.add_parser("config", help="configs: show a recipe resolved with overrides", description=__doc__)
    csub = c.add_subparsers(dest="config_command", metavar="COMMAND")
    csub.required = True
    s = csub.add_parser("show", help="print the resolved config of RECIPE + overrides as YAML")
    s.add_argument("recipe", help="a YAML path or a packaged recipe name (vidssl recipes lists them)")
    s.add_argument("--supervised", action="store_true",
                   help="as vidssl train-supervised resolves it (method.name=supervised)")
    s.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=0.05")
    s.set_defaults(func=run_show)


def run_recipes(args) -> int:
    from vidssl.config import packaged_recipes
    from vidssl.workflow.recipe import WORKFLOW_CONFIGS

    for title, recipes in [("training recipes (vidssl pretrain RECIPE)", packaged_recipes()),
                           ("workflow recipes (vidssl workflow la-idt --recipe RECIPE)",
                            packaged_recipes(WORKFLOW_CONFIGS))]:
        print(title)
        width = max(map(len, recipes), default=0)
        for name, description in recipes.items():
            print(f"  {name:<{width}}  {description}".rstrip())
    return 0


def run_show(args) -> int:
    from vidssl.config import config_yaml, load_recipe

    print(config_yaml(load_recipe(args.recipe, list(args.overrides or []), args.supervised)), end="")
    return 0
