"""The Gradio page, in a Gradio demo's order: its components (`lay_out`), the handlers (`events`), then the
wiring (`wire`). What each event computes lives in `page` (one clip) and `live` (the Live tab); the
guards on its inputs in `server`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ..audio.decode import SUPPORTED_FORMATS
from ..limits import MAX_AUDIO_SECONDS
from ..pipeline import Voice2Face
from .events import PageEvents, tuned_face_html
from .page import (
    DEFAULT_CHOICES,
    DURATION_CHOICES,
    EXAMPLE_NOTE,
    MAX_EXTRA_CHARS,
    OLDER_RANGE,
    PLAIN_SUMMARY,
    SKIN_RANGE,
    UNMARK_PREVIOUS,
    DemoOutput,
    DrawnFaces,
    example_clips,
    example_labels,
    faces_html,
    is_untrained,
    model_card,
    notes_html,
    slider_values,
    warm_up,
)
from .server import (
    CONCURRENCY,
    LIVE_EVERY_S,
    is_behind_proxy,
    refuse_out_of_range,
    refuse_server_paths_in_our_words,
    refuse_unknown_choices,
    refuse_unknown_examples,
    refuse_web_addresses,
)

#: The live face's box: with its caption and the recorder under it, it fits a 360x740 phone's screen.
LIVE_FACE_PX = 224

INTRO = """# voice2face
Speak for a few seconds or upload a clip: a neural network draws a face from the voice, for the **first 1, 2, 4 and 8 s
of speech and the whole clip**, side by side.
"""

#: The page hands the full-size strip, once drawn, to the browser as a download (on success); the download
#: button, which said the faces were being drawn (page.js), says what it does again (either way).
CLICK_STRIP_FILE = "() => { const link = document.querySelector('#strip-file'); if (link) link.click(); }"
DOWNLOAD_DONE = "() => { const b = document.querySelector('#strip-download'); if (b && b.dataset.label) b.textContent = b.dataset.label; }"


@dataclass
class Page:
    """The page's components that events read or change."""

    audio: gr.Audio
    draw: gr.Button
    live_face: gr.Image
    live_caption: gr.Markdown
    live_audio: gr.Audio
    live_token: gr.Textbox
    choices: gr.CheckboxGroup
    extra: gr.Textbox
    faces: gr.HTML
    reading_text: gr.Markdown
    drawn: gr.State
    drawn_id: gr.Textbox
    tune: gr.Column
    tuned_face: gr.HTML
    gender_slider: gr.Slider
    age_slider: gr.Slider
    skin_slider: gr.Slider
    reset_button: gr.Button
    notes: gr.HTML
    examples: gr.Examples
    settle_image: gr.Image
    spectrogram_image: gr.Image
    strip: gr.Image
    strip_download: gr.Button
    strip_file: gr.DownloadButton
    api_faces: gr.Gallery
    api_settle: gr.JSON

    @property
    def outputs(self) -> list:
        """What drawing a clip changes."""
        return [self.faces, self.reading_text, self.tune, self.tuned_face, self.gender_slider, self.age_slider, self.skin_slider, self.drawn,
                self.drawn_id, self.settle_image, self.spectrogram_image, self.strip, self.strip_download, self.notes]  # fmt: skip


def build_demo(model: Voice2Face, checkpoint: Path, behind_proxy: bool | None = None, example: DemoOutput | None = None) -> gr.Blocks:
    """The page, served by `server.launch` (which sweeps its file cache and notes its Live chunks as they arrive);
    `behind_proxy` as `server.launch` takes it. `example`: the first request, served already (`page.warm_up`, as
    app.py does while Gradio is imported); without it, it is served now. The page shows it until the visitor's own."""
    example = warm_up(model) if example is None else example
    with gr.Blocks(title="voice2face") as demo:
        page = lay_out(model, checkpoint, example)
        events = PageEvents(model, page, demo, is_behind_proxy() if behind_proxy is None else behind_proxy)
        wire(page, events, demo)
        demo.live_chunk_arrivals = events.arrivals  # where `server.launch` notes the Live tab's chunks as they arrive
        if is_untrained(model):
            gr.Markdown("⚠️ This checkpoint is untrained: the faces do not reflect the voice.")
    return refuse_server_paths_in_our_words(demo)


# --------------------------------------------------------------------------- components


def lay_out(model: Voice2Face, checkpoint: Path, example: DemoOutput) -> Page:
    """Every component, top to bottom as the page shows them."""
    gr.Markdown(INTRO)
    gr.Markdown(PLAIN_SUMMARY, elem_id="summary")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            inputs = voice_inputs()
        with gr.Column(scale=3, min_width=300, elem_id="results"):
            results = result_panes(example, skin_tone=model.generator.has_skin_tone)
    # an example, clicked, is loaded and drawn at once (wired below), and the page scrolls to its faces
    examples = refuse_unknown_examples(gr.Examples(
        example_clips(), inputs=[inputs["audio"]], label="Examples: click one to draw its faces", elem_id="examples",
        example_labels=example_labels(), api_visibility="private"))  # fmt: skip
    downloads = charts_and_strip(example)
    about_the_model(model, checkpoint)
    api_faces = gr.Gallery(label="Faces with captions", visible=False, format="png")
    api_settle = gr.JSON(label="How much the face changes as you speak longer", visible=False)
    return Page(**inputs, **results, examples=examples, **downloads, api_faces=api_faces, api_settle=api_settle)


def voice_inputs() -> dict:
    """The two ways in (a clip, recorded or uploaded; the Live tab), and the lengths to compare."""
    with gr.Tabs():
        with gr.Tab("Record or upload", id="clip"):
            audio = refuse_web_addresses(gr.Audio(sources=["microphone", "upload"], type="filepath", label="Your voice",
                                                  elem_id="voice", buttons=["download"]))  # fmt: skip
            draw = gr.Button("Draw faces", variant="primary", elem_id="draw")
        with gr.Tab("Live", id="live", elem_id="live-tab"):
            gr.Markdown("Record, and watch the face form from the speech so far; stop to compare lengths.")
            # the face and its caption above the recorder: on a phone, below it they were off screen while
            # recording (page.js also scrolls them into view when recording starts)
            live_face = gr.Image(label="Face so far", type="pil", show_label=False, elem_id="live-face", height=LIVE_FACE_PX,
                                 buttons=[], interactive=False)  # fmt: skip
            live_caption = gr.Markdown(elem_id="live-caption")
            # filepath: chunks reach our bounded decoder, not Gradio's pydub
            live_audio = gr.Audio(sources=["microphone"], type="filepath", streaming=True, label="Live microphone",
                                  elem_id="live-voice", buttons=[])  # fmt: skip
            # the recording's token, from the server: its chunks and its stop carry it (`web/live.py`)
            live_token = gr.Textbox(visible=False, elem_id="live-token")
    with gr.Accordion("Lengths to compare", open=False, elem_id="lengths-accordion"):
        choices = refuse_unknown_choices(gr.CheckboxGroup(DURATION_CHOICES, value=DEFAULT_CHOICES, label="Lengths of speech",
                                                          elem_id="lengths"))  # fmt: skip
        extra = gr.Textbox(label="Other lengths in seconds", value="", placeholder="e.g. 3 12.5", max_lines=1, max_length=MAX_EXTRA_CHARS)
    return dict(audio=audio, draw=draw, live_face=live_face, live_caption=live_caption, live_audio=live_audio, live_token=live_token,
                choices=choices, extra=extra)  # fmt: skip


def result_panes(example: DemoOutput, skin_tone: bool) -> dict:
    """The faces, what the model heard, the sliders that redraw the same person (the skin-tone one where the
    face space has its direction: `skin_tone`), and the notes."""
    faces = gr.HTML(faces_html(example.faces, EXAMPLE_NOTE, example.drawn_as), label="Faces", elem_id="faces")
    reading_text = gr.Markdown(example.reading_words, elem_id="reading")
    # what the sliders and the download redraw, and its id, which the page holds too (`page.DrawnFaces`)
    drawn = gr.State(DrawnFaces.of(example, "example"))
    drawn_id = gr.Textbox("example", visible=False, elem_id="drawn-id")
    female, older, lighter = slider_values(example.reading) if example.reading else (50, 0, 0)
    # a Column carries the id: Gradio writes a Group's elem_id on two elements (axe: duplicate id)
    with gr.Column(visible=example.reading is not None, elem_id="tune") as tune, gr.Group():
        with gr.Row(equal_height=False):  # side by side on a desktop, stacked on a phone
            with gr.Column(min_width=220):
                tuned_face = gr.HTML(tuned_face_html(example.faces[example.longest][0]) if example.reading else "", elem_id="tuned-face")
            with gr.Column(min_width=220):
                # buttons=[]: no Gradio reset arrow, which put the number back but left the face;
                # "Back to what the voice says" resets both sliders and the face
                gender_slider = refuse_out_of_range(gr.Slider(
                    0, 100, value=female, step=1, label="How much the face is a woman's (%)", info="0: a man's face, 100: a woman's",
                    elem_id="gender-slider", buttons=[]), "gender")  # fmt: skip
                age_slider = refuse_out_of_range(gr.Slider(
                    *OLDER_RANGE, value=older, step=1, label="Younger or older (years)", info="0: as old as the voice sounds",
                    elem_id="age-slider", buttons=[]), "age")  # fmt: skip
                skin_slider = refuse_out_of_range(gr.Slider(
                    *SKIN_RANGE, value=lighter, step=1, label="Skin tone: darker or lighter", visible=skin_tone,
                    info="0: as drawn. The voice does not tell skin tone: choose it here", elem_id="skin-slider", buttons=[]), "skin-tone")  # fmt: skip
                reset_button = gr.Button("Back to what the voice says", size="sm", elem_id="reset-face")
    notes = gr.HTML(notes_html(example.notes, example.settle), label="What was used", elem_id="notes")
    return dict(faces=faces, reading_text=reading_text, drawn=drawn, drawn_id=drawn_id, tune=tune, tuned_face=tuned_face,
                gender_slider=gender_slider, age_slider=age_slider, skin_slider=skin_slider, reset_button=reset_button, notes=notes)  # fmt: skip


def charts_and_strip(example: DemoOutput) -> dict:
    """How the face settles, the speech with where each length ends, and all faces side by side with their
    full-size download. After an error they are emptied, and CSS hides the empty boxes with their headings."""
    with gr.Row(equal_height=False, elem_id="charts"):  # min_width: on a phone the two stack instead of squeezing
        with gr.Column(min_width=300):
            gr.Markdown("**How much the face changes as you speak longer**")
            settle_image = gr.Image(example.settle_plot, label="How much the face changes as you speak longer", show_label=False,
                                    type="filepath", elem_id="settle", buttons=[])  # fmt: skip
        with gr.Column(min_width=300):
            gr.Markdown("**The speech**, with where each length ends")
            spectrogram_image = gr.Image(example.spectrogram, label="The speech", show_label=False, type="filepath",
                                         elem_id="spectrogram", buttons=[])  # fmt: skip
    with gr.Column(elem_id="strip-box"):
        gr.Markdown("**All faces side by side**")
        strip = gr.Image(example.strip, label="All faces side by side", show_label=False, type="filepath", elem_id="strip", buttons=[])
        # the full-size faces are drawn when asked for, then handed to a hidden download button the page clicks
        strip_download = gr.Button("Download all faces at full size (PNG)", size="sm", elem_id="strip-download")
    strip_file = gr.DownloadButton(visible="hidden", elem_id="strip-file")
    return dict(settle_image=settle_image, spectrogram_image=spectrogram_image, strip=strip, strip_download=strip_download,
                strip_file=strip_file)  # fmt: skip


def about_the_model(model: Voice2Face, checkpoint: Path) -> None:
    with gr.Accordion("About the model", open=False):
        plain_card, technical_card = model_card(model, checkpoint)
        gr.Markdown(plain_card, elem_id="model-card")
        with gr.Accordion("Technical details", open=False):
            gr.Markdown(f"{technical_card}\n\nFile formats: {SUPPORTED_FORMATS}. The first {MAX_AUDIO_SECONDS:.0f} s of a clip are used.")


# --------------------------------------------------------------------------- wiring


def wire(page: Page, events: PageEvents, demo: gr.Blocks) -> None:
    """Each event to its handler. Drawing shares the server's slots (`concurrency_id="draw"`); the page's own
    events are private, and /faces is the one API endpoint."""
    p, draw = page, dict(concurrency_limit=CONCURRENCY, concurrency_id="draw")
    clip = [p.audio, p.choices, p.extra]
    p.draw.click(events.draw_page, clip, p.outputs, api_visibility="private", show_progress="minimal", **draw).then(
        None, js=UNMARK_PREVIOUS)  # fmt: skip
    p.examples.load_input_event.then(events.draw_page, clip, p.outputs, api_visibility="private", show_progress="minimal",
                                     **draw).then(None, js=UNMARK_PREVIOUS)  # fmt: skip
    api_button = gr.Button(visible=False)
    api_button.click(events.draw_api, clip, [p.api_faces, p.api_settle, p.spectrogram_image, p.strip, p.notes], api_name="faces", **draw)
    download = p.strip_download.click(events.download_full_size, [p.drawn, p.drawn_id], p.strip_file, api_visibility="private",
                                      concurrency_id="draw", show_progress="minimal")  # fmt: skip
    download.then(None, js=DOWNLOAD_DONE)
    download.success(None, js=CLICK_STRIP_FILE)
    for slider in (p.gender_slider, p.age_slider, p.skin_slider):
        slider.input(events.retune, [p.drawn, p.drawn_id, p.gender_slider, p.age_slider, p.skin_slider], p.tuned_face, trigger_mode="always_last",
                     api_visibility="private", concurrency_id="draw", show_progress="hidden")  # fmt: skip
    p.reset_button.click(events.reset, [p.drawn, p.drawn_id], [p.tuned_face, p.gender_slider, p.age_slider, p.skin_slider], api_visibility="private",
                         concurrency_id="draw", show_progress="hidden")  # fmt: skip
    wire_live(page, events)
    demo.unload(events.drop_recording)  # a closed tab's recording goes at once
    # a no-op through the queue as the page opens: the browser sets up its event stream now,
    # not on the visitor's first click (which was 3x slower than later ones without it)
    demo.load(lambda: None, None, None, api_visibility="private", show_progress="hidden")


def wire_live(page: Page, events: PageEvents) -> None:
    p = page
    p.live_audio.start_recording(events.live_start, None, [p.live_face, p.live_caption, p.live_token], api_visibility="private",
                                 show_progress="hidden")  # fmt: skip
    # no concurrency slots: Gradio would hold one for an open stream until its time limit, however idle;
    # `recordings` caps the recordings instead, says so to the visitor who finds it full, and its idle and
    # refused streams are ended (`end_live_streams`)
    p.live_audio.stream(events.live_update, [p.live_audio, p.live_token], [p.live_face, p.live_caption, p.live_token], stream_every=LIVE_EVERY_S,
                        time_limit=MAX_AUDIO_SECONDS, concurrency_limit=None, api_visibility="private", show_progress="hidden")  # fmt: skip
    p.live_audio.stop_recording(events.live_finish, [p.choices, p.extra, p.live_token], [*p.outputs, p.live_face, p.live_caption],
                                api_visibility="private", concurrency_id="draw", show_progress="minimal").then(
        None, js=UNMARK_PREVIOUS)  # fmt: skip
