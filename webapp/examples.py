"""Prompt examples per tab: the model's recommended settings, so a click shows what the model does best."""
SHAPES_EXAMPLES = {
    "txt2img": [["a red circle on a blue background", ""], ["a yellow star on a black background", ""],
                ["a white triangle on a green background", ""]],  # + the model's guidance
    "grid": [["a purple square on an orange background", ""], ["a blue star on a yellow background", ""]],
    # prompts whose images often have the negative's colour without it on the tab's default seeds
    # (counts: the model card)
    "negative": [["a circle", "blue"], ["a square on a white background", "black"]],
}
SEED_ARTICLE_EXAMPLES = {  # the seed article's prompts, for real SD models
    "txt2img": [["a photograph of an astronaut riding a horse on mars", "", 9.0]],
    "grid": [["a watercolour painting of a lighthouse at dusk", ""]],
    "negative": [["an astronaut on mars", "human, face"]],
}


def examples_for(model, tab):
    if not model.known_words:
        return SEED_ARTICLE_EXAMPLES[tab]
    if tab == "txt2img":
        return [[prompt, negative, model.defaults["guidance"]] for prompt, negative in SHAPES_EXAMPLES[tab]]
    return SHAPES_EXAMPLES[tab]

