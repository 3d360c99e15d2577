"""What keeping a run's history costs, and how fast a step scrub answers (shipped model, CPU).

    python -m benchmarks.loop_history [--repeats 7] [--scrubs 13]

1. A run recording every step (latents and both noise predictions, what the anatomy needs) against a
   plain run, side by side (alternating, median of per-pair ratios). Goal: <= 1.3x. Then, each beside
   a plain run too: the attention capture alone (attention_maps) and both together (history and
   attention maps, what the tab records by default), to read the three ratios side by side.
2. The Inside-the-loop tab's whole answer (that run with attention maps, then every step decoded
   twice, filmstrip, GIF, MP4, gallery and the opened step's view) against a plain run, side by side.
   No goal; reported.
3. Scrubs: the scrub handler's work (StepView.show, attention pictures included, plus the PNG encoding
   gradio does of its images)
   for steps in shuffled order, each beside a plain run (alternating): the first look at a step (its
   two branches' x0 still to decode), then steps seen before (cached decodes). Goal: <= 150 ms; the
   ratio to a plain run says what the time would be on a quieter machine. Then the attention section's
   share: one step scrubbed with the run's attention maps and without them (the same history, its maps
   left out), alternating.
"""
import argparse
import io
import random
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from benchmarks.run import ROOT, machine_description, side_by_side, timed
from diffusion_core import GenerationParams, generate, history_plot, history_views, load_model
from diffusion_core.attention_maps import attention_maps
from diffusion_core.history import MAX_DECODED_BYTES, BoundedCache, Recorder
from diffusion_core.history_attention import record_run


def recorded(model, params, attention=False):
    recorder = Recorder(model, params)
    record_run(model, recorder, attention)
    return recorder.history


def tab_answer(model, params, folder):
    from webapp.loop_tab import StepView

    history = recorded(model, params, attention=True)
    for index in sorted(history.steps):
        for kind in ("xt", "guided"):
            history_views.decoded(model, history, history.steps[index], kind)
    history_views.filmstrip(model, history)
    history_views.animation_gif(model, history, Path(folder) / "a.gif")
    history_views.video_mp4(model, history, Path(folder) / "a.mp4")
    history_views.step_gallery(model, history)
    StepView.show(model, history, history.total)
    return history


def scrub(model, history, number):
    """The scrub handler's work and the PNG encoding of what it returns, as gradio would do it."""
    from webapp.loop_tab import StepView

    for value in StepView.show(model, history, number):
        value = value.get("value") if isinstance(value, dict) else value
        images = [v[0] for v in value] if isinstance(value, list) and value and isinstance(value[0], tuple) else [value]
        for image in images:
            if hasattr(image, "save"):
                image.save(io.BytesIO(), format="PNG")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--scrubs", type=int, default=13, help="steps scrubbed, each beside a plain run")
    args = parser.parse_args()
    model = load_model(str(ROOT / "assets" / "shapes-sd"), device="cpu")
    params = GenerationParams(prompt="a red circle on a blue background", seed=1, steps=25, guidance=7.5,
                              width=128, height=128)
    print(machine_description())
    plain = lambda: generate(model, params)  # noqa: E731
    t_recorded, t_plain, ratio = side_by_side(lambda: recorded(model, params), plain, args.repeats)
    print(f"run with full history vs plain run: {t_recorded:.3f} s vs {t_plain:.3f} s, ratio {ratio:.3f} (goal <= 1.3)")
    for name, run in (("attention capture alone", lambda: attention_maps(model, params)),
                      ("full history + attention maps", lambda: recorded(model, params, attention=True))):
        t_run, t_plain, ratio = side_by_side(run, plain, args.repeats)
        print(f"run with {name} vs plain run: {t_run:.3f} s vs {t_plain:.3f} s, ratio {ratio:.3f}")
    with tempfile.TemporaryDirectory() as folder:
        t_tab, t_plain2, ratio_tab = side_by_side(lambda: tab_answer(model, params, folder), plain, 3)
    print(f"whole Inside-the-loop answer vs plain run: {t_tab:.3f} s vs {t_plain2:.3f} s, ratio {ratio_tab:.2f}")

    history = tab_answer(model, params, tempfile.mkdtemp())  # as the tab leaves it: x_t and guided x0 decoded
    numbers = list(range(1, history.total + 1))
    random.Random(0).shuffle(numbers)
    for name, fresh in (("first look at a step", True), ("step seen before", False)):
        scrubs, plains, ratios = [], [], []
        if not fresh:  # really seen before: the first-look pass reset the cache before each of its steps
            for number in numbers[:args.scrubs]:
                scrub(model, history, number)
        for i, number in enumerate(numbers[:args.scrubs]):
            if fresh:  # as the run leaves it: this step's x_t and guided x0 decoded, the branches not yet
                history.decoded = BoundedCache(MAX_DECODED_BYTES)
                for kind in ("xt", "guided"):
                    history_views.decoded(model, history, history.steps[number - 1], kind)
                history_plot.schedule_chart(history, 1)
            pair = [lambda: scrub(model, history, number), plain]
            first, second = (timed(f) for f in (pair if i % 2 == 0 else pair[::-1]))
            t_scrub, t_plain = (first, second) if i % 2 == 0 else (second, first)
            scrubs.append(t_scrub * 1000); plains.append(t_plain); ratios.append(t_scrub / t_plain)
        print(f"scrub, {name}: median {statistics.median(scrubs):.0f} ms, max {max(scrubs):.0f} ms over "
              f"{len(scrubs)} steps (goal <= 150 ms); plain runs beside them {statistics.median(plains):.3f} s, "
              f"scrub / plain run {statistics.median(ratios):.3f}")
    without = replace(history, attention=None)  # shares the decoded pictures, so only the attention differs
    t_with, t_without, ratio = side_by_side(lambda: scrub(model, history, 7), lambda: scrub(model, without, 7),
                                            args.scrubs)
    print(f"scrub with the attention section vs without: {t_with * 1000:.0f} ms vs {t_without * 1000:.0f} ms, "
          f"ratio {ratio:.2f}")

if __name__ == "__main__":
    main()
