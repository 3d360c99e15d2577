"""Command line: python -m diffusion_core txt2img|img2img|compare-schedulers|strength-sweep|seed-interpolation ...
--out FILE.png, or loop|attention ... --out FOLDER"""
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

LOOP_HELP = ("one image with every step kept: writes result.png, filmstrip.png (x_t and predicted x0 every k "
             "steps), filmstrip.gif, every-step.mp4, schedule.png and attention/step-NN.png (each step's "
             "cross-attention overlay; manual engine) into the --out folder")
ATTENTION = ("One image and its cross-attention maps: DIR/image.png, DIR/overlay.png (each pixel in the colour "
             "of the prompt word it attended to most) and DIR/NN-WORD.png per word (negative prompt's too).")
NUMBERING = "With --num-images N > 1 the files are FILE-0.png ... FILE-(N-1).png (image i has seed S+i)."


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
    for name in ("txt2img", "img2img"):
        sub = commands.add_parser(name, help=f"{name}; {NUMBERING}", description=NUMBERING)
        add_generation_arguments(sub)
        sub.add_argument("--engine", choices=["manual", "pipeline"], default="manual")
        sub.add_argument("--num-images", type=int, default=1)
        if name == "img2img":
            sub.add_argument("--image", type=Path, required=True, help="init image")
            sub.add_argument("--strength", type=float, default=None,
                             help="how much to change, 0-1 (default: the model's recommended strength)")
    add_compare_commands(commands)
    sub = commands.add_parser("loop", help=LOOP_HELP, description=LOOP_HELP)
    add_generation_arguments(sub, out_help="output folder")
    sub.add_argument("--engine", choices=["manual", "pipeline"], default="manual")
    sub.add_argument("--every", type=int, default=0, help="filmstrip: every k steps (default steps // 8)")
    sub.add_argument("--attention", action=argparse.BooleanOptionalAction, default=True,
                     help="record the cross-attention too and write each step's overlay (default: on)")
    sub = commands.add_parser("attention", help=ATTENTION, description=ATTENTION)
    add_generation_arguments(sub, out_help="output folder")
    sub.add_argument("--step", type=int, default=0, help="maps of this step only, 1-based (default 0: all steps)")
    return parser


def add_generation_arguments(sub, out_help="output PNG"):
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
    sub.add_argument("--out", type=Path, required=True, help=out_help)


def add_compare_commands(commands):
    """The side-by-side comparisons (diffusion_core/compare/): each writes one labelled sheet."""
    sub = commands.add_parser("compare-schedulers", help="every scheduler at several step counts, each cell timed")
    add_generation_arguments(sub)
    sub.add_argument("--schedulers", type=comma_list, default=list(SCHEDULER_NAMES))
    sub.add_argument("--step-counts", type=comma_list, default=["5", "10", "25", "50"])
    sub = commands.add_parser("strength-sweep", help="image variation at several strengths in one batch")
    add_generation_arguments(sub)
    sub.add_argument("--image", type=Path, required=True, help="init image")
    sub.add_argument("--strengths", type=comma_list, default=["0.2", "0.4", "0.6", "0.8", "1.0"])
    sub = commands.add_parser("seed-interpolation", help="slerp between two seeds' noise: a strip (and a GIF)")
    add_generation_arguments(sub)
    sub.add_argument("--seed-b", type=int, required=True, help="the seed the last frame is (--seed: the first)")
    sub.add_argument("--frames", type=int, default=8)
    sub.add_argument("--gif", type=Path, default=None, help="also write the animation here")


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def output_paths(out: Path, count: int) -> list[Path]:
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix or '.png'}") for i in range(count)]


def params_from(args, model) -> GenerationParams:
    defaults = model.defaults
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
    init_image = image_ops.load_image(args.image) if getattr(args, "image", None) else None
    model = load_model(args.model, device=args.device)
    if args.command == "loop":
        return run_loop(model, params_from(args, model), args.out, args.every, args.attention)
    if args.command == "attention":
        return run_attention(model, params_from(args, model), args.step, args.out)
    if args.command not in ("txt2img", "img2img"):
        return run_comparison(args, model, init_image)
    params = params_from(args, model)
    result = generate(model, params, init_image=init_image)
    paths = output_paths(args.out, len(result.images))
    for image, path in zip(result.images, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        image_ops.save_png(image, path)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{result.engine} engine, {result.steps_run} steps: " + ", ".join(map(str, paths)))
    return paths


def run_loop(model, params, folder: Path, every: int, attention: bool = True) -> list[Path]:
    from diffusion_core import history_plot, history_views
    from diffusion_core.history import Recorder
    from diffusion_core.history_attention import record_run

    recorder = Recorder(model, params)
    result = record_run(model, recorder, attention)
    history = recorder.history
    folder.mkdir(parents=True, exist_ok=True)
    image_ops.save_png(result.images[0], folder / "result.png")
    paths = [folder / "result.png",
             history_views.save_png(history_views.filmstrip(model, history, every), folder / "filmstrip.png"),
             history_views.animation_gif(model, history, folder / "filmstrip.gif", every),
             history_views.video_mp4(model, history, folder / "every-step.mp4")]
    history_plot.schedule_chart(history, history.total).save(folder / "schedule.png")
    paths.append(folder / "schedule.png")
    written = ", ".join(map(str, paths))
    if history.attention is not None:
        overlays = save_step_overlays(history, folder / "attention")
        paths += overlays
        written += f", {overlays[0].parent}/ (each step's attention overlay)"
    elif attention:
        print(f"note: {history.attention_note}", file=sys.stderr)
    print(f"{result.engine} engine, {history.total} steps kept: {written}")
    return paths


def save_step_overlays(history, folder: Path) -> list[Path]:
    """Each step's attention overlay as folder/step-NN.png (numbered from 1, as the app's scrubber)."""
    folder.mkdir(exist_ok=True)
    digits = len(str(history.total))
    paths = [folder / f"step-{index + 1:0{digits}d}.png" for index in range(history.total)]
    for index, path in enumerate(paths):
        image_ops.save_png(history.attention.overlay_image(step=index), path)
    return paths


def run_comparison(args, model, init_image) -> list[Path]:
    from diffusion_core.compare import scheduler_grid, seed_interpolation, strength_sweep

    params = params_from(args, model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    paths = [args.out]
    if args.command == "compare-schedulers":
        grid = scheduler_grid.compare_schedulers(model, params, args.schedulers, args.step_counts)
        sheet, lines = grid.sheet, [cell.label for cell in grid.cells]
    elif args.command == "strength-sweep":
        sweep = strength_sweep.strength_sweep(model, params, init_image, args.strengths)
        sheet, lines = sweep.sheet, sweep.captions()
    else:
        walk = seed_interpolation.seed_interpolation(model, params, args.seed_b, args.frames)
        sheet, lines = walk.strip, walk.captions()
        if args.gif:
            args.gif.parent.mkdir(parents=True, exist_ok=True)
            args.gif.write_bytes(walk.animation_gif)
            paths.append(args.gif)
    image_ops.save_png(sheet, args.out)
    print("\n".join(lines))
    print("wrote " + ", ".join(map(str, paths)))
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
