"""The guidance grid's measurements (diffusion_core/compare/guidance_effect.py) as curves against guidance."""
import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt  # noqa: E402

from diffusion_core.compare.guidance_effect import COLUMNS  # noqa: E402

CURVES = [  # column, legend
    ("saturation", "saturation (mean HSV S)"),
    ("contrast", "contrast (std of luma)"),
    ("distance to guidance 1", "distance to the guidance-1 image (mean |ΔRGB|)"),
    ("prompt words read back", "prompt words the shapes classifier reads back"),
]


def effect_plot(effect):
    """One line per measurement, all on 0-1, guidance on a log axis (the seed grid spans 0.25 to 20)."""
    figure, axes = plt.subplots(figsize=(8, 3.6), dpi=100)
    guidances = [row["guidance"] for row in effect.rows]
    for column, legend in CURVES:
        values = [row[column] for row in effect.rows]
        if all(v is None for v in values):
            continue  # the classifier reads only the shipped shapes model's images
        axes.plot(guidances, [float("nan") if v is None else v for v in values], marker="o", label=legend)
    axes.set_xscale("log")
    axes.set_xticks(guidances, [f"{g:g}" for g in guidances])
    axes.minorticks_off()
    axes.set_xlabel("guidance (log scale)")
    axes.set_ylabel("measured value (0 to 1)")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    axes.set_title("Measured per cell: the same seed, more guidance")
    figure.tight_layout()
    plt.close(figure)  # gradio renders it; pyplot must not keep every figure alive
    return figure


