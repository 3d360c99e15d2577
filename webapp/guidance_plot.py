"""The guidance grid's measurements (diffusion_core/compare/guidance_effect.py) as curves against guidance."""
import matplotlib

matplotlib.use("Agg")  # no display on a server
import matplotlib.pyplot as plt  # noqa: E402

IMAGE_CURVES = [  # column, legend
    ("saturation", "saturation (mean HSV S)"),
    ("contrast", "contrast (std of luma)"),
    ("distance to guidance 1", "distance to the guidance-1 image (mean |ΔRGB|)"),
]
WORDS = "prompt words read back"


def effect_plot(effect):
    """Left: the image measures (0-1 units, y zoomed to the data, so small changes show); right, for the
    shipped shapes model: the share of the prompt's words the classifier reads back. Guidance on a log
    axis (the seed grid spans 0.25 to 20)."""
    guidances = [row["guidance"] for row in effect.rows]
    has_words = any(row[WORDS] is not None for row in effect.rows)
    figure, panels = plt.subplots(1, 2 if has_words else 1, figsize=(10 if has_words else 7, 3.6), dpi=100,
                                  squeeze=False)
    measures = panels[0][0]
    for column, legend in IMAGE_CURVES:
        measures.plot(guidances, [row[column] for row in effect.rows], marker="o", label=legend)
    measures.set_ylabel("measured value (0 to 1)")
    measures.set_title("What the pixels do")
    measures.legend(fontsize=8, loc="best")
    if has_words:
        words = panels[0][1]
        words.plot(guidances, [float("nan") if row[WORDS] is None else row[WORDS] for row in effect.rows],
                   marker="o", color="tab:red")
        words.set_ylim(-0.05, 1.05)
        words.set_ylabel("share of shape, colour, background words")
        words.set_title("What the shapes classifier reads back")
    for axes in panels[0]:
        axes.set_xscale("log")
        axes.set_xticks(guidances, [f"{g:g}" for g in guidances])
        axes.minorticks_off()
        axes.set_xlabel("guidance (log scale)")
        axes.grid(alpha=0.3)
    figure.tight_layout()
    plt.close(figure)  # gradio renders it; pyplot must not keep every figure alive
    return figure
