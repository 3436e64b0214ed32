"""The web demo: its logic directly, its API through gradio_client, and its page in Chromium."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from voice2face import Voice2Face, Voice2FaceError
from voice2face.images import DISPLAY_SIZE
from voice2face.web import layout
from voice2face.web import server as web_server
from voice2face.web.charts import CHART_TEXT_PX, display_levels
from voice2face.web.page import (
    DEFAULT_CHOICES,
    demo_request,
    demo_steps,
    durations_from_choices,
    example_clips,
    example_labels,
    faces_html,
    message_html,
    model_card,
    save_image,
)

from ..conftest import free_port


@pytest.fixture(scope="module")
def model(random_checkpoint) -> Voice2Face:
    return Voice2Face.from_pretrained(random_checkpoint)


@pytest.fixture(scope="module")
def server(model, random_checkpoint):
    demo = layout.build_demo(model, random_checkpoint)
    port = free_port()
    web_server.launch(demo, "127.0.0.1", port, share=False, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


# --------------------------------------------------------------------------- logic


def test_durations_from_choices_adds_free_text_and_sorts():
    assert durations_from_choices(["8 s", "whole clip", "1 s"], "3, 12.5") == (1.0, 3.0, 8.0, 12.5, None)
    with pytest.raises(Voice2FaceError, match="at least one"):
        durations_from_choices([], "")
    with pytest.raises(Voice2FaceError, match="positive"):
        durations_from_choices(["1 s"], "-4")


def test_linear_mel_energies_are_drawn_in_decibels():
    energies = np.array([[1e-30, 1e-6, 1e-3], [1e-2, 0.1, 1.0]])
    drawn = display_levels(energies, log_compressed=False)
    assert drawn.max() == pytest.approx(0.0) and drawn.min() == pytest.approx(-80.0)  # 80 dB below the peak, not -300
    assert drawn[0, 2] == pytest.approx(-30.0)
    log_mels = np.array([[-2.0, 0.5], [1.0, 3.0]])
    assert np.array_equal(display_levels(log_mels, log_compressed=True), log_mels)


def test_demo_request_gives_everything_the_page_shows(model, speech_wav):
    out = demo_request(model, str(speech_wav), DEFAULT_CHOICES)
    assert len(out.faces) == 5
    assert all(face.size == (DISPLAY_SIZE, DISPLAY_SIZE) for face, _ in out.faces)
    assert [caption for _, caption in out.faces][:4] == ["1.0 s", "2.0 s", "4.0 s", "8.0 s"]
    assert out.settle["seconds of speech"][:4] == [1.0, 2.0, 4.0, 8.0]
    assert out.settle["similarity to whole clip"][-1] == pytest.approx(1.0, abs=1e-3)
    assert out.settle_plot.width > 400
    assert out.spectrogram.width > 400 and out.strip.width > 5 * 160
    assert "of speech" in out.notes


def test_faces_arrive_one_by_one_whole_clip_first(model, speech_wav):
    steps = list(demo_steps(model, str(speech_wav), ["1 s", "4 s", "whole clip"]))
    assert len(steps) == 3
    drawn = [[face is not None for face, _ in step.faces] for step in steps]
    assert drawn == [[False, False, True], [False, True, True], [True, True, True]]
    assert [step.strip for step in steps[:2]] == [None] * 2 and steps[-1].strip.width > 3 * DISPLAY_SIZE  # the strip comes last
    # how the face settles needs every length heard: it comes with the last face, as the full-size download does
    assert [step.settle is None for step in steps] == [True, True, False] and steps[-1].full_size is not None
    assert "drawing…" in faces_html(steps[0].faces) and faces_html(steps[0].faces).count("data:image/jpeg") == 1
    whole = demo_request(model, str(speech_wav), ["1 s", "4 s", "whole clip"])
    assert np.array_equal(np.asarray(whole.faces[2][0]), np.asarray(steps[-1].faces[2][0]))


def test_lengths_box_is_checked_before_any_audio_is_read():
    with pytest.raises(Voice2FaceError, match="'abc' in the lengths box is not a number of seconds"):
        durations_from_choices(["1 s"], "abc")
    with pytest.raises(Voice2FaceError, match="at most 100 characters"):
        durations_from_choices(["1 s"], " ".join(["2"] * 2000))
    with pytest.raises(Voice2FaceError, match="At most 16 lengths at once: 5 ticked and 17 typed make 22"):
        durations_from_choices(DEFAULT_CHOICES, " ".join(str(k) for k in range(1, 18)))
    assert durations_from_choices(["1 s"], "whole") == (1.0, None)


@pytest.mark.parametrize("seconds", [(1, 2, 4, 8, 8.3), (0.5, 0.6, 0.7, 0.8, 0.9, 1.0), (1, 2, 4, 8, 16, 30, 60, 299, 300)])
def test_spectrogram_labels_never_overlap_and_stay_on_the_plot(seconds):
    from PIL import ImageDraw

    from voice2face.lengths import Cut
    from voice2face.web.charts import _overlap, chart_fonts, cut_labels

    cuts = [Cut(s, 0, s, False) for s in seconds[:-1]] + [Cut(None, 0, seconds[-1], False)]
    plot = (50, 6, 470, 246)
    _, bold = chart_fonts()
    x_of = lambda s: plot[0] + s / seconds[-1] * (plot[2] - plot[0])  # noqa: E731
    placed = cut_labels(ImageDraw.Draw(Image.new("RGB", (480, 300))), cuts, x_of, plot, bold)
    assert [label for _, (*_, label) in placed] == [f"{s:g} s" for s in seconds[:-1]] + ["whole"]
    boxes = [box for box, _ in placed]
    for k, box in enumerate(boxes):
        assert plot[0] <= box[0] and box[2] <= plot[2] and plot[1] <= box[1] and box[3] <= plot[3], box
        assert not any(_overlap(box, other) for other in boxes[k + 1 :])


@pytest.mark.parametrize("seconds", [(9.2, 1, 2, 4, 8), (299.9, 1, 2, 4, 8, 16, 30, 60, 120, 299), (1.0,)])
def test_time_axis_labels_keep_the_first_asked_stay_on_the_chart_and_never_overlap(seconds):
    from PIL import ImageDraw

    from voice2face.web.charts import _overlap, axis_labels, chart_fonts

    small, _ = chart_fonts()
    width, left, right = 480, 60, 460  # the longest length sits at the plot's right end, 20 px from the edge
    x_of = lambda s: left + s / max(seconds) * (right - left)  # noqa: E731
    placed = axis_labels(ImageDraw.Draw(Image.new("RGB", (width, 300))), list(seconds), x_of, 250, small, width - 2)
    assert placed[0][1][3] == f"{seconds[0]:g}"  # the whole clip's "9.2" is not hidden by "8"
    boxes = [box for box, _ in placed]
    for k, box in enumerate(boxes):
        assert 0 <= box[0] and box[2] <= width - 2, box  # "299.9" is not cut off at the edge
        assert not any(_overlap(box, other, 4) for other in boxes[k + 1 :])
    assert len(placed) >= min(len(seconds), 4)


def test_faces_html_puts_captions_under_faces_and_escapes_them(model, speech_wav):
    out = demo_request(model, str(speech_wav), ["1 s", "whole clip"])
    page = faces_html(out.faces)
    assert page.count("<figure") == 2 and page.count("data:image/jpeg;base64,") == 2
    assert "<figcaption>1.0 s</figcaption>" in page
    assert "&lt;script&gt;" in faces_html([(out.faces[0][0], "<script>")])
    error = message_html("Bad <file>")
    assert "Could not draw a face" in error and "&lt;file&gt;" in error


def test_save_image_is_atomic_and_named_by_content(tmp_path, model, speech_wav):
    out = demo_request(model, str(speech_wav), ["1 s"])
    first = save_image(out.strip, tmp_path)
    again = save_image(out.strip, tmp_path)
    other = save_image(out.spectrogram, tmp_path)
    assert first == again != other
    assert Image.open(first).size == out.strip.size
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({Path(first).name, Path(other).name})  # no .part left
    named = save_image(out.strip, tmp_path, "voice2face-faces")  # what a download is called
    assert Path(named).name == "voice2face-faces.png" and Image.open(named).size == out.strip.size  # no hash in it
    assert Path(save_image(out.spectrogram, tmp_path, "voice2face-faces")).parent != Path(named).parent  # kept apart
    photo = save_image(out.strip, tmp_path, kind="jpg")  # as the page shows its strip
    assert Image.open(photo).format == "JPEG" and Image.open(photo).size == out.strip.size
    assert Path(photo).stat().st_size < Path(first).stat().st_size


def test_no_audio_is_a_clear_message(model):
    with pytest.raises(Voice2FaceError, match="Record or upload"):
        demo_request(model, None, DEFAULT_CHOICES)


def test_model_card_warns_about_untrained_models(model, random_checkpoint):
    plain, technical = model_card(model, random_checkpoint)
    assert "untrained" in plain and "nothing (random init)" in technical


@pytest.mark.parametrize("name", ["default", "dcgan-64"])
def test_model_card_says_in_plain_words_what_the_model_learned_from(name):
    path = Path(__file__).resolve().parents[2] / "checkpoints" / name
    plain, technical = model_card(Voice2Face.from_pretrained(path), path)
    speakers = Voice2Face.from_pretrained(path).info.training["speakers"]
    real = Voice2Face.from_pretrained(path).info.training["real_speakers"]
    assert (f"voices of {speakers:,} speakers" if speakers > real else f"voices of {real:,} real people") in plain
    assert "never shown any speaker's face" in plain
    assert "cannot show what the speaker looks like" in plain and "non-commercial" in plain
    for jargon in ("DCGAN", "ge2e", "crop_part1", "training steps", "face space", "embedding", "mel"):
        assert jargon not in plain, jargon
    assert "training steps" in technical and "trained_on" not in technical


def test_bundled_examples_exist_hold_speech_and_say_where_they_come_from(model):
    clips = example_clips()
    assert len(clips) >= 3
    origins = (Path(clips[0]).parent / "README.md").read_text()
    for clip in clips:
        assert model.faces_for_durations(clip, (None,)).utterance.speech_seconds > 5
        assert Path(clip).name in origins  # each one's source and licence, in the examples' README
    assert any("real voice" in label for label in example_labels())


# --------------------------------------------------------------------------- API


def test_api_returns_faces_captions_and_plot(server, speech_wav):
    client = Client(server, verbose=False)
    gallery, settle, spectrogram, strip, notes = client.predict(
        handle_file(str(speech_wav)), ["1 s", "2 s", "4 s", "whole clip"], "", api_name="/faces"
    )
    assert len(gallery) == 4
    assert {(Image.open(item["image"]).size, Image.open(item["image"]).format) for item in gallery} == {((DISPLAY_SIZE, DISPLAY_SIZE), "PNG")}
    assert [item["caption"] for item in gallery][:3] == ["1.0 s", "2.0 s", "4.0 s"]
    assert settle["seconds of speech"][:3] == [1.0, 2.0, 4.0] and len(settle["similarity to whole clip"]) == 4
    assert Image.open(spectrogram).width > 400 and Image.open(strip).width > 4 * 160
    assert Image.open(spectrogram).format == "PNG" and Image.open(strip).format == "JPEG"  # a chart; photographs
    assert "of speech" in notes and "**" not in notes  # plain text, not Markdown
    # one clip's seconds read the same everywhere: the whole clip's caption, the API's figure, the notes
    whole = gallery[-1]["caption"].removeprefix("whole clip, ")
    assert whole == f"{settle['seconds of speech'][-1]:.1f} s" and f"Heard {whole} of speech" in notes


def test_api_refuses_a_length_it_does_not_offer_in_our_words(server, speech_wav):
    client = Client(server, verbose=False)
    with pytest.raises(AppError) as refused:
        client.predict(handle_file(str(speech_wav)), ["1 s", "3 s"], "", api_name="/faces")
    message = str(refused.value)
    assert "'3 s' is not one of the lengths offered" in message and "other-lengths box" in message
    assert "list of choices" not in message


def test_api_silence_is_an_error_then_the_server_still_answers(server, speech_wav, tmp_path, capfd):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(32000, np.float32), 16000)
    client = Client(server, verbose=False)
    with pytest.raises(AppError, match="silent"):
        client.predict(handle_file(str(silent)), DEFAULT_CHOICES, "", api_name="/faces")
    corrupt = tmp_path / "corrupt.webm"
    corrupt.write_bytes(b"\x1aE\xdf\xa3" + bytes(200))
    with pytest.raises(AppError, match="Could not decode"):
        client.predict(handle_file(str(corrupt)), DEFAULT_CHOICES, "", api_name="/faces")
    gallery, *_ = client.predict(handle_file(str(speech_wav)), ["1 s"], "", api_name="/faces")
    assert len(gallery) == 1
    assert "Traceback" not in capfd.readouterr().err  # the visitor's mistakes are not the server's errors


def test_api_refuses_web_addresses_instead_of_downloading_them(server):
    client = Client(server, verbose=False)
    with pytest.raises(AppError, match="web addresses are not fetched"):
        client.predict(handle_file("http://127.0.0.1:9/huge.wav"), ["1 s"], "", api_name="/faces")


@pytest.mark.parametrize("path", ["/etc/passwd", "file:/etc/passwd", "../../etc/passwd"])
def test_api_refuses_paths_on_the_server_without_naming_its_folders(server, path):
    import httpx

    api = server + "gradio_api/call/faces"
    event = httpx.post(api, json={"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, ["1 s"], ""]}).json()
    answer = httpx.get(f"{api}/{event['event_id']}", timeout=60).text
    assert "Only files uploaded to this page can be used" in answer
    assert "/etc" not in answer and "/tmp" not in answer and "cache" not in answer


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (apt-get install curl; .ci/run does)")
def test_the_readmes_curl_calls_draw_faces_and_say_what_is_wrong(server, speech_wav, tmp_path):
    """The README's three curl steps, run as written: faces for a clip, and the page's words for a file that is no audio."""
    import httpx

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    script = re.search(r"```bash\n(URL=http://127\.0\.0\.1:7860\n.*?)```", readme, re.S).group(1)
    noise = tmp_path / "clip.txt"
    noise.write_text("not a recording")

    def run(clip: Path) -> str:
        filled = script.replace("http://127.0.0.1:7860", server.rstrip("/")).replace("clip.wav", str(clip))
        return subprocess.run(["bash", "-c", filled], capture_output=True, text=True, timeout=120).stdout

    drawn, refused = run(speech_wav), run(noise)
    assert drawn.startswith("event: complete") and '"caption": "1.0 s"' in drawn, drawn[:300]
    face = httpx.get(re.search(r'"url": "([^"]+)"', drawn).group(1))
    assert face.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert refused.startswith("event: error") and "Could not draw a face" in refused and "Traceback" not in refused, refused


def test_gradios_question_about_the_chart_backend_does_not_import_pyplot():
    """Around every event Gradio asks matplotlib for its backend; left unset, matplotlib imported pyplot to answer, on the
    first visitor's request and in the server's event loop (0.35 s with no page answered). In a fresh interpreter, as a
    server starts."""
    code = (
        "import sys\nfrom gradio.utils import MatplotlibBackendMananger\n"
        "from voice2face.web.server import draw_charts_headless\n"
        "draw_charts_headless()\nwith MatplotlibBackendMananger():\n    pass\n"
        "print('matplotlib.pyplot' in sys.modules)"
    )
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert answer.stdout.strip() == "False", answer.stderr[-500:]


def test_no_route_skips_the_queue_and_request_bodies_are_capped(server):
    import httpx

    for name in ("faces", "draw_page", "live_update"):  # the queue's limits hold for every route
        assert httpx.post(f"{server}gradio_api/run/{name}", json={"data": [None, ["1 s"], ""]}).status_code == 404
    huge = {"data": ["data:audio/wav;base64," + "A" * (2 << 20)], "fn_index": 0, "session_hash": "x"}
    assert httpx.post(f"{server}gradio_api/queue/join", json=huge).status_code == 413  # declared length

    def streamed():
        for _ in range(64):
            yield b"A" * 65536

    assert httpx.post(f"{server}gradio_api/queue/join", content=streamed()).status_code == 413  # no length declared
    # Gradio's screen-recording route runs ffmpeg outside the queue (12.8 s for a 235 KB video): closed
    video = {"video": ("rec.mp4", b"\0" * 1000, "video/mp4")}
    assert httpx.post(f"{server}gradio_api/process_recording", files=video).status_code == 404
    assert httpx.get(server).status_code == 200


def page_event(client, server: str, name: str, data: list, session: str, to_the_end: bool = False) -> list:
    """Call the page's event `name` as a browser session would, over HTTP, and return its first answer
    (a stream, such as the Live tab's, is left open, as a stranger's would be); with `to_the_end`, every
    message until the server ends the event."""
    import json

    names = [d.get("api_name") for d in client.get(server + "config").json()["dependencies"]]
    client.post(server + "gradio_api/queue/join",
                json={"data": data, "fn_index": names.index(name), "session_hash": session}).raise_for_status()  # fmt: skip
    messages, deadline = [], time.monotonic() + 60
    with client.stream("GET", server + "gradio_api/queue/data", params={"session_hash": session}) as answer:
        for line in answer.iter_lines():  # Gradio sends a heartbeat every 15 s, so the deadline is looked at
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} was not answered within 60 s")
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            messages += [message] if message.get("msg") else []
            if message.get("msg") == "process_completed" and to_the_end:
                return messages
            if message.get("msg") in ("process_streaming", "process_completed") and not to_the_end:
                return message["output"]["data"]
    raise AssertionError(f"{name} gave no answer")


#: The recording token each session was handed by the server (with the answer to the chunk that began its recording).
TOKENS: dict[str, str] = {}


def live_chunk(client, server: str, clip: Path, session: str, token: str | None = None) -> list:
    """One chunk to the Live tab's stream, with the session's token as its page would send it: [face, caption]."""
    uploaded = client.post(server + "gradio_api/upload", files={"files": clip.open("rb")}).json()[0]
    chunk = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
    face, caption, handed = page_event(client, server, "live_update", [chunk, TOKENS.get(session, "") if token is None else token], session)
    if isinstance(handed, str) and handed:
        TOKENS[session] = handed
    return [face, caption]


def live_stop(client, server: str, session: str, token: str | None = None) -> list:
    """Stop, as the session's page does: its choices, and its token."""
    return page_event(client, server, "live_finish", [["1 s"], "", TOKENS.get(session, "") if token is None else token], session)


def test_live_view_holds_a_bounded_number_of_recordings_and_says_when_full(server, speech_wav, tmp_path):
    """Streams that send one chunk and never close once kept a ninth visitor waiting for minutes; now
    the recordings are capped, the next visitor is told at once, and nothing else waits on them."""
    import httpx

    from voice2face.web.limits import MAX_LIVE_RECORDINGS

    clip = tmp_path / "one-second.wav"
    data, rate = soundfile.read(speech_wav, dtype="float32")
    soundfile.write(clip, data[:rate], rate)
    with httpx.Client(timeout=30) as client:
        sessions = [f"held{i}" for i in range(MAX_LIVE_RECORDINGS)]
        for session in sessions:
            face, caption = live_chunk(client, server, clip, session)
            assert "full" not in caption, caption
        start = time.perf_counter()
        face, caption = live_chunk(client, server, clip, "one-too-many")
        assert face is None and caption.startswith(f"The live view is full: {MAX_LIVE_RECORDINGS} visitors are recording")
        assert time.perf_counter() - start < 3
        # a refused stream is ended at once: Gradio runs 40 jobs at most, and 40 open streams held every
        # route, faces included, for the streams' 300 s
        for k in range(45):
            assert live_chunk(client, server, clip, f"refused{k}")[1].startswith("The live view is full")
        start = time.perf_counter()
        assert len(Client(server, verbose=False).predict(handle_file(str(speech_wav)), ["1 s"], "", api_name="/faces")[0]) == 1
        assert time.perf_counter() - start < 20
        for session in sessions:  # Stop hands each recording over to the comparison, and frees its place
            live_stop(client, server, session)
        face, caption = live_chunk(client, server, clip, "one-too-many")
        assert "full" not in caption, caption
        live_stop(client, server, "one-too-many")
        # a refused visitor who stops is told why nothing was drawn
        stopped = live_stop(client, server, "refused0")
        assert "No recording reached the server: the live view was full" in stopped[0]


def test_live_streams_without_audio_or_with_a_refused_chunk_are_ended_at_once(server, tmp_path):
    """A Live event with no chunk, or with a chunk the recording refuses (17 MB "of one second"), once
    stayed open for the stream's 300 s (or until dropped as idle), holding one of the 40 jobs Gradio runs
    at once: 40 such calls held every route, faces included."""
    import httpx

    huge = tmp_path / "huge.wav"
    soundfile.write(huge, np.zeros(9 * 2**20, np.int16), 16000, subtype="PCM_16")  # 18 MB, under the upload cap
    with httpx.Client(timeout=30) as client:
        uploaded = client.post(server + "gradio_api/upload", files={"files": huge.open("rb")}).json()[0]
        for session, chunk in (("no-audio", None), ("huge-chunk", {"path": uploaded, "meta": {"_type": "gradio.FileData"}})):
            start = time.perf_counter()
            messages = page_event(client, server, "live_update", [chunk, ""], session, to_the_end=True)
            assert messages[-1]["msg"] == "process_completed" and time.perf_counter() - start < 5, session
    answers = [str(m.get("output", {}).get("data")) for m in messages]
    assert any("far more than a second of audio" in answer for answer in answers), answers


def test_api_names_its_outputs_and_marks_the_lengths_box_optional(server):
    info = Client(server, verbose=False).view_api(print_info=False, return_format="dict")
    endpoint = info["named_endpoints"]["/faces"]
    assert [r["label"] for r in endpoint["returns"]] == [
        "Faces with captions", "How much the face changes as you speak longer", "The speech", "All faces side by side",
        "What was used",
    ]  # fmt: skip
    extra = next(p for p in endpoint["parameters"] if p["parameter_name"] == "extra")
    assert extra["parameter_has_default"]
    assert set(info["named_endpoints"]) == {"/faces"}  # the page's own events are not API endpoints


@pytest.mark.slow
def test_uploads_and_outputs_are_swept_from_the_cache(model, random_checkpoint, speech_wav, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    demo = layout.build_demo(model, random_checkpoint)
    port = free_port()
    sweeper = web_server.launch(demo, "127.0.0.1", port, share=False, block=False, cache_sweep=(1, 2))
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        for _ in range(4):
            client.predict(handle_file(str(speech_wav)), ["1 s", "whole clip"], "", api_name="/faces")
        files = lambda: [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # noqa: E731
        assert any(p.suffix == ".png" for p in files()) and any(p.name == "speech.wav" for p in files())
        # only the worked example the page opens with stays: its pictures, made once at start-up
        example = set().union(*(getattr(block, "keep_in_cache", set()) for block in demo.blocks.values()))
        swept = lambda: [p for p in files() if str(p) not in example]  # noqa: E731
        deadline = time.monotonic() + 20
        while swept() and time.monotonic() < deadline:  # wait for the sweep (every 1 s, files over 2 s old)
            time.sleep(0.25)
        left = swept()
    finally:
        sweeper.clear()
        demo.close()
    assert left == [] and len(example) <= 3, left
    assert files() == []  # and at shutdown, the page's own pictures too


@pytest.mark.slow
def test_identical_concurrent_requests_all_succeed(server, speech_wav):
    """Several people clicking the same example at once: every download must be whole."""

    def one(_):
        client = Client(server, verbose=False)
        gallery, _, spectrogram, strip, _ = client.predict(handle_file(str(speech_wav)), ["1 s", "whole clip"], "", api_name="/faces")
        return [Image.open(item["image"]).size for item in gallery], Image.open(strip).size

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    assert len(results) == 16 and len(set(map(str, results))) == 1


# --------------------------------------------------------------------------- real browser

CHROMIUM = shutil.which("chromium")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def browser(playwright, extra_args=()):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*BROWSER_ARGS, *extra_args])


NEEDS_CHROMIUM = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does)")
def fake_microphone(clip) -> list[str]:
    """Chromium flags: a microphone that plays `clip`, allowed without asking."""
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={clip}"]
VIEWPORTS = {"phone": (390, 844), "desktop": (1366, 900)}
#: True once every face is drawn: faces arrive one by one, each missing one a placeholder until then.
ALL_FACES_DRAWN = (
    "!!document.querySelector('#faces .v2f-faces:not(.v2f-example) img') && !document.querySelector('#faces .v2f-pending')"
)
#: True once the visitor's request has an answer on the page: every face, or an error.
ANSWERED = f"!!document.querySelector('#faces .v2f-error') || ({ALL_FACES_DRAWN})"
#: True once a draw has ended: the page unmarks what it marked as the previous clip's when the event is over.
DRAW_ENDED = "!document.querySelector('.v2f-previous')"
#: Every element whose whole text is "Error" (a Gradio status badge or toast), named by the component around it.
SAYING_ERROR = """() => [...document.querySelectorAll('*')]
  .filter(e => e.children.length === 0 && (e.textContent || '').trim() === 'Error')
  .map(e => ((e.closest('[id]') || {}).id || '') + ' ' + e.parentElement.className)"""

#: Boxes of every face, the spectrogram, the strip and every visible label on the page.
BOXES_JS = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return {x: r.left + window.scrollX, y: r.top + window.scrollY,
                     w: r.width, h: r.height, text: (e.innerText || '').trim().slice(0, 40)}; };
  const visible = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const all = sel => [...document.querySelectorAll(sel)].filter(visible).map(box);
  return {faces: all('#faces .v2f-face img'), pictures: all('#settle img, #spectrogram img, #strip img'),
          labels: all('[data-testid="block-label"], [data-testid="block-info"], label, .label-wrap'),
          captions: all('#faces figcaption')};
}"""


#: Whether the answer's first row (the first face, or the error box) lies wholly inside the viewport.
FIRST_ROW_IN_VIEW = """() => {
  const first = document.querySelector('#faces .v2f-error') || document.querySelector('#faces .v2f-faces:not(.v2f-example) .v2f-face');
  const r = first.getBoundingClientRect();
  return r.top >= 0 && r.bottom <= window.innerHeight;
}"""
#: Whether an element lies wholly inside the viewport.
IN_VIEW = "s => { const r = document.querySelector(s).getBoundingClientRect(); return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }"
#: The charts and the strip that come with the last face are on the page, named by page.js (Gradio's come unnamed).
PICTURES_NAMED = ("['#settle', '#spectrogram', '#strip']"
                  ".every(s => { const i = document.querySelector(s + ' img'); return i && i.alt; })")
#: Both charts' pictures are in and decoded (Gradio's images load lazily, once near the screen).
CHARTS_LOADED = ("['#settle img', '#spectrogram img']"
                 ".every(s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; })")
#: How big each chart's text is on screen, and the buttons Gradio lays over pictures.
CHARTS_JS = """() => ({
  charts: ['#settle img', '#spectrogram img'].map(s => document.querySelector(s))
            .map(i => ({shown: i.getBoundingClientRect().width, natural: i.naturalWidth})),
  buttons: [...document.querySelectorAll('#settle button, #spectrogram button, #strip button, #live-face button')]
            .filter(b => !b.querySelector('img')).length,  // Gradio wraps each picture in a button of its own
})"""


def overlaps(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]


def open_page(playwright, server, viewport, extra_args=(), init_script: str | None = None):
    """The page as a visitor meets it: with its own script run (page.js names Gradio's unnamed chart buttons;
    axe run before it found them unnamed, once in CI's run of the whole suite). `init_script`: the test's own
    probe, run before the page's scripts."""
    b = browser(playwright, extra_args)
    page = b.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    if init_script:
        page.add_init_script(init_script)
    page.goto(server)
    page.wait_for_selector("html[data-v2f-ready]", state="attached", timeout=60000)
    return b, page


def wait_for_live_recorder(page) -> None:
    """Wait until the Live tab can record. Its streaming recorder loads a WAV encoder into a web worker
    after the page opens; a Record click before that records nothing and sends no audio (a fresh
    Chromium takes up to seconds: this was the cause of the live test's failures, not the app)."""
    page.wait_for_selector("#live-voice button.record-button")
    deadline = time.monotonic() + 30
    while not page.workers and time.monotonic() < deadline:
        page.wait_for_timeout(20)


def tab_stops_to_draw(page) -> tuple[int | None, str]:
    """Tab presses from the upload button to Draw (None: not reached in 10), and Draw's focus outline then."""
    page.focus('#voice button[aria-label="Upload file"]')
    for presses in range(1, 11):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "draw":
            outline = page.evaluate("(s => `${s.outlineStyle} ${s.outlineWidth}`)(getComputedStyle(document.activeElement))")
            return presses, outline
    return None, ""


def upload(page, path) -> None:
    page.click('#voice button[aria-label="Upload file"]')
    page.set_input_files("#voice input[type=file]", str(path))
    page.wait_for_selector("#voice button[aria-label='Clear']")


@pytest.mark.slow
@NEEDS_CHROMIUM
@pytest.mark.parametrize("viewport", VIEWPORTS.values(), ids=VIEWPORTS.keys())
def test_browser_faces_fit_and_errors_stay_readable(server, speech_wav, tmp_path, viewport):
    from playwright.sync_api import sync_playwright

    not_audio = tmp_path / "notaudio.wav"
    not_audio.write_text("this is a text file, not a recording")
    with sync_playwright() as p:
        b, page = open_page(p, server, viewport)
        page.wait_for_selector("#draw")
        tabs_empty = tab_stops_to_draw(page)
        # a bad file: the message stays, names no server path, and no pane says "Error"
        upload(page, not_audio)
        outlive_toasts = viewport == VIEWPORTS["phone"]  # seen once, as the page's size plays no part
        if outlive_toasts:  # the page's timers on a clock the test moves: Gradio closes a toast by setTimeout
            page.clock.install()
        page.click("#draw")
        page.wait_for_selector("#faces .v2f-error")
        error_in_view = page.evaluate(FIRST_ROW_IN_VIEW)
        # the emptied charts and strip are hidden with their headings, not left as empty boxes
        emptied_heights = page.evaluate("['#charts', '#strip-box'].map(s => document.querySelector(s).getBoundingClientRect().height)")
        page.wait_for_function(DRAW_ENDED, timeout=30000)  # the clock moves for a visitor who waits, not mid-answer
        if outlive_toasts:  # it outlives Gradio's toasts (10 s), with every timer due in 15 s fired
            page.clock.run_for(15000)
        error = page.inner_text("#faces .v2f-error")
        error_badges = page.evaluate(SAYING_ERROR)
        page.screenshot(path=str(tmp_path / "error.png"))
        # a clip of about 7 s of speech with 30 s asked for as well: one whole-clip face, no copies
        page.click("#voice button[aria-label='Clear']")
        upload(page, speech_wav)
        tabs_loaded = tab_stops_to_draw(page)  # the player's controls come before the upload button, not between
        page.click("#lengths-accordion .label-wrap")
        page.check("#lengths label:has-text('30 s') input")
        page.click("#draw")
        page.wait_for_function("!document.querySelector('#faces .v2f-error')", timeout=10000)  # the last answer goes at once
        page.wait_for_function(ANSWERED, timeout=60000)
        faces_in_view = page.evaluate(FIRST_ROW_IN_VIEW)  # as soon as they arrive, before the visitor scrolls
        page.wait_for_function(ALL_FACES_DRAWN, timeout=60000)
        page.wait_for_selector("#strip-download")
        boxes = page.evaluate(BOXES_JS)
        # the settle chart comes with the last face (it needs every length heard): read as a visitor who scrolls to it
        page.locator("#charts").scroll_into_view_if_needed()
        page.wait_for_function(CHARTS_LOADED, timeout=10000)
        charts = page.evaluate(CHARTS_JS)
        sliders_shown = page.is_visible("#tune")  # this model reads no gender or age: no sliders
        page.screenshot(path=str(tmp_path / "faces.png"), full_page=True)
        with page.expect_download(timeout=60000) as download:  # the full-size strip, drawn when asked for
            page.click("#strip-download")
        full_strip = Image.open(download.value.path())
        shown_strip = Image.open(io.BytesIO(page.request.get(page.get_attribute("#strip img", "src")).body()))
        b.close()
    assert "Could not draw a face" in error and "notaudio.wav" in error and "/tmp" not in error
    assert error_badges == []
    assert emptied_heights == [0, 0]
    assert error_in_view and faces_in_view  # no scrolling needed to see the answer, on a phone too
    # Draw within three tab stops of the upload, with no clip and with one, and its focus plain to see
    assert tabs_empty[0] is not None and tabs_empty[0] <= 3 and tabs_loaded[0] is not None and tabs_loaded[0] <= 3
    assert tabs_empty[1] == tabs_loaded[1] == "solid 3px"
    for chart in charts["charts"]:  # chart text, drawn CHART_TEXT_PX high, is at least 11 px on screen
        assert CHART_TEXT_PX * chart["shown"] / chart["natural"] >= 11, chart
    assert charts["buttons"] == 0  # no icon over a picture
    assert not sliders_shown
    captions = [c["text"] for c in boxes["captions"]]
    assert captions[:4] == ["1.0 s", "2.0 s", "4.0 s", "8.0 s"] or captions[:3] == ["1.0 s", "2.0 s", "4.0 s"]
    assert len(captions) == len(set(captions)) and captions[-1].startswith("whole clip, ")
    assert sum(c.startswith("whole clip") for c in captions) == 1
    # the page's strip holds its faces at their shown size; the download has them all at full size
    assert full_strip.format == "PNG" and full_strip.width == shown_strip.width == len(captions) * (DISPLAY_SIZE + 8) + 8
    assert shown_strip.format == "JPEG"  # photographs: a sixth of the PNG's bytes, encoded before the last face in a tenth
    for face in boxes["faces"]:
        assert face["x"] >= 0 and face["x"] + face["w"] <= viewport[0], face
    for label in boxes["labels"]:
        for picture in boxes["faces"] + boxes["pictures"]:
            assert not overlaps(label, picture), (label, picture)


@pytest.mark.slow
@NEEDS_CHROMIUM
def test_browser_microphone_recording_draws_faces(server, speech_wav, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b, page = open_page(p, server, VIEWPORTS["desktop"], fake_microphone(speech_wav))
        page.click("#voice button.record")
        # record until the recorder's own clock shows 4 s
        page.wait_for_function(
            "[...document.querySelectorAll('#voice time')].some(t => /^0:0[4-9]$/.test(t.textContent.trim()))", timeout=20000
        )
        # Draw at once: the recording is still uploading, and the page must hold the click until it is in
        # place (the test's own clicks here once raced the upload and got "Record or upload a clip first")
        page.click("#voice button.stop-button")
        page.click("#draw")
        page.wait_for_function(ANSWERED, timeout=60000)
        error = page.inner_text("#faces .v2f-error") if page.query_selector("#faces .v2f-error") else ""
        count = len(page.query_selector_all("#faces .v2f-faces:not(.v2f-example) .v2f-face img"))
        b.close()
    assert error == ""
    assert 3 <= count <= 4  # about 4 s recorded: 1, 2 and maybe 4 s, then the whole clip once (8 s is the same speech)


#: While recording, the face so far and its caption must be on screen with the recorder, on phones too.
LIVE_IN_VIEW = """() => ['#live-face img', '#live-caption', '#live-voice button.stop-button'].map(s => {
  const r = document.querySelector(s).getBoundingClientRect();
  return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;
})"""


@pytest.mark.slow
@NEEDS_CHROMIUM
@pytest.mark.parametrize("viewport", [VIEWPORTS["phone"], (360, 740)], ids=["phone", "small phone"])
def test_browser_live_view_updates_while_recording(server, speech_wav, tmp_path, viewport):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b, page = open_page(p, server, viewport, fake_microphone(speech_wav))
        page.click("button[role='tab']:has-text('Live')")
        wait_for_live_recorder(page)
        page.evaluate("""() => {
            window.v2fCaptions = [];
            const target = document.querySelector('#live-caption');
            new MutationObserver(() => window.v2fCaptions.push(target.innerText.trim()))
                .observe(target, {subtree: true, childList: true, characterData: true});
        }""")
        page.click("#live-voice button.record-button")
        # record until the live caption reports 5 s recorded, then count the different faces-so-far shown meanwhile
        page.wait_for_function("window.v2fCaptions.some(t => /, ([5-9]|\\d\\d)\\.\\d s recorded/.test(t))", timeout=20000)
        captions = page.evaluate("[...new Set(window.v2fCaptions)].filter(t => t.startsWith('Face from'))")
        in_view_while_recording = page.evaluate(LIVE_IN_VIEW)
        live_face = page.query_selector("#live-face img")
        live_face_px = live_face.bounding_box()["width"] if live_face else 0
        page.click("#live-voice button.stop-button")
        page.wait_for_function(ANSWERED, timeout=60000)
        in_view = page.evaluate(FIRST_ROW_IN_VIEW)
        page.wait_for_function(ALL_FACES_DRAWN, timeout=60000)
        page.wait_for_function("document.querySelector('#live-caption').innerText.startsWith('Heard')", timeout=30000)
        faces = len(page.query_selector_all("#faces .v2f-faces:not(.v2f-example) .v2f-face img"))
        live_caption, notes = page.inner_text("#live-caption").strip(), page.inner_text("#notes")
        page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
        b.close()
    seconds_used = sorted({float(c.split()[2]) for c in captions})
    assert len(seconds_used) >= 3, captions  # the face was redrawn from more speech at least 3 times
    assert live_face is not None and faces >= 3  # stopping draws the usual side-by-side comparison
    assert len(captions) >= 3, captions
    assert live_face_px >= 128  # the face so far at the comparison's size, on a phone
    assert in_view_while_recording == [True, True, True]  # face, caption and the recorder's stop button
    assert in_view  # the comparison is brought into view when recording stops
    assert live_caption in notes  # after Stop, the live view and the comparison say the same seconds
    for caption in captions:  # one unit, and the speech used never exceeds the recording
        used, recorded = (float(x) for x in re.findall(r"(\d+\.\d) s", caption))
        assert used <= recorded, caption


#: The test's probe of what the browser recorded: each WAV chunk Gradio's recorder hands the page's stream is read
#: as a Blob (when, and how many bytes; rate and channels from the first one's header), and each click on Stop (the visitor's,
#: and page.js's own, untrusted, when the stop takes effect).
RECORDED_PROBE = """
window.v2fRecorded = {chunks: [], stops: [], rate: 0, channels: 0};
const read = Blob.prototype.arrayBuffer;
Blob.prototype.arrayBuffer = function () {
  const recorded = window.v2fRecorded, promise = read.call(this);
  if (this.type === 'audio/wav') {
    recorded.chunks.push([performance.now(), this.size]);
    promise.then((b) => {  // the first chunk's header (chunks are read at once, and may resolve in any order)
      const v = new DataView(b);
      if (b.byteLength >= 44 && v.getUint32(0, false) === 0x52494646) [recorded.channels, recorded.rate] = [v.getUint16(22, true), v.getUint32(24, true)];
    });
  }
  return promise;
};
document.addEventListener('click', (event) => {
  if (event.target.closest('#live-voice button.stop-button')) window.v2fRecorded.stops.push([performance.now(), event.isTrusted]);
}, true);
"""


def recorded_seconds(probe: dict, until: float) -> float:
    """Seconds of 16-bit audio the recorder handed over before `until` (the first chunk carries a 44-byte header)."""
    return (sum(size for at, size in probe["chunks"] if at <= until) - 44) / (2 * probe["rate"] * probe["channels"])


@pytest.mark.slow
@NEEDS_CHROMIUM
def test_browser_live_comparison_covers_the_whole_recording_on_a_busy_server(model, random_checkpoint, speech_wav, monkeypatch):
    """On a busy server the Live stream's handler answers each chunk late (here 0.35 s a call). Gradio keeps only a
    stream's newest chunk meanwhile: with four API clients busy, 6.3 s of an 8 s recording reached the comparison,
    and stopping lost the chunks still on their way. Every second the browser recorded until Stop is heard."""
    import asyncio
    import functools

    from playwright.sync_api import sync_playwright

    from voice2face.web import events

    answer = events.PageEvents.live_update

    @functools.wraps(answer)
    async def late(self, *args, **kwargs):
        await asyncio.sleep(0.35)
        return await answer(self, *args, **kwargs)

    monkeypatch.setattr(events.PageEvents, "live_update", late)
    demo = layout.build_demo(model, random_checkpoint)
    port = free_port()
    web_server.launch(demo, "127.0.0.1", port, share=False, block=False)
    try:
        with sync_playwright() as p:
            b, page = open_page(p, f"http://127.0.0.1:{port}/", VIEWPORTS["desktop"], fake_microphone(speech_wav), RECORDED_PROBE)
            page.click("button[role='tab']:has-text('Live')")
            wait_for_live_recorder(page)
            page.click("#live-voice button.record-button")
            page.wait_for_timeout(6000)
            page.click("#live-voice button.stop-button")
            page.wait_for_function("document.querySelector('#live-caption').innerText.startsWith('Heard')", timeout=60000)
            heard = page.inner_text("#live-caption")
            probe = page.evaluate("window.v2fRecorded")
            b.close()
    finally:
        demo.close()
    (clicked, trusted), (stopped, _) = probe["stops"][0], probe["stops"][-1]
    before_click, until_stop = recorded_seconds(probe, clicked), recorded_seconds(probe, stopped)
    audio = float(re.search(r"in (\d+\.\d) s of audio", heard)[1])
    assert trusted and before_click > 5, probe
    assert round(abs(audio - until_stop), 2) <= 0.2, (heard, until_stop)  # what was recorded until the stop took effect
    assert round(audio - before_click, 2) >= -0.05, (heard, before_click)  # none of it before the visitor's click lost (to the caption's 0.1 s)


@pytest.mark.slow
@NEEDS_CHROMIUM
def test_browser_a_file_that_is_not_audio_gets_our_words(server, tmp_path):
    from playwright.sync_api import sync_playwright

    text = tmp_path / "notes.txt"
    text.write_text("not a recording")
    with sync_playwright() as p:
        b, page = open_page(p, server, VIEWPORTS["phone"])
        page.click('#voice button[aria-label="Upload file"]')
        page.set_input_files("#voice input[type=file]", str(text))
        page.wait_for_selector("#upload-refusal", timeout=10000)
        refusal = page.inner_text("#upload-refusal")
        page.wait_for_timeout(1000)  # time for a toast of Gradio's own to appear, if one were coming (and any scrolling done)
        in_view = page.evaluate(IN_VIEW, "#upload-refusal")  # on a phone it landed below the screen
        toasts = page.locator("text=/Invalid file type|audio\\/aac/").count()
        page.click("#draw")  # the next click still says what to do
        page.wait_for_selector("#faces .v2f-error")
        after = page.inner_text("#faces .v2f-error")
        gone = page.query_selector("#upload-refusal") is None
        b.close()
    assert '"notes.txt" is not a recording' in refusal and "wav, flac" in refusal and in_view
    assert toasts == 0 and "Record or upload a clip first" in after and gone


def test_share_link_offline_is_one_true_line_on_stdout(model, random_checkpoint, monkeypatch, capsys):
    import gradio.networking

    def offline(*args, **kwargs):
        raise RuntimeError("Could not get share link from Gradio API Server.")

    monkeypatch.setattr(gradio.networking, "setup_tunnel", offline)
    demo = layout.build_demo(model, random_checkpoint)
    port = free_port()
    try:
        web_server.launch(demo, "127.0.0.1", port, share=True, block=False)
        out, err = capsys.readouterr()
    finally:
        demo.close()
    lines = [line for line in out.splitlines() if line.strip() and "Closing server" not in line]
    assert lines == [f"Could not make a public link (no connection to Gradio's share service); voice2face is serving at "
                     f"http://127.0.0.1:{port} only."]  # fmt: skip
    assert "--share" not in out and "Download this file" not in out + err


@pytest.fixture(scope="module")
def default_server():
    """The page on the shipped default model: the voice reading and its sliders need a model that reads."""
    model = Voice2Face.from_pretrained()
    demo = layout.build_demo(model, Path(model.path))
    port = free_port()
    web_server.launch(demo, "127.0.0.1", port, share=False, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def tuned_face(page) -> str:
    return page.get_attribute("#tuned-face img", "src")


def move_slider(page, slider: str, value: int) -> str:
    """Move a slider as a visitor does and return the face drawn for it."""
    before = tuned_face(page)
    page.locator(f"{slider} input[type=range]").fill(str(value))
    page.wait_for_function(f"document.querySelector('#tuned-face img').src !== {before!r}", timeout=30000)
    return tuned_face(page)


def press_slider(page, key: str) -> str:
    """Press `key` on the focused slider and return the face drawn for where it lands."""
    before = tuned_face(page)
    page.keyboard.press(key)
    page.wait_for_function(f"document.querySelector('#tuned-face img').src !== {before!r}", timeout=30000)
    return tuned_face(page)


def data_uri_image(uri: str) -> Image.Image:
    import base64
    import io

    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


@pytest.mark.slow
@NEEDS_CHROMIUM
def test_browser_voice_reading_sliders_and_reset(default_server):
    from playwright.sync_api import sync_playwright

    from voice2face.evaluate.judges import AgeGenderJudge, SkinTone
    from voice2face.web.page import OLDER_RANGE, SKIN_RANGE, WHAT_THE_VOICE_SETS

    male = next(clip for clip in example_clips() if "male_voice_en-us" in clip)
    with sync_playwright() as p:
        b, page = open_page(p, default_server, VIEWPORTS["desktop"])
        upload(page, male)
        page.click("#draw")
        page.wait_for_function(ALL_FACES_DRAWN, timeout=60000)
        page.wait_for_selector("#tune #tuned-face img")
        reading = page.inner_text("#reading")
        shared_ids = page.evaluate(
            "() => { const n = {}; document.querySelectorAll('[id]').forEach(e => { if (e.id) n[e.id] = (n[e.id] || 0) + 1; });"
            " return Object.keys(n).filter(k => n[k] > 1); }"
        )
        original = tuned_face(page)
        sliders = [page.input_value(f"{s} input[type=range]") for s in ("#gender-slider", "#age-slider")]
        younger, older = (move_slider(page, "#age-slider", years) for years in OLDER_RANGE)
        as_woman = move_slider(page, "#gender-slider", 100)
        # the skin-tone slider by keyboard alone, as the others: Home takes it to its dark end, End to its light one
        skin_label = page.inner_text("#skin-slider")
        page.click("#reset-face")
        page.wait_for_function(f"document.querySelector('#tuned-face img').src === {original!r}", timeout=30000)
        page.focus("#skin-slider input[type=range]")
        darker = press_slider(page, "Home")
        lighter = press_slider(page, "End")
        skin_end = page.input_value("#skin-slider input[type=range]")
        page.click("#reset-face")
        page.wait_for_function(f"document.querySelector('#tuned-face img').src === {original!r}", timeout=30000)
        reset_sliders = [page.input_value(f"{s} input[type=range]") for s in ("#gender-slider", "#age-slider", "#skin-slider")]
        faces_shown = page.locator("#faces .v2f-face img").count()
        with page.expect_download(timeout=60000) as download:  # drawn again by the full 1024-px network
            page.click("#strip-download")
        full_strip = Image.open(download.value.path())
        download_name = download.value.suggested_filename
        b.close()
    assert full_strip.width == faces_shown * (1024 + 8) + 8 and full_strip.height > 1024
    assert download_name == "voice2face-faces-full-size.png"
    assert "sounds like a man's" in reading and "in the whole clip" in reading and "years old" in reading
    assert shared_ids == []  # Gradio wrote a Group's elem_id ("tune") on two elements
    assert [*sliders, "0"] == reset_sliders and int(sliders[1]) == 0  # reset: the sliders back where the voice put them
    assert "Skin tone" in skin_label and skin_end == str(SKIN_RANGE[1])
    assert WHAT_THE_VOICE_SETS.split(".")[0] in reading and "not taught to guess them from an accent" in reading
    ita = SkinTone().ita([data_uri_image(uri) for uri in (darker, original, lighter)])
    assert ita[0] < ita[1] < ita[2] and ita[2] - ita[0] >= 30, ita
    judged = AgeGenderJudge().read([data_uri_image(uri) for uri in (original, younger, older, as_woman)])
    assert judged[2].age - judged[1].age >= 15, [r.age for r in judged]
    assert judged[0].gender == "m" and judged[3].gender == "f"


def test_app_refuses_a_missing_checkpoint_without_a_traceback(tmp_path):
    proc = subprocess.run(
        ["python", "app.py", "--checkpoint", str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "No checkpoint directory" in proc.stderr and "Traceback" not in proc.stderr


def test_sliders_and_examples_refuse_what_an_api_caller_invents_in_our_words():
    import gradio as gr

    from voice2face.web.server import refuse_out_of_range, refuse_unknown_examples

    with gr.Blocks():
        slider = refuse_out_of_range(gr.Slider(0, 100, value=50, step=1, buttons=[]), "gender")
        examples = refuse_unknown_examples(gr.Examples(example_clips(), inputs=[gr.Audio(type="filepath")],
                                                       example_labels=example_labels()))  # fmt: skip
    assert slider.preprocess(42) == 42 and slider.preprocess(0) == 0
    for hostile in (float("inf"), float("nan"), 1e308, -1, "50", None, True):
        with pytest.raises(gr.Error, match="The gender slider goes from 0 to 100"):
            slider.preprocess(hostile)
    assert examples.dataset.preprocess(2) is not None
    for hostile in (3, 99, -1, "0", None):
        with pytest.raises(gr.Error, match="There are 3 examples"):
            examples.dataset.preprocess(hostile)
    assert example_labels() == ["A woman's voice (synthetic, espeak-ng, 12 s)", "A man's voice (synthetic, espeak-ng, 12 s)",
                                "A man's real voice (John F. Kennedy, 1961, 11 s)"]  # fmt: skip


def test_the_page_says_what_happens_to_recordings_as_the_cache_sweep_does_it():
    from voice2face.web.limits import CACHE_AGE_S, CACHE_SWEEP_S
    from voice2face.web.page import PLAIN_SUMMARY

    assert f"deleted within {(CACHE_AGE_S + CACHE_SWEEP_S) // 60} minutes" in PLAIN_SUMMARY
    assert "never stored elsewhere" in PLAIN_SUMMARY


def axe_source() -> str:
    """axe-core's script, from the npm package .ci/run fetches (npm pack axe-core@4.14.1)."""
    import tarfile

    packs = sorted(Path(os.environ.get("VOICE2FACE_WHEELS", Path.home() / ".cache" / "voice2face" / "wheels")).glob("axe-core-*.tgz"))
    if not packs:
        pytest.skip("axe-core is not fetched: npm pack axe-core@4.14.1 --pack-destination ~/.cache/voice2face/wheels (.ci/run does)")
    with tarfile.open(packs[-1]) as pack:
        return pack.extractfile("package/axe.min.js").read().decode()


AXE_SERIOUS = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter(v => ['serious', 'critical'].includes(v.impact))
    .map(v => `${v.id}: ${v.nodes.map(n => n.target.join(' ')).join(', ')}`);
}"""


@pytest.mark.slow
@NEEDS_CHROMIUM
@pytest.mark.parametrize("viewport", VIEWPORTS.values(), ids=VIEWPORTS.keys())
def test_axe_finds_nothing_serious_on_the_first_page_after_drawing_and_on_the_live_tab(server, viewport):
    from playwright.sync_api import sync_playwright

    axe = axe_source()
    with sync_playwright() as p:
        b, page = open_page(p, server, viewport)
        page.wait_for_selector("#draw")
        page.add_script_tag(content=axe)
        first = page.evaluate(AXE_SERIOUS)
        page.click("#examples button >> nth=0")  # an example is drawn at once
        page.wait_for_function(ALL_FACES_DRAWN, timeout=60000)
        page.wait_for_function(PICTURES_NAMED, timeout=10000)  # the charts and strip come with the last face
        drawn = page.evaluate(AXE_SERIOUS)
        page.click("button[role='tab']:has-text('Live')")
        page.wait_for_selector("#live-voice button.record-button")
        live = page.evaluate(AXE_SERIOUS)
        b.close()
    assert (first, drawn, live) == ([], [], [])


# --------------------------------------------------------------------------- the page as a visitor finds it


#: Marks what the faces pane shows now, so that `NEW_ANSWER` waits for the next answer: comparing the pane's HTML
#: with what it was passed as soon as Gradio's timer or a "Reading the clip" message appeared over the old faces.
MARK_SEEN = "document.querySelectorAll('#faces .v2f-faces, #faces .v2f-error').forEach((e) => { e.dataset.seen = '1'; })"
NEW_ANSWER = """(() => {
  const answer = document.querySelector('#faces .v2f-faces:not(.v2f-example):not([data-seen]), #faces .v2f-error:not([data-seen])');
  return !!answer && !answer.querySelector('.v2f-pending');
})()"""


@pytest.mark.slow
@NEEDS_CHROMIUM
def test_browser_examples_still_draw_after_the_cache_sweep_has_run(model, random_checkpoint):
    """Gradio copies the examples into its cache at start-up with their files' own old times, and the sweep took
    them within minutes: every later click said "No audio file named 'female_voice_en_f4.flac' was found"."""
    from playwright.sync_api import sync_playwright

    demo = layout.build_demo(model, random_checkpoint)
    port = free_port()
    sweeper = web_server.launch(demo, "127.0.0.1", port, share=False, block=False, cache_sweep=(0.25, 1))
    try:
        with sync_playwright() as p:
            b, page = open_page(p, f"http://127.0.0.1:{port}/", VIEWPORTS["desktop"])
            page.wait_for_selector("#examples button")
            page.wait_for_timeout(2000)  # several sweeps of everything older than 1 s
            answers = []
            for example in range(len(example_clips())):
                page.evaluate(MARK_SEEN)  # the answer on the page now is not this click's
                page.click(f"#examples button >> nth={example}")
                page.wait_for_function(NEW_ANSWER, timeout=60000)
                answers.append(page.inner_text("#faces"))
                page.wait_for_timeout(1500)  # the answer's own files older than the sweep's age before the next click
            b.close()
    finally:
        sweeper.clear()
        demo.close()
    assert all("whole clip" in answer and "Could not draw" not in answer for answer in answers), answers


#: The text CSS puts before an element (how the page says a pane is the previous clip's).
BEFORE_TEXT = "s => getComputedStyle(document.querySelector(s), '::before').content"


@pytest.mark.slow
@NEEDS_CHROMIUM
def test_browser_live_recording_on_a_phone_is_in_view_named_and_keeps_earlier_faces_apart(server, speech_wav):
    """On a phone the Record button sat below the screen under an empty picture box; while recording, axe found an
    unnamed button around the face so far (critical), and the other tab's faces stood beside it as if they were
    the recording's."""
    from playwright.sync_api import sync_playwright

    axe = axe_source()
    with sync_playwright() as p:
        b, page = open_page(p, server, VIEWPORTS["phone"], fake_microphone(speech_wav))
        page.click("button[role='tab']:has-text('Live')")
        wait_for_live_recorder(page)
        record_in_view = page.evaluate(IN_VIEW, "#live-voice button.record-button")
        page.add_script_tag(content=axe)
        page.click("#live-voice button.record-button")
        page.wait_for_selector("#live-face img", timeout=30000)
        recording = page.evaluate(AXE_SERIOUS)
        earlier = (page.evaluate("document.querySelector('#results').classList.contains('v2f-previous')"), page.evaluate(BEFORE_TEXT, "#results"))
        page.click("#live-voice button.stop-button")
        page.wait_for_function(ALL_FACES_DRAWN, timeout=60000)
        page.wait_for_function("!document.querySelector('.v2f-previous')", timeout=30000)
        page.wait_for_function(PICTURES_NAMED, timeout=10000)
        stopped = page.evaluate(AXE_SERIOUS)
        b.close()
    assert record_in_view
    assert recording == [] and stopped == []
    assert earlier[0] and "Earlier faces" in earlier[1]


#: The focus ring of the element that has the focus: its outline, or a box shadow that stands for one.
FOCUS_RING = """() => { const e = document.activeElement, s = getComputedStyle(e);
  return {name: e.getAttribute('aria-label') || e.id || e.tagName, type: e.type || '', outline: s.outlineStyle === 'none' ? 0 : parseFloat(s.outlineWidth),
          shadow: s.boxShadow}; }"""


@pytest.mark.slow
@NEEDS_CHROMIUM
def test_browser_every_control_shows_where_the_keyboard_is_and_upload_leads_to_the_drop_zone(default_server):
    """The sliders' focus was a 1x3-pixel change and the number boxes' a 1-px line; after choosing "Upload file"
    with the keyboard, the drop zone it opens came before it, so the next Tab went away from it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b, page = open_page(p, default_server, VIEWPORTS["desktop"])
        page.wait_for_selector("#tune input[type=range]")
        page.focus('#voice button[aria-label="Upload file"]')
        page.keyboard.press("Enter")
        page.wait_for_timeout(300)
        after_upload = page.evaluate("document.activeElement.getAttribute('aria-label')")
        page.click("#lengths-accordion .label-wrap")
        rings, seen = [], set()
        page.focus("#draw")
        for _ in range(60):
            page.keyboard.press("Tab")
            ring = page.evaluate(FOCUS_RING)
            key = page.evaluate("(() => { const e = document.activeElement; const r = e.getBoundingClientRect(); return `${e.tagName}${r.x},${r.y}`; })()")
            if key in seen or ring["name"] == "BODY":
                break
            seen.add(key)
            rings.append(ring)
        b.close()
    assert after_upload == "Drop an audio file here to upload"
    kinds = {r["type"] for r in rings}
    assert {"range", "number"} <= kinds, kinds  # the sliders and their number boxes were among the stops
    faint = [r for r in rings if r["outline"] < 2 and r["shadow"] == "none"]
    assert faint == [], faint


@pytest.mark.slow
@NEEDS_CHROMIUM
def test_browser_the_real_voice_among_the_examples_is_read_as_what_it_is(default_server):
    """The examples were synthetic voices only; one is a real man's, recorded outdoors in 1961, and the default model
    reads it as a man of about his age (Kennedy was 43) and draws every length from it."""
    from playwright.sync_api import sync_playwright

    real = next(i for i, label in enumerate(example_labels()) if "real voice" in label)
    with sync_playwright() as p:
        b, page = open_page(p, default_server, VIEWPORTS["phone"])
        page.click(f"#examples button >> nth={real}")
        page.wait_for_function(f"({ALL_FACES_DRAWN}) && !document.querySelector('#reading.v2f-previous')", timeout=60000)
        reading, faces = page.inner_text("#reading"), len(page.query_selector_all("#faces .v2f-faces:not(.v2f-example) .v2f-face img"))
        b.close()
    low, high = (int(x) for x in re.search(r"about (\d+) to (\d+) years old", reading).groups())
    assert "sounds like a man's" in reading and low <= 43 + 10 and high >= 43 - 10, reading
    assert faces == 5  # 1, 2, 4 and 8 s and the whole clip (9.7 s of speech)


@pytest.mark.slow
@NEEDS_CHROMIUM
def test_browser_while_a_new_clip_is_drawn_the_reading_is_marked_as_the_previous_clips(default_server):
    """The reading and sliders vanished during each draw and came back after the last face; now they stay, marked
    as the previous clip's, and the new reading comes with the last face."""
    from playwright.sync_api import sync_playwright

    male = next(clip for clip in example_clips() if "male_voice_en-us" in clip)  # the page opens with the woman's example
    with sync_playwright() as p:
        b, page = open_page(p, default_server, VIEWPORTS["desktop"])
        page.wait_for_selector("#tune #tuned-face img")
        before = page.inner_text("#reading")
        upload(page, male)
        page.click("#draw")
        during = (page.evaluate("document.querySelector('#reading').classList.contains('v2f-previous')"),
                  page.evaluate(BEFORE_TEXT, "#reading"), page.is_visible("#tune"), page.inner_text("#reading"))  # fmt: skip
        page.wait_for_function(ALL_FACES_DRAWN, timeout=60000)
        page.wait_for_function("!document.querySelector('.v2f-previous')", timeout=30000)
        after = page.inner_text("#reading")
        b.close()
    assert during[0] and "previous clip" in during[1] and during[2] and during[3].endswith(before)  # after Gradio's timer, if shown
    assert "a man's" in after and "woman's" in before


# --------------------------------------------------------------------------- a public link's routes


#: Calls a hostile client can make to any route, malformed: each must get a 4xx in words and no traceback.
MALFORMED = [
    ("POST", "gradio_api/run/nosuch", {"json": {"data": []}}),
    ("POST", "gradio_api/run/predict", {"json": {"data": [], "fn_index": 999, "session_hash": "x"}}),
    ("POST", "gradio_api/api/faces", {"json": {"data": []}}),
    ("POST", "gradio_api/call/live_finish", {"json": {"data": [1, 2, 3]}}),
    ("POST", "gradio_api/queue/join", {"json": {"data": [], "fn_index": 999, "session_hash": "abc"}}),
    ("POST", "gradio_api/queue/join", {"json": {"data": [], "fn_index": -1, "session_hash": "abc"}}),
    ("POST", "gradio_api/queue/join", {"json": {"data": [], "fn_index": 1e6, "session_hash": "abc"}}),
    ("POST", "gradio_api/queue/join", {"json": {"data": [], "fn_index": 0, "session_hash": "x" * 1000}}),
    ("POST", "gradio_api/queue/join", {"content": b"not json"}),
    ("POST", "gradio_api/queue/join", {"json": [1, 2]}),
    ("GET", "gradio_api/queue/data?session_hash=nosuch", {}),
    ("GET", "gradio_api/dev/reload", {}),
    ("GET", "monitoring/summary", {}),
    ("GET", "gradio_api/monitoring/summary", {}),
]


def test_malformed_calls_to_any_route_get_a_4xx_in_words_and_leave_no_traceback(server, capfd):
    """A probe left 67 tracebacks of 5 KB in the log (500s from /run/nosuch, queue/join with fn_index 999, -1
    or 1e6, queue/data for a made-up session, private events through /call/), and the dev reload stream and
    the monitoring page answered anyone."""
    import httpx

    capfd.readouterr()
    with httpx.Client(timeout=30) as client:
        answers = [(path, client.request(method, server + path, **kwargs)) for method, path, kwargs in MALFORMED]
        # the faces API given a plain string where the audio file goes: our words, not pydantic's
        names = [d.get("api_name") for d in client.get(server + "config").json()["dependencies"]]
        words = page_event(client, server, "faces", ["just a string", ["1 s"], ""], "plainstring", to_the_end=True)
    log = capfd.readouterr().err
    assert [(path, a.status_code) for path, a in answers if not 400 <= a.status_code < 500] == []
    assert all(a.json()["detail"] for _, a in answers)
    assert "faces" in names and "send the audio as an uploaded file" in str(words[-1]["output"])
    assert "Traceback" not in log


def test_a_live_recording_belongs_to_the_page_that_holds_its_token(server, speech_wav, tmp_path):
    """A second client sending chunks under a visitor's session id added 5 s to their recording; a third that
    stopped it got their faces, and their own Stop then got nothing."""
    import httpx

    clip = tmp_path / "one-second.wav"
    data, rate = soundfile.read(speech_wav, dtype="float32")
    soundfile.write(clip, data[:rate], rate)
    with httpx.Client(timeout=30) as client:
        live_chunk(client, server, clip, "owner")  # begins the recording; the answer hands the page its token
        assert TOKENS.get("owner")
        live_chunk(client, server, clip, "owner")  # the page's next chunk carries it
        _, forged = live_chunk(client, server, clip, "owner", token="made-up")
        _, tokenless = live_chunk(client, server, clip, "owner", token="")
        stranger = live_stop(client, server, "owner", token="")
        own = live_stop(client, server, "owner")
    assert "belongs to another page" in forged and "belongs to another page" in tokenless
    assert "No recording reached the server" in str(stranger[0])
    assert "v2f-faces" in str(own[0]) and "Heard 2.0 s of speech in 2.0 s of audio" in str(own)  # the owner's two seconds, no more


def test_one_page_or_address_cannot_take_every_place(model, random_checkpoint, speech_wav, tmp_path):
    """One client sending 40 requests at once took 34 places in the queue, and eight sessions trickling audio
    held every live place; now a page may have 4 requests waiting, and an address 2 recordings (behind a proxy,
    the address it forwards for)."""
    import httpx

    from voice2face.web.limits import MAX_LIVE_PER_CLIENT, MAX_QUEUED_PER_SESSION

    demo = layout.build_demo(model, random_checkpoint, behind_proxy=True)
    port = free_port()
    web_server.launch(demo, "127.0.0.1", port, share=False, block=False, behind_proxy=True)
    url = f"http://127.0.0.1:{port}/"
    clip = tmp_path / "one-second.wav"
    data, rate = soundfile.read(speech_wav, dtype="float32")
    soundfile.write(clip, data[:rate], rate)
    try:
        with httpx.Client(timeout=30) as client:
            names = [d.get("api_name") for d in client.get(url + "config").json()["dependencies"]]
            uploaded = client.post(url + "gradio_api/upload", files={"files": speech_wav.open("rb")}).json()[0]
            audio = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
            joins = [client.post(url + "gradio_api/queue/join", json={"data": [audio, DEFAULT_CHOICES, ""], "fn_index": names.index("faces"),
                                                                       "session_hash": "greedy"}) for _ in range(12)]  # fmt: skip
            other = client.post(url + "gradio_api/queue/join", json={"data": [audio, ["1 s"], ""], "fn_index": names.index("faces"),
                                                                      "session_hash": "someone-else"})  # fmt: skip
            client.headers["X-Forwarded-For"] = "203.0.113.7"
            captions = [live_chunk(client, url, clip, f"trickler{k}")[1] for k in range(MAX_LIVE_PER_CLIENT + 1)]
            client.headers["X-Forwarded-For"] = "198.51.100.9"
            visitor = live_chunk(client, url, clip, "visitor")[1]
    finally:
        demo.close()
    refused = [j for j in joins if j.status_code == 429]
    assert len(joins) - len(refused) <= MAX_QUEUED_PER_SESSION + 2 and refused  # a few may have finished meanwhile
    assert "This page has" in refused[0].json()["detail"] and other.status_code == 200
    assert all("recording" not in c.split(".")[0] or "Listening" in c for c in captions[:-1])
    assert f"Your address is recording {MAX_LIVE_PER_CLIENT} times already" in captions[-1]
    assert "Your address" not in visitor and "full" not in visitor


def test_full_size_downloads_are_drawn_one_at_a_time(server, monkeypatch):
    """Four full-size downloads at once peaked at 2,062 MiB: they share one renderer now, the others waiting."""
    import threading

    import httpx

    from voice2face.web import events

    drawing, most = [0], [0]
    lock, draw = threading.Lock(), events.full_size_strip

    def counted(*args, **kwargs):
        with lock:
            drawing[0] += 1
            most[0] = max(most[0], drawing[0])
        time.sleep(0.3)
        try:
            return draw(*args, **kwargs)
        finally:
            with lock:
                drawing[0] -= 1

    monkeypatch.setattr(events, "full_size_strip", counted)
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda k: page_event(client, server, "download_full_size", [None, "example"], f"download{k}",
                                                     to_the_end=True), range(4)))  # fmt: skip
    assert most[0] == 1
    assert all(a[-1]["msg"] == "process_completed" and a[-1]["success"] for a in answers), answers


def test_a_page_whose_faces_the_server_no_longer_holds_is_told_so(server):
    """The server keeps the state of its most recent visitors only (Gradio kept any session id a script made up,
    about 100 KB each); a page whose faces it no longer holds is told so, not given the example's person."""
    import httpx

    with httpx.Client(timeout=30) as client:
        moved = page_event(client, server, "retune", [None, "a-drawing-of-another-time", 50, 0, 0], "evicted")
    assert "no longer holds the faces on this page" in str(moved)


@pytest.mark.slow
def test_made_up_sessions_are_bounded_in_count(model, random_checkpoint, monkeypatch):
    """3,600 made-up session ids added 345 MiB that never came back; the server now holds at most MAX_SESSIONS (300;
    here 60, so that the test sends 110 ids, not 350)."""
    import httpx

    from voice2face.web.limits import MAX_SESSIONS

    assert MAX_SESSIONS == 300
    monkeypatch.setattr(web_server, "MAX_SESSIONS", 60)
    demo = layout.build_demo(model, random_checkpoint)
    port = free_port()
    web_server.launch(demo, "127.0.0.1", port, share=False, block=False)
    try:
        with httpx.Client(timeout=30) as client:
            for k in range(60 + 50):
                page_event(client, f"http://127.0.0.1:{port}/", "retune", [None, "x", 50, 0, 0], f"madeup{k}")
        held = len(demo.state_holder.session_data)
    finally:
        demo.close()
    assert 60 - 10 <= held <= 60


def test_uploads_are_let_in_only_while_the_cache_has_room_one_file_at_a_time(model, random_checkpoint, speech_wav, tmp_path, monkeypatch):
    """Four threads uploading 49.9 MB files put 8 GiB into a cache meant for 2 GB, and the size sweep then deleted
    a visitor's upload from 40 s before; one request could carry 1,000 files."""
    import httpx

    from voice2face.web.limits import MAX_FILES_PER_UPLOAD

    bound, piece = 3 * 2**20, tmp_path / "piece.wav"
    soundfile.write(piece, np.zeros(2**19, np.int16), 16000)  # 1 MB
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))  # a cache of its own: the other tests' servers share one
    demo = layout.build_demo(model, random_checkpoint)
    port = free_port()
    sweeper = web_server.launch(demo, "127.0.0.1", port, share=False, block=False, cache_max_bytes=bound)
    url = f"http://127.0.0.1:{port}/gradio_api/upload"
    try:
        with httpx.Client(timeout=30) as client, ThreadPoolExecutor(4) as pool:
            first = client.post(url, files={"files": speech_wav.open("rb")}).json()[0]  # a visitor's upload
            answers = list(pool.map(lambda k: client.post(url, files={"files": (f"p{k}.wav", piece.read_bytes())}), range(8)))
            size = sum(p.stat().st_size for p in Path(demo.GRADIO_CACHE).rglob("*") if p.is_file())
            many = client.post(url, files=[("files", (f"f{k}.wav", b"RIFF")) for k in range(MAX_FILES_PER_UPLOAD + 3)])
            visitor_file_kept = Path(first).is_file()
            Path(first).unlink()  # as the sweep does when it is old
            expired = page_event(client, f"http://127.0.0.1:{port}/", "faces", [{"path": first, "meta": {"_type": "gradio.FileData"}},
                                                                                ["1 s"], ""], "late", to_the_end=True)  # fmt: skip
    finally:
        sweeper.clear()
        demo.close()
    full = [a for a in answers if a.status_code == 503]
    assert full and "room for uploads is full" in full[0].json()["detail"]
    assert size <= bound + 2**20 and visitor_file_kept  # never more than one upload past its bound; no one's file taken
    assert many.status_code == 413 and "one recording at a time" in many.json()["detail"]
    assert "is no longer on this server" in str(expired[-1]["output"]) and "Upload or record it again" in str(expired[-1]["output"])


@pytest.mark.slow
@NEEDS_CHROMIUM
def test_browser_a_waiting_visitor_is_told_why_in_words(server, speech_wav, monkeypatch):
    """While queued the page showed Gradio's "queue: 3/5"; the full-size download took seconds with no sign
    that anything was happening."""
    import threading

    from playwright.sync_api import sync_playwright

    from voice2face.web import page as page_module

    steps = page_module.demo_steps

    def slow_steps(*args, **kwargs):
        time.sleep(2.0)  # a busy server: each API request holds its place for a while
        yield from steps(*args, **kwargs)

    with sync_playwright() as p:
        b, page = open_page(p, server, VIEWPORTS["desktop"])
        page.wait_for_selector("#strip-download")
        page.click("#strip-download")
        drawing = page.inner_text("#strip-download")
        page.wait_for_function("!document.querySelector('#strip-download').innerText.startsWith('Drawing')", timeout=60000)
        after = page.inner_text("#strip-download")
        monkeypatch.setattr(page_module, "demo_steps", slow_steps)  # what the API draws with
        busy = [threading.Thread(target=lambda: Client(server, verbose=False).predict(handle_file(str(speech_wav)), ["1 s"], "",
                                                                                       api_name="/faces")) for _ in range(3)]  # fmt: skip
        for thread in busy:
            thread.start()
        time.sleep(1.0)
        upload(page, speech_wav)
        page.click("#draw")
        page.wait_for_selector("#v2f-queue", timeout=20000)
        waiting = page.inner_text("#v2f-queue")
        page.wait_for_function(ALL_FACES_DRAWN, timeout=60000)
        page.wait_for_function("!document.querySelector('#v2f-queue')", timeout=10000)
        for thread in busy:
            thread.join()
        b.close()
    assert drawing.startswith("Drawing the faces at full size") and after == "Download all faces at full size (PNG)"
    assert re.fullmatch(r"The server is busy: (\d+ visitors? ahead of you|your request is next)\.", waiting), waiting
