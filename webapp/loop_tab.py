"""Inside the loop: one run with every step kept; its filmstrip, GIF, MP4 and per-step gallery; a
scrubber over the steps that shows, without re-running, the step's x_t and x0, what classifier-free
guidance does there (each branch's x0 and where they differ), where the words' cross-attention looked
(if the run recorded it), the noise schedule, and the raw latents.

The run's history lives in the server's HistoryStore; the page holds only its id (gr.State).
"""
import gradio as gr

from diffusion_core import history_plot, history_views
from diffusion_core.history import MAX_HISTORY_BYTES, MAX_STORED_RUNS, Recorder, default_every
from diffusion_core.history_attention import attention_summary, record_run
from diffusion_core.params import MAX_STEPS
from diffusion_core.schedulers import LABELS
from webapp.common import guidance_slider, make_params, on_gpu, pinned_gallery, prompt_box, stream, user_error
from webapp.loop_attention_view import StepAttentionView

INTRO = (f"One image, with every step of the loop kept (up to {MAX_HISTORY_BYTES // 2**20} MiB of latents a run; "
         f"a run that would not fit is refused before it starts, with the number of steps that fit; the server "
         f"keeps the last {MAX_STORED_RUNS} runs). Move the step slider to look at any step without running again. "
         "Recording the cross-attention maps too (the manual loop only) makes a run slower: the UNet runs untraced "
         "so that its attention layers can hand out what they looked at.")


class InsideTheLoopTab:
    def __init__(self, slot, store):
        self.slot = slot
        self.store = store

    def build(self, model, settings):
        with gr.Tab("Inside the loop", id="loop"):
            gr.Markdown(INTRO)
            with gr.Row():
                with gr.Column():
                    prompt = prompt_box(model, "a red circle on a blue background")
                    negative = gr.Textbox("", label="Negative prompt")
                    self.guidance = guidance_slider(model.defaults["guidance"])
                    with gr.Row():
                        every = gr.Number(0, precision=0, minimum=0, label="Filmstrip: every k steps (0 = steps // 8)")
                        open_step = gr.Number(0, precision=0, minimum=0, label="Step to open (0 = the last)")
                    record_attention = gr.Checkbox(True, label="Record attention maps",
                                                   info="where each word's cross-attention looked, at every step")
                    with gr.Row():
                        run = gr.Button("Run and keep every step", variant="primary", elem_id="run-loop")
                        stop = gr.Button("Stop", variant="stop")
                    status = gr.Markdown()
                final = gr.Image(label="Result", format="png", type="pil", height=256)
            strip = gr.Image(label="Filmstrip: x_t and predicted x0 every k steps", format="png", type="pil",
                             elem_id="loop-filmstrip")
            with gr.Row():
                gif = gr.Image(label="Animated GIF (the filmstrip's steps)", type="filepath", height=200)
                video = gr.Video(label="MP4: every step", height=200)
            steps_gallery = pinned_gallery("gallery-loop", 10, label="Every step's x_t", height=200, preview=False,
                                           object_fit="contain")

            gr.Markdown("## Step scrubber")
            scrubber = gr.Slider(1, MAX_STEPS, value=1, step=1, label="Step (of the last run)", elem_id="loop-scrubber")
            view = StepView.build()
            run_id = gr.State(None)
        event = run.click(
            on_gpu(self.inside_the_loop),
            inputs=[prompt, negative, self.guidance, *settings.shared, every, open_step, record_attention],
            outputs=[run_id, scrubber, status, final, strip, gif, video, steps_gallery, *view.outputs],
            api_name="inside_the_loop")
        stop.click(None, cancels=[event], api_name=False)
        scrubber.release(self.inside_the_loop_step, inputs=[run_id, scrubber, view.attention.word],
                         outputs=view.outputs, api_name="inside_the_loop_step")
        # Another word redraws the attention section only; API callers pass the word to the step call.
        view.attention.word.input(self.inside_the_loop_word, inputs=[run_id, scrubber, view.attention.word],
                                  outputs=view.attention.outputs, api_name=False)
        return self

    def inside_the_loop(self, prompt, negative_prompt, guidance, scheduler, steps, seed, width, height, engine,
                        every=0, step=0, record_attention=True, progress=gr.Progress()):
        params = make_params(prompt, negative_prompt, guidance, 1, scheduler, steps, seed, width, height, engine)
        outputs = 8 + StepView.COUNT

        def run(model, on_step):
            recorder = Recorder(model, params, then=on_step)  # refuses a run whose history would not fit
            recorder.history.index_of(int(step or 0) or recorder.history.total)  # refused before running, too
            record_run(model, recorder, attention=bool(record_attention))  # refuses maps that would not fit
            return model, recorder.history

        preview_every = default_every(int(steps or 8))
        for item in stream(self.slot, run, preview_every, progress):
            if isinstance(item, list):  # the emerging image, as Text to image shows it
                yield (gr.skip(), gr.skip(), item[1], item[0], *[gr.skip()] * (outputs - 4))
            else:
                yield self._show_run(*item, every, step, progress)

    def _show_run(self, model, history, every, step, progress):
        try:
            for done, index in enumerate(sorted(history.steps)):
                progress((done, history.total), desc="decoding every step", unit="steps")
                for kind in ("xt", "guided"):
                    history_views.decoded(model, history, history.steps[index], kind)
            run_id = self.store.add(history)
            folder = self.store.folder(run_id)
            every = int(every or 0) or default_every(history.params.steps)
            strip = history_views.filmstrip(model, history, every)
            gif = history_views.animation_gif(model, history, folder / "filmstrip.gif", every)
            video = history_views.video_mp4(model, history, folder / "every-step.mp4")
            gallery = history_views.step_gallery(model, history)
            number = int(step or 0) or history.total
            view = StepView.show(model, history, number)
        except Exception as error:  # user_error words what the user can fix, logs the rest
            raise user_error(error) from None
        p = history.params
        status = (f"{history.engine} engine · {LABELS[p.scheduler]} · guidance {p.guidance:g} · seed {p.seed} · "
                  f"all {history.total} steps kept ({history.nbytes() / 2**10:.0f} KiB of latents) · filmstrip: "
                  f"{len(history_views.strip_indices(history, every))} steps, every {every}")
        status += f"  \n{attention_summary(history)}"
        final = history_views.decoded(model, history, history.steps[history.total - 1])
        return (run_id, gr.update(maximum=history.total, value=number), status, final, strip, str(gif), str(video),
                gallery, *view)

    def inside_the_loop_step(self, run_id, step, word=""):
        """The scrubber: show step `step` of the run `run_id` from its history (no denoising), with `word`'s
        attention map (blank: the first word)."""
        try:
            history = self.store.get(run_id)
            model = self.slot.get()
            history.check_model(model)
            return StepView.show(model, history, step, word)
        except Exception as error:  # user_error words what the user can fix, logs the rest
            raise user_error(error) from None

    def inside_the_loop_word(self, run_id, step, word):
        """The word chooser: redraw the attention section of the scrubbed step for another word."""
        try:
            return StepAttentionView.show(self.store.get(run_id), step, word)
        except Exception as error:
            raise user_error(error) from None


class StepView:
    """The components that show one step, and what goes in them."""

    @classmethod
    def build(cls) -> "StepView":
        view = cls()
        view.title = gr.Markdown("Run first, then move the slider.")
        with gr.Row():
            view.xt = gr.Image(label="x_t after the step (VAE decode)", format="png", type="pil", height=200)
            view.x0 = gr.Image(label="predicted x0 (guided, VAE decode)", format="png", type="pil", height=200)
            view.cheap = gr.Image(label="x_t, cheap linear latent → RGB", format="png", type="pil", height=200)
        gr.Markdown("## What classifier-free guidance does at this step")
        with gr.Row():
            view.uncond = gr.Image(label="x0 of the unconditional (negative) branch", format="png", type="pil",
                                   height=200)
            view.text = gr.Image(label="x0 of the text branch", format="png", type="pil", height=200)
            view.guided = gr.Image(label="x0 of the guided blend", format="png", type="pil", height=200)
            view.heat = gr.Image(label="where guidance pushes: |text − uncond|", format="png", type="pil", height=200)
        view.explanation = gr.Markdown(elem_id="loop-anatomy-text")
        view.attention = StepAttentionView.build()
        gr.Markdown("## Noise schedule and latent inspector")
        view.chart = gr.Image(label="Noise schedule of this run", format="png", type="pil", elem_id="loop-chart",
                              height=360)
        view.channels = pinned_gallery("loop-channels", 4, label="x_t's 4 latent channels (each on its own grey scale)",
                                       height=340, preview=False, object_fit="contain")
        with gr.Accordion("The schedule's numbers", open=False):
            view.table = gr.Dataframe(headers=list(history_plot.COLUMNS), label="Schedule, one row per step",
                                      interactive=False)
        return view

    COUNT = 12 + StepAttentionView.COUNT  # outputs, in the order `show` returns them

    @property
    def outputs(self) -> list:
        return [self.title, self.xt, self.x0, self.cheap, self.uncond, self.text, self.guided, self.heat,
                self.explanation, self.chart, self.channels, self.table, *self.attention.outputs]

    @staticmethod
    def show(model, history, number, word=None) -> tuple:
        recorded = history.step(number)
        index = recorded.index
        anatomy = history_views.anatomy(model, history, number)
        latents = history_views.latent_view(model, history, number)
        schedule = history.schedule
        title = (f"**Step {index + 1} of {history.total}** · timestep {recorded.timestep} · "
                 f"σ {schedule.sigmas[index]:.3g} · SNR {schedule.snr(index):.3g} · "
                 f"1 − ᾱ {1 - schedule.alpha_bar(index):.3g}  \nCheap preview: {latents.note}")
        rows = history_plot.schedule_rows(history)
        images = anatomy.images
        return (title, history_views.decoded(model, history, recorded),
                gr.update(value=images["guided"], visible=images["guided"] is not None),
                gr.update(value=latents.cheap_rgb, visible=latents.cheap_rgb is not None),
                gr.update(value=images["uncond"], visible=images["uncond"] is not None),
                gr.update(value=images["text"], visible=images["text"] is not None),
                gr.update(value=images["guided"], visible=images["guided"] is not None),
                gr.update(value=anatomy.heat_map, visible=anatomy.heat_map is not None),
                anatomy.explanation, history_plot.schedule_chart(history, index + 1), latents.channels,
                [[row[c] for c in history_plot.COLUMNS] for row in rows],
                *StepAttentionView.show(history, number, word))
