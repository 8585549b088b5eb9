"""The image command's options (``nst CONTENT STYLE -o OUT``), also the base of ``nst batch`` and the fast mode.

The engine's options come from :data:`nst.optimise.settings.OPTIONS`.

Only the command line's own options (files, method, progress and pictures) are
written here; each engine option, its default, help and number check is defined
once in :mod:`nst.optimise.settings`.
"""

from __future__ import annotations

import argparse

from nst.commands.common import Parser, number
from nst.commands.registry import commands_help
from nst.optimise.settings import DEFAULT_CONTENT_WEIGHT, DEFAULT_STYLE_WEIGHT, NUMBERS, OPTIONS, PER_SCALE, Number

# CLI-only defaults (the engine's live in nst.optimise.settings; each is defined once).
DEFAULT_PRINT_EVERY = 0  # 0: the progress bar only
DEFAULT_SAVE_EVERY = 0  # 0: no intermediate images
DEFAULT_GIF_FRAMES = 60  # frames in the --gif animation (about)
GROUPS = ("size", "style", "optimisation", "method", "progress and pictures")
# Flags that shape the optimisation only: refused with --method fast, and in a fast batch.
OPTIMISE_ONLY = ("iterations", "learning_rate", "optimizer", "init", "noise_ratio", "seed", "content_weight",
                 "style_weight", "tv_weight", "distribution_weight", "content_layer", "style_layers", "pooling",
                 "multiscale", "min_size", "tile", "print_every", "save_every", "gif")

EXAMPLES = """\
examples:
  nst images/tubingen.jpg images/starry_night.jpg -o out.png
  nst photo.jpg a.jpg b.jpg --style-blend-weights 3 1 -o out.png      # 75% a, 25% b
  nst photo.jpg art.jpg --preserve-colors --optimizer adam -o out.png
  nst photo.jpg art.jpg --size 1024 --iterations 120,60,30,10 -o big.png   # one count per scale
  nst photo.jpg art.jpg --style-layers relu1_1:0.1,relu2_1:0.2,relu3_1:0.7 -o out.png

Beside OUT it writes OUT_compare.png (content | style(s) | result),
OUT_costs.png (costs against iteration) and OUT.json (the full configuration,
the seed, final costs and cost history: enough to reproduce the run).
Weights: the normalised VGG-19 (Gatys et al. 2016) gives small costs; the
default weights (content {content:g}, style {style:g}) paint the photo over, where the
course's alpha and beta (10, 40) leave a textured photo.
"""


def _schedule(field):
    """Parser of a per-scale option: ``N`` (every scale) or ``N,N,...`` (one per scale, coarse to fine)."""
    parse = number(NUMBERS[field])

    def parse_schedule(text):
        values = tuple(parse(part.strip()) for part in text.split(","))
        return values[0] if len(values) == 1 else values

    return parse_schedule


def _engine_option(group, option) -> None:
    """Add one nst.optimise.settings.Option to an argparse group."""
    extra = {"default": option.default_value(), "help": option.help}
    if isinstance(extra["default"], bool):
        extra["action"] = argparse.BooleanOptionalAction if extra["default"] else "store_true"
        if not extra["default"]:
            del extra["default"]
    elif option.field in PER_SCALE:
        extra["type"] = _schedule(option.field)
    elif option.field in NUMBERS:
        spec = NUMBERS[option.field]
        if option.cli_minimum is not None:
            spec = Number(spec.kind, minimum=option.cli_minimum)
        extra["type"] = number(spec)
    for key in ("choices", "metavar"):
        if getattr(option, key) is not None:
            extra[key] = getattr(option, key)
    if option.many:
        extra["nargs"] = "+"
    group.add_argument(option.flag, **extra)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="nst", description="Neural style transfer (Gatys, Ecker and Bethge 2015) with VGG-19: "
                "redraw CONTENT in the style of STYLE.",
                epilog=EXAMPLES.format(content=DEFAULT_CONTENT_WEIGHT, style=DEFAULT_STYLE_WEIGHT) + commands_help(),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("content", metavar="CONTENT", help="content image (JPEG, PNG, ...; EXIF orientation honoured)")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="one or more style images")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="result image (.png or .jpg)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT and its companion files if they exist")
    groups = {name: p.add_argument_group(name) for name in GROUPS}
    for option in OPTIONS:
        _engine_option(groups[option.group], option)
    groups["optimisation"].add_argument(
        "--weights", default=None, metavar="PATH",
        help="VGG-19 .mat file (default: the project's, see `python -m nst.weights`)")
    _method_options(groups["method"])
    _progress_options(groups["progress and pictures"])
    return p


def _method_options(g) -> None:
    g.add_argument("--method", choices=("optimise", "fast"), default="optimise",
                   help="optimise: Gatys et al.'s optimisation of the pixels (minutes); fast: one pass through "
                        "the AdaIN network of Huang and Belongie 2017 (about a second), see nst.commands.fast "
                        "(default: %(default)s)")
    g.add_argument("--alpha", type=number(Number(float, minimum=0, maximum=1)), default=None,
                   help="--method fast: 0 decodes the content, 1 is full style (default: 1)")
    g.add_argument("--mask", metavar="IMAGE", default=None,
                   help="--method fast with two styles: the first where IMAGE is white, the second where black")
    g.add_argument("--style-size", type=number(Number(int, minimum=0)), default=None,
                   help="--method fast: long side of the style images, 0 for their own size "
                        "(default: SIZE x --style-scale)")


def _progress_options(g) -> None:
    count = number(Number(int, minimum=0))
    g.add_argument("--print-every", type=count, default=DEFAULT_PRINT_EVERY, metavar="N",
                   help="print the costs every N iterations, 0 for never (default: %(default)s)")
    g.add_argument("--save-every", type=count, default=DEFAULT_SAVE_EVERY, metavar="N",
                   help="save OUT_<iteration> every N iterations, 0 for never (default: %(default)s)")
    g.add_argument("--gif", action="store_true", help=f"also write OUT.gif, about {DEFAULT_GIF_FRAMES} frames "
                                                       "of the progress")
    g.add_argument("--no-pictures", action="store_true", help="skip OUT_compare.png and OUT_costs.png")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
