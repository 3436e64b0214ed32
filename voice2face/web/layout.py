"""The Gradio page: its components and how they are wired. What each event computes lives in `page`
(one clip) and `live` (the Live tab); the guards on its inputs in `server`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import gradio as gr

from ..audio.decode import SUPPORTED_FORMATS
from ..errors import Voice2FaceError
from ..limits import MAX_AUDIO_SECONDS
from ..memory import return_freed_memory
from ..pipeline import Voice2Face
from .live import NO_RECORDING, LiveRecordings
from .page import (
    DEFAULT_CHOICES,
    DURATION_CHOICES,
    EXAMPLE_NOTE,
    MAX_EXTRA_CHARS,
    OLDER_RANGE,
    PLAIN_SUMMARY,
    DemoOutput,
    changed_face,
    demo_request,
    demo_steps,
    example_clips,
    example_labels,
    faces_html,
    full_size_strip,
    image_html,
    is_untrained,
    message_html,
    model_card,
    notes_html,
    save_png,
    slider_values,
    status_html,
    warm_up,
)
from .server import (
    CONCURRENCY,
    LIVE_EVERY_S,
    end_live_streams,
    refuse_out_of_range,
    refuse_server_paths_in_our_words,
    refuse_unknown_choices,
    refuse_unknown_examples,
    refuse_web_addresses,
)

log = logging.getLogger("voice2face.app")
#: The live face's box: with its caption and the recorder under it, it fits a 360x740 phone's screen.
LIVE_FACE_PX = 224

INTRO = """# voice2face
Speak for a few seconds or upload a clip: a neural network draws a face from the voice, for the **first 1, 2, 4 and 8 s
of speech and the whole clip**, side by side.
"""


#: The page hands the full-size strip, once drawn, to the browser as a download.
CLICK_STRIP_FILE = "() => { const link = document.querySelector('#strip-file'); if (link) link.click(); }"


def tuned_face_html(face) -> str:
    """The face the sliders change, as the page shows it."""
    return image_html(face, "the longest length's face, as the sliders set it")


def build_demo(model: Voice2Face, checkpoint: Path) -> gr.Blocks:
    """The page (its file cache is swept by `launch`)."""
    outputs_folder: list[Path] = []  # Gradio's cache folder, known once the Blocks exist
    recordings = LiveRecordings(model)  # the live view's, bounded in number and dropped when idle
    example = warm_up(model)  # the first request, served now; the page shows it until the visitor's own

    def files(*images, name: str = "") -> list[str]:
        """Saved where Gradio serves and sweeps them; every file saved must be returned, or it is never swept."""
        return [save_png(image, outputs_folder[0], name) for image in images]

    def request(audio, choices, extra) -> DemoOutput:
        try:
            return demo_request(model, audio, choices, extra)
        except Voice2FaceError as err:
            log.info("refused a request: %s", err)  # one line, not a traceback: it is the visitor's input
            raise
        finally:
            return_freed_memory()  # under 16 clients the server peaked 90 MB higher, and rested 270 MB higher, without

    def reading_outputs(out: DemoOutput) -> dict:
        """The voice reading under the faces and the sliders set to it (hidden for models that read nothing)."""
        if out.reading is None:
            return {reading_text_md: "", tune: gr.update(visible=False), reading_state: None}
        female, older = slider_values(out.reading)
        return {reading_text_md: out.reading_words, tune: gr.update(visible=True), reading_state: out.reading,
                tuned_face: tuned_face_html(out.faces[out.longest][0]),
                gender_slider: female, age_slider: older}  # fmt: skip

    def draw_page(audio, choices, extra, live: bool = False):
        """The page's button: faces appear as they are drawn, the whole clip's first; an error stays
        on the page, and the other panes are emptied."""
        try:
            # a word at once, in place of the last answer: a 5-minute clip takes seconds to read
            yield {faces: status_html("Reading the clip and listening for speech…")}
            steps = demo_steps(model, audio, choices, extra)
            out = next(steps)  # the first face (the whole clip's), with the charts
            settle, spectrogram = files(out.settle_plot, out.spectrogram)
            yield {faces: faces_html(out.faces, drawn_as=out.drawn_as), settle_image: settle, spectrogram_image: spectrogram, strip: None,
                   strip_download: gr.update(visible=False), notes: notes_html(out.notes, out.settle), reading_text_md: "",
                   tune: gr.update(visible=False)}  # fmt: skip
            for out in steps:  # the last step also holds the strip, sent after its face
                yield {faces: faces_html(out.faces, drawn_as=out.drawn_as)}
            (strip_file,) = files(out.strip)
            yield {strip: strip_file, strip_download: gr.update(visible=True), full_size_state: out.full_size, **reading_outputs(out)} | (
                {live_face: out.faces[out.longest][0], live_caption: out.heard} if live else {}
            )
        except Voice2FaceError as err:
            log.info("refused a request: %s", err)
            yield error_outputs(str(err), live)
        finally:
            return_freed_memory()

    def error_outputs(message: str, live: bool = False) -> dict:
        """The message where the faces go; the other panes emptied, and after a live recording its face and
        caption too, so no earlier word stands beside the message."""
        cleared = {live_face: None, live_caption: "Stopped. The recording could not be drawn: see why beside the faces."} if live else {}
        return {faces: message_html(message), settle_image: None, spectrogram_image: None, strip: None,
                strip_download: gr.update(visible=False), notes: "", reading_text_md: "", tune: gr.update(visible=False)} | cleared  # fmt: skip

    def download_full_size(full_size):
        """The download button: every face of the last request drawn again at full size, side by side."""
        if full_size is None:
            return gr.skip()
        try:
            (path,) = files(full_size_strip(model, full_size), name="voice2face-faces-full-size")
        finally:
            model.release_full_size()  # 330 MB a server need not hold between downloads
            return_freed_memory()
        return gr.update(value=path)

    def draw_api(audio, choices, extra):
        """The /faces endpoint: errors are errors, faces a gallery of files with captions."""
        try:
            out = request(audio, choices, extra)
        except Voice2FaceError as err:
            raise gr.Error(str(err), title="Could not draw a face", print_exception=False) from None
        faces = list(zip(files(*(face for face, _ in out.faces)), (caption for _, caption in out.faces), strict=True))
        return faces, out.settle, *files(out.spectrogram, out.strip), out.notes

    def retune(reading, female, older):
        """The sliders: the same person, another gender or age."""
        if reading is None:
            return gr.skip()
        try:
            return tuned_face_html(changed_face(model, reading, female, older))
        except Voice2FaceError as err:
            return message_html(str(err), "Could not redraw the face")

    def reset(reading):
        if reading is None:
            return gr.skip(), gr.skip(), gr.skip()
        female, older = slider_values(reading)
        return tuned_face_html(changed_face(model, reading, None, None)), female, older

    def live_start(request: gr.Request):
        try:
            recordings.open(request.session_hash)
        except Voice2FaceError as err:
            return None, str(err)
        return None, "Listening…"

    async def live_update(chunk, request: gr.Request):
        """One chunk of a recording (decoded and drawn in a worker thread). Runs on the server's event
        loop, where it ends the streams of recordings dropped as idle, and its own if it is refused."""
        end_live_streams(demo, recordings.drop_idle())
        if chunk is None:  # a stream opened without audio, not by a recording, is ended: it would hold a job for 300 s
            if request.session_hash not in recordings:
                end_live_streams(demo, [request.session_hash])
            return gr.skip(), gr.skip()
        try:
            update = await asyncio.to_thread(recordings.add_file, request.session_hash, chunk)
        except Voice2FaceError as err:
            # the live view is full, or a chunk was refused: this stream ends here (an open one holds one of
            # Gradio's 40 jobs); what the recording kept stays until Stop, or LIVE_IDLE_S, for the comparison
            end_live_streams(demo, [request.session_hash])
            return None, str(err)
        return update.face if update.new_face else gr.skip(), update.caption

    def drop_recording(request: gr.Request) -> None:
        recordings.close(request.session_hash)

    def live_finish(choices, extra, request: gr.Request):
        live = recordings.close(request.session_hash)
        try:
            recording = live.recording() if live is not None else None
        except Voice2FaceError as err:  # the microphone sent nothing
            yield error_outputs(str(err), live=True)
            return
        if recording is None:
            yield error_outputs(NO_RECORDING, live=True)
            return
        yield from draw_page(recording, choices, extra, live=True)

    with gr.Blocks(title="voice2face") as demo:
        outputs_folder.append(Path(demo.GRADIO_CACHE) / "voice2face")
        gr.Markdown(INTRO)
        gr.Markdown(PLAIN_SUMMARY, elem_id="summary")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                with gr.Tabs():
                    with gr.Tab("Record or upload", id="clip"):
                        audio = refuse_web_addresses(gr.Audio(
                            sources=["microphone", "upload"],
                            type="filepath",
                            label="Your voice",
                            elem_id="voice",
                            buttons=["download"],  # Gradio's share button works only on Spaces
                        ))  # fmt: skip
                        button = gr.Button("Draw faces", variant="primary", elem_id="draw")
                    with gr.Tab("Live", id="live", elem_id="live-tab"):
                        gr.Markdown("Record, and watch the face form from the speech so far; stop to compare lengths.")
                        # the face and its caption above the recorder: on a phone, below it they were off screen
                        # while recording (page.js also scrolls them into view when recording starts)
                        live_face = gr.Image(label="Face so far", type="pil", show_label=False, elem_id="live-face",
                                             height=LIVE_FACE_PX, buttons=[], interactive=False)  # fmt: skip
                        live_caption = gr.Markdown(elem_id="live-caption")
                        live_audio = gr.Audio(  # filepath: chunks reach our bounded decoder, not Gradio's pydub
                            sources=["microphone"], type="filepath", streaming=True, label="Live microphone", elem_id="live-voice",
                            buttons=[],
                        )
                with gr.Accordion("Lengths to compare", open=False, elem_id="lengths-accordion"):
                    choices = refuse_unknown_choices(gr.CheckboxGroup(
                        DURATION_CHOICES, value=DEFAULT_CHOICES, label="Lengths of speech", elem_id="lengths"
                    ))  # fmt: skip
                    extra = gr.Textbox(
                        label="Other lengths in seconds", value="", placeholder="e.g. 3 12.5", max_lines=1, max_length=MAX_EXTRA_CHARS
                    )
            with gr.Column(scale=3, min_width=300):
                faces = gr.HTML(faces_html(example.faces, EXAMPLE_NOTE, example.drawn_as), label="Faces", elem_id="faces")
                reading_text_md = gr.Markdown(example.reading_words, elem_id="reading")
                reading_state = gr.State(example.reading)
                # a Column carries the id: Gradio writes a Group's elem_id on two elements (axe: duplicate id)
                with gr.Column(visible=example.reading is not None, elem_id="tune") as tune, gr.Group():
                    with gr.Row(equal_height=False):  # side by side on a desktop, stacked on a phone
                        with gr.Column(min_width=220):
                            tuned_face = gr.HTML(tuned_face_html(example.faces[example.longest][0]) if example.reading else "",
                                                 elem_id="tuned-face")  # fmt: skip
                        with gr.Column(min_width=220):
                            female, older = slider_values(example.reading) if example.reading else (50, 0)
                            # buttons=[]: no Gradio reset arrow, which put the number back but left the face;
                            # "Back to what the voice says" resets both sliders and the face
                            gender_slider = refuse_out_of_range(gr.Slider(
                                0, 100, value=female, step=1, label="How much the face is a woman's (%)",
                                info="0: a man's face, 100: a woman's", elem_id="gender-slider", buttons=[]), "gender")  # fmt: skip
                            age_slider = refuse_out_of_range(gr.Slider(
                                *OLDER_RANGE, value=older, step=1, label="Younger or older (years)",
                                info="0: as old as the voice sounds", elem_id="age-slider", buttons=[]), "age")  # fmt: skip
                            reset_button = gr.Button("Back to what the voice says", size="sm", elem_id="reset-face")
                notes = gr.HTML(notes_html(example.notes, example.settle), label="What was used", elem_id="notes")
        # an example, clicked, is loaded and drawn at once (wired below), and the page scrolls to its faces
        examples = refuse_unknown_examples(gr.Examples(
            example_clips(), inputs=[audio], label="Examples: click one to draw its faces", elem_id="examples",
            example_labels=example_labels(), api_visibility="private"))  # fmt: skip
        # after an error the charts and the strip are emptied, and CSS hides their empty boxes with their headings
        with gr.Row(equal_height=False, elem_id="charts"):  # min_width: on a phone the two stack instead of squeezing
            with gr.Column(min_width=300):
                gr.Markdown("**How much the face changes as you speak longer**")
                settle_image = gr.Image(example.settle_plot, label="How much the face changes as you speak longer",
                                        show_label=False, type="filepath", elem_id="settle", buttons=[])  # fmt: skip
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
        full_size_state = gr.State(example.full_size)
        with gr.Accordion("About the model", open=False):
            plain_card, technical_card = model_card(model, checkpoint)
            gr.Markdown(plain_card, elem_id="model-card")
            with gr.Accordion("Technical details", open=False):
                gr.Markdown(
                    f"{technical_card}\n\nFile formats: {SUPPORTED_FORMATS}. The first {MAX_AUDIO_SECONDS:.0f} s of a clip are used."
                )
        api_faces = gr.Gallery(label="Faces with captions", visible=False, format="png")
        api_settle = gr.JSON(label="How much the face changes as you speak longer", visible=False)

        page_outputs = [faces, reading_text_md, tune, tuned_face, gender_slider, age_slider, reading_state,
                        settle_image, spectrogram_image, strip, strip_download, full_size_state, notes]  # fmt: skip
        button.click(draw_page, [audio, choices, extra], page_outputs, concurrency_limit=CONCURRENCY,
                     api_visibility="private", concurrency_id="draw", show_progress="minimal")  # fmt: skip
        examples.load_input_event.then(draw_page, [audio, choices, extra], page_outputs, concurrency_limit=CONCURRENCY,
                                       api_visibility="private", concurrency_id="draw", show_progress="minimal")  # fmt: skip
        api_button = gr.Button(visible=False)
        api_button.click(draw_api, [audio, choices, extra], [api_faces, api_settle, spectrogram_image, strip, notes],
                         api_name="faces", concurrency_limit=CONCURRENCY, concurrency_id="draw")  # fmt: skip
        strip_download.click(download_full_size, full_size_state, strip_file, api_visibility="private", concurrency_id="draw",
                             show_progress="minimal").success(None, None, None, js=CLICK_STRIP_FILE)  # fmt: skip
        for slider in (gender_slider, age_slider):
            slider.input(retune, [reading_state, gender_slider, age_slider], tuned_face, trigger_mode="always_last",
                         api_visibility="private", concurrency_id="draw", show_progress="hidden")  # fmt: skip
        reset_button.click(reset, reading_state, [tuned_face, gender_slider, age_slider], api_visibility="private",
                           concurrency_id="draw", show_progress="hidden")  # fmt: skip
        live_audio.start_recording(live_start, None, [live_face, live_caption], api_visibility="private",
                                   show_progress="hidden")  # fmt: skip
        # no concurrency slots: Gradio would hold one for an open stream until its time limit, however
        # idle; `recordings` caps the recordings instead, says so to the visitor who finds it full, and
        # its idle and refused streams are ended (`end_live_streams`)
        live_audio.stream(live_update, [live_audio], [live_face, live_caption], stream_every=LIVE_EVERY_S,
                          time_limit=MAX_AUDIO_SECONDS, concurrency_limit=None, api_visibility="private",
                          show_progress="hidden")  # fmt: skip
        live_audio.stop_recording(live_finish, [choices, extra], [*page_outputs, live_face, live_caption],
                                  api_visibility="private", concurrency_id="draw", show_progress="minimal")  # fmt: skip
        demo.unload(drop_recording)  # a closed tab's recording goes at once
        # a no-op through the queue as the page opens: the browser sets up its event stream now,
        # not on the visitor's first click (which was 3x slower than later ones without it)
        demo.load(lambda: None, None, None, api_visibility="private", show_progress="hidden")
        if is_untrained(model):
            gr.Markdown("⚠️ This checkpoint is untrained: the faces do not reflect the voice.")
    return refuse_server_paths_in_our_words(demo)


