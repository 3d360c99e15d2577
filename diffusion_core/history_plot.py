"""The noise schedule of a recorded run as a table and as a matplotlib chart with a marker at one step.

σ and the signal-to-noise ratio share a log axis (both are ratios, no unit); the latents' RMS
(root mean square of x_t after each step, in latent units) has its own axis on the right.
Sigma-type schedulers (Euler, LMS) carry x_t = x0 + σ·ε, so their RMS falls with σ;
DDPM-type ones keep it near 1.
"""
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from diffusion_core.history import RunHistory
from diffusion_core.schedulers import LABELS

COLUMNS = ("step", "timestep", "sigma", "one_minus_alpha_bar", "snr", "latent_rms")


def schedule_rows(history: RunHistory) -> list[dict]:
    """One row per step of the run: the schedule's numbers and, where recorded, the latents' RMS."""
    rows = history.schedule.rows()
    for row in rows:
        step = history.steps.get(row["step"] - 1)
        row["latent_rms"] = float(step.latents.pow(2).mean().sqrt()) if step is not None else None
    return rows


def schedule_chart(history: RunHistory, marker_step: int) -> Image.Image:
    """σ and SNR per step (log scale) and the latents' RMS, with a vertical marker at `marker_step` (1-based).

    The chart is drawn once per run; a scrub only draws the marker on a copy (matplotlib's own
    transform places it), which keeps a scrub's answer fast.
    """
    cached = history.decoded.get(("chart",))
    if cached is None:
        cached = _chart_without_marker(history)
        history.decoded.put(("chart",), cached, cached[0].width * cached[0].height * 3)
    chart, to_pixel_x, (top, bottom) = cached
    chart = chart.copy()
    x = to_pixel_x(marker_step)
    draw = ImageDraw.Draw(chart)
    for y in range(round(top), round(bottom), 8):  # dashed
        draw.line([(x, y), (x, min(y + 4, bottom))], fill="black", width=1)
    draw.text((x + 3, bottom - 14), f"step {marker_step}", fill="black", font=ImageFont.load_default(size=11))
    return chart


def _chart_without_marker(history: RunHistory):
    rows = schedule_rows(history)
    steps = [r["step"] for r in rows]
    figure = Figure(figsize=(6.4, 3.4), dpi=100, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    axis.semilogy(steps, [r["sigma"] for r in rows], color="tab:blue", label="σ (noise level)")
    positive = [(r["step"], r["snr"]) for r in rows if 0 < r["snr"] < float("inf")]
    axis.semilogy(*zip(*positive), color="tab:orange", label="SNR = ᾱ/(1−ᾱ) = 1/σ²")
    axis.set_xlabel("denoising step")
    axis.set_ylabel("σ and SNR (ratios, log scale)")
    norm_axis = axis.twinx()
    recorded = [(r["step"], r["latent_rms"]) for r in rows if r["latent_rms"] is not None]
    norm_axis.plot(*zip(*recorded), color="tab:green", marker=".", label="RMS of x_t after the step")
    norm_axis.set_ylabel("latent RMS (latent units)")
    norm_axis.set_ylim(bottom=0)
    lines = axis.get_lines() + norm_axis.get_lines()
    figure.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="outside lower center", ncols=3)
    axis.set_title(f"{LABELS[history.params.scheduler]} schedule, {history.total} steps", fontsize=10)
    canvas.draw()
    height = figure.bbox.height
    box = axis.get_window_extent()
    (x0, _), (x1, _) = axis.transData.transform([(0, 1), (1, 1)])
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    return image, (lambda step: x0 + (x1 - x0) * step), (height - box.y1, height - box.y0)
