"""What the page's events do, at module level: each handler calls the pipeline once (through `page`) and
turns its answer into the page's components. The components are laid out in `layout`, and wired to
these handlers there."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path

import gradio as gr

from ..errors import Voice2FaceError
from ..pipeline import Voice2Face
from ..process import return_freed_memory
from .limits import FULL_SIZE_AT_ONCE
from .live import NO_RECORDING, LiveAnswer, LiveRecordings
from .live_chunks import ChunkArrivals
from .page import (
    NOT_HELD,
    DemoOutput,
    DrawnFaces,
    changed_face,
    demo_request,
    demo_steps,
    faces_html,
    full_size_strip,
    image_html,
    message_html,
    notes_html,
    save_image,
    slider_values,
    status_html,
)
from .server import end_live_stream_of, end_live_streams, live_streams_of, request_address

log = logging.getLogger("voice2face.app")


def held(drawn, drawn_id) -> bool:
    """Whether the server still holds the faces the page shows (`page.DrawnFaces`)."""
    return drawn is not None and drawn.id == drawn_id


def tuned_face_html(face) -> str:
    """The face the sliders change, as the page shows it."""
    return image_html(face, "the longest length's face, as the sliders set it")


class PageEvents:
    """The page's handlers, bound to one model, its page's components and the live view's recordings."""

    def __init__(self, model: Voice2Face, page, demo: gr.Blocks, behind_proxy: bool = False):
        """`page`: the laid-out components (`layout.Page`), which the handlers' answers name; `behind_proxy`: who
        a visitor is comes from X-Forwarded-For (`routes.client_address`)."""
        self.behind_proxy = behind_proxy
        self.model, self.page, self.demo = model, page, demo
        self.recordings = LiveRecordings(model)  # the live view's, bounded in number and dropped when idle
        self.arrivals = ChunkArrivals(Path(demo.GRADIO_CACHE))  # its chunks as they reach the server (`server.launch` notes them)
        self.outputs_folder = Path(demo.GRADIO_CACHE) / "voice2face"
        self.full_size_turns = threading.BoundedSemaphore(FULL_SIZE_AT_ONCE)

    def files(self, *images, name: str = "", kind: str = "png") -> list[str]:
        """Saved where Gradio serves and sweeps them (as `kind`: `page.save_image`); every file saved must be returned,
        or it is never swept."""
        return [save_image(image, self.outputs_folder, name, kind) for image in images]

    # ----------------------------------------------------------------------- one clip

    def draw_page(self, audio, choices, extra, live: bool = False):
        """The page's button: faces appear as they are drawn, the whole clip's first; an error stays on the page,
        and the other panes are emptied. The reading and sliders stay, marked as the previous clip's (page.js),
        until the new ones come with the last face."""
        p = self.page
        try:
            # a word at once, in place of the last answer: a 5-minute clip takes seconds to read
            yield {p.faces: status_html("Reading the clip and listening for speech…")}
            steps = demo_steps(self.model, audio, choices, extra)
            out = next(steps)  # the first face (the whole clip's), with the speech chart and the notes
            (spectrogram,) = self.files(out.spectrogram)
            first = {p.faces: faces_html(out.faces, drawn_as=out.drawn_as), p.settle_image: None, p.spectrogram_image: spectrogram,
                     p.strip: None, p.strip_download: gr.update(visible=False), p.notes: notes_html(out.notes)}  # fmt: skip
            yield first | (self.finished(out, live) if out.strip is not None else {})
            for out in steps:  # the last step also holds the strip, sent with its face
                yield {p.faces: faces_html(out.faces, drawn_as=out.drawn_as)} | (self.finished(out, live) if out.strip is not None else {})
        except Voice2FaceError as err:
            log.info("refused a request: %s", err)  # one line, not a traceback: it is the visitor's input
            yield self.error_outputs(str(err), live)
        finally:
            return_freed_memory()  # under 16 clients the server peaked 90 MB higher, and rested 270 MB higher, without

    def finished(self, out: DemoOutput, live: bool) -> dict:
        """What comes with the last face, once every length is heard: how the face settled, the strip, the download,
        the reading and its sliders (and the live view's face and caption, after a recording), all at once, so no
        pane shows the previous clip's beside the new faces."""
        p = self.page
        (settle,), (strip_file,) = self.files(out.settle_plot), self.files(out.strip, kind="jpg")  # the strip is photographs
        live_outputs = {p.live_face: out.faces[out.longest][0], p.live_caption: out.heard} if live else {}
        drawn = DrawnFaces.of(out)
        return {p.settle_image: settle, p.notes: notes_html(out.notes, out.settle), p.strip: strip_file,
                p.strip_download: gr.update(visible=True), p.drawn: drawn, p.drawn_id: drawn.id,
                **self.reading_outputs(out), **live_outputs}  # fmt: skip

    def reading_outputs(self, out: DemoOutput) -> dict:
        """The voice reading under the faces and the sliders set to it (hidden for models that read nothing)."""
        p = self.page
        if out.reading is None:
            return {p.reading_text: "", p.tune: gr.update(visible=False)}
        female, older, lighter = slider_values(out.reading)
        return {p.reading_text: out.reading_words, p.tune: gr.update(visible=True),
                p.tuned_face: tuned_face_html(out.faces[out.longest][0]), p.gender_slider: female, p.age_slider: older,
                p.skin_slider: lighter}  # fmt: skip

    def error_outputs(self, message: str, live: bool = False) -> dict:
        """The message where the faces go; the other panes emptied, and after a live recording its face and
        caption too, so no earlier word stands beside the message."""
        p = self.page
        cleared = {p.live_face: None, p.live_caption: "Stopped. The recording could not be drawn: see why beside the faces."} if live else {}
        return {p.faces: message_html(message), p.settle_image: None, p.spectrogram_image: None, p.strip: None,
                p.strip_download: gr.update(visible=False), p.notes: "", p.reading_text: "", p.tune: gr.update(visible=False)} | cleared  # fmt: skip

    def draw_api(self, audio, choices, extra):
        """The /faces endpoint: errors are errors, faces a gallery of PNG files with captions, the strip a JPEG as on
        the page."""
        try:
            out = demo_request(self.model, audio, choices, extra)
        except Voice2FaceError as err:
            log.info("refused a request: %s", err)
            raise gr.Error(str(err), title="Could not draw a face", print_exception=False) from None
        finally:
            return_freed_memory()
        faces = list(zip(self.files(*(face for face, _ in out.faces)), (caption for _, caption in out.faces), strict=True))
        return faces, out.settle, *self.files(out.spectrogram), *self.files(out.strip, kind="jpg"), out.notes

    def download_full_size(self, drawn, drawn_id):
        """The download button: every face of the page drawn again at full size, side by side, one download at a
        time (FULL_SIZE_AT_ONCE): the others wait their turn."""
        if not held(drawn, drawn_id):
            gr.Warning(NOT_HELD)
            return gr.skip()
        with self.full_size_turns:
            try:
                (path,) = self.files(full_size_strip(self.model, drawn.full_size), name="voice2face-faces-full-size")
            finally:
                self.model.release_full_size()  # 330 MB a server need not hold between downloads
                return_freed_memory()
        return gr.update(value=path)

    def retune(self, drawn, drawn_id, female, older, lighter):
        """The sliders: the same person, another gender, age or skin tone."""
        if not held(drawn, drawn_id) or drawn.reading is None:
            return message_html(NOT_HELD, "Could not redraw the face")
        try:
            return tuned_face_html(changed_face(self.model, drawn.reading, female, older, lighter))
        except Voice2FaceError as err:
            return message_html(str(err), "Could not redraw the face")

    def reset(self, drawn, drawn_id):
        if not held(drawn, drawn_id) or drawn.reading is None:
            return message_html(NOT_HELD, "Could not redraw the face"), gr.skip(), gr.skip(), gr.skip()
        female, older, lighter = slider_values(drawn.reading)
        return tuned_face_html(changed_face(self.model, drawn.reading, None, None)), female, older, lighter

    # ----------------------------------------------------------------------- the Live tab

    def address(self, request: gr.Request) -> str | None:
        joined = getattr(request, "request", None)
        return request_address(joined, self.behind_proxy) if joined is not None else None

    def live_start(self, request: gr.Request):
        """Record: the recording begun (or the one the first chunk began), and its token handed to the page."""
        try:
            live = self.recordings.open(request.session_hash, self.address(request))
        except Voice2FaceError as err:
            return None, str(err), gr.skip()
        return None, "Listening…", live.hand_token() or gr.skip()

    async def live_update(self, chunk, token, request: gr.Request):
        """The chunks of a recording that reached the server since the last call, kept in order (decoded and drawn
        in a worker thread). Gradio hands over only the newest chunk of a stream, so `chunk` only says whether
        audio came: every chunk was noted as it arrived (`live_chunks`). Runs on the server's event loop, where
        it ends the streams of recordings dropped as idle, and its own if it is refused."""
        end_live_streams(self.demo, self.recordings.drop_idle())
        if chunk is None:  # a stream opened without audio, not by a recording, is ended: it would hold a job for 300 s
            if request.session_hash not in self.recordings:
                end_live_stream_of(self.demo, request)
            return gr.skip(), gr.skip(), gr.skip()
        try:
            answer = await asyncio.to_thread(self.keep_arrived, request.session_hash, self.address(request))
        except Voice2FaceError as err:
            # the live view is full, or a chunk was refused: this stream ends here (an open one holds one of
            # Gradio's 40 jobs); what the recording kept stays until Stop, or LIVE_IDLE_S, for the comparison
            end_live_stream_of(self.demo, request)
            return None, str(err), gr.skip()
        if answer is None:  # its chunks were kept by the call before this one
            return gr.skip(), gr.skip(), gr.skip()
        return answer.face if answer.new_face else gr.skip(), answer.caption, answer.token or gr.skip()

    def keep_arrived(self, session: str, address: str | None) -> LiveAnswer | None:
        """Keep every chunk noted for `session`, in order; the answer to the last (None: none had arrived)."""
        answer = None
        for path, token in self.arrivals.take(session):
            answer = self.recordings.add_file(session, path, token, address)
        return answer

    def drop_recording(self, request: gr.Request) -> None:
        self.recordings.close(request.session_hash)  # the tab that holds it closed (Gradio's own unload)

    def live_finish(self, choices, extra, token, request: gr.Request):
        """Stop: the recording this page holds the token of is drawn as the usual comparison."""
        session = request.session_hash
        if self.recordings.belongs(session, token or ""):  # a stranger's Stop leaves the recording as it is
            # chunks that came after the stream's last call are the recording's end; later ones are not the next's
            for path, chunk_token in self.arrivals.finish(session, live_streams_of(self.demo, session)):
                with contextlib.suppress(Voice2FaceError):
                    self.recordings.add_file(session, path, chunk_token, self.address(request))
        live = self.recordings.close(session, token or "")
        try:
            recording = live.recording() if live is not None else None
        except Voice2FaceError as err:  # the microphone sent nothing
            yield self.error_outputs(str(err), live=True)
            return
        if recording is None:
            yield self.error_outputs(NO_RECORDING, live=True)
            return
        yield from self.draw_page(recording, choices, extra, live=True)
