"""Command line: python -m diffusion_core txt2img|img2img ... --out FILE.png, or attention ... --out DIR"""
import argparse
import os
import sys
from pathlib import Path

from diffusion_core import images as image_ops
from diffusion_core.attention_maps import attention_maps, file_name
from diffusion_core.errors import GenerationCancelled, InvalidRequest, ModelLoadError
from diffusion_core.generate import generate
from diffusion_core.models import DEFAULT_MODEL, load_model
from diffusion_core.params import GenerationParams
from diffusion_core.schedulers import SCHEDULER_NAMES

NUMBERING = "With --num-images N > 1 the files are FILE-0.png ... FILE-(N-1).png (image i has seed S+i)."
ATTENTION = ("One image and its cross-attention maps: DIR/image.png, DIR/overlay.png (each pixel in the colour "
             "of the prompt word it attended to most) and DIR/NN-WORD.png per word (negative prompt's too).")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"error: {message}\n")


def size(text: str):
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x512, got {text!r}") from None
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m diffusion_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("txt2img", "img2img", "attention"):
        text = ATTENTION if name == "attention" else NUMBERING
        sub = commands.add_parser(name, help=f"{name}; {text}", description=text)
        sub.error = _Parser.error.__get__(sub)
        sub.add_argument("--model", default=os.environ.get("DIFFUSION_MODEL", DEFAULT_MODEL),
                         help="hub id or local diffusers folder (default: the shipped shapes model)")
        sub.add_argument("--prompt", required=True)
        sub.add_argument("--negative", default="", help="negative prompt")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--steps", type=int, default=None, help="default: the model's recommended steps")
        sub.add_argument("--guidance", type=float, default=None, help="default: the model's recommended guidance")
        sub.add_argument("--scheduler", default=None, help=f"one of {', '.join(SCHEDULER_NAMES)}")
        sub.add_argument("--size", type=size, default=None, help="WxH, multiples of 8 (default: the model's)")
        sub.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
        if name == "attention":
            sub.add_argument("--step", type=int, default=0, help="maps of this step only, 1-based (default 0: all steps)")
            sub.add_argument("--out", type=Path, required=True, help="output folder")
            continue
        sub.add_argument("--engine", choices=["manual", "pipeline"], default="manual")
        sub.add_argument("--num-images", type=int, default=1)
        sub.add_argument("--out", type=Path, required=True, help="output PNG")
        if name == "img2img":
            sub.add_argument("--image", type=Path, required=True, help="init image")
            sub.add_argument("--strength", type=float, default=None,
                             help="how much to change, 0-1 (default: the model's recommended strength)")
    return parser


def output_paths(out: Path, count: int) -> list[Path]:
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix or '.png'}") for i in range(count)]


def params_from(args, defaults) -> GenerationParams:
    width, height = args.size or (defaults["width"], defaults["height"])
    return GenerationParams(
        prompt=args.prompt, negative_prompt=args.negative, seed=args.seed,
        steps=defaults["steps"] if args.steps is None else args.steps,
        guidance=defaults["guidance"] if args.guidance is None else args.guidance,
        scheduler=args.scheduler or defaults["scheduler"], width=width, height=height,
        num_images=getattr(args, "num_images", 1), strength=getattr(args, "strength", None),
        engine=getattr(args, "engine", "manual"),
    )


def run(args) -> list[Path]:
    init_image = image_ops.load_image(args.image) if args.command == "img2img" else None
    model = load_model(args.model, device=args.device)
    params = params_from(args, model.defaults)
    if args.command == "attention":
        return run_attention(model, params, args.step, args.out)
    result = generate(model, params, init_image=init_image)
    paths = output_paths(args.out, len(result.images))
    for image, path in zip(result.images, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        image_ops.save_png(image, path)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{result.engine} engine, {result.steps_run} steps: " + ", ".join(map(str, paths)))
    return paths


def run_attention(model, params, step, out: Path) -> list[Path]:
    maps = attention_maps(model, params)
    step_index = maps.step_index(step)
    out.mkdir(parents=True, exist_ok=True)
    pictures = {"image.png": maps.image, "overlay.png": maps.overlay_image(step_index)}
    for i, word in enumerate(maps.words):
        pictures[file_name(i, word)] = maps.heat_map_image(i, step_index)
    for name, picture in pictures.items():
        image_ops.save_png(picture, out / name)
    for note in maps.notes:
        print(f"note: {note}", file=sys.stderr)
    which = "all steps" if step_index is None else f"step {step_index + 1} of {maps.steps}"
    print(f"attention maps of {len(maps.words)} words ({which}) in {out}: " + ", ".join(pictures))
    return [out / name for name in pictures]


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (InvalidRequest, ModelLoadError, FloatingPointError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (GenerationCancelled, KeyboardInterrupt):
        print("error: cancelled", file=sys.stderr)
        return 130
    return 0
