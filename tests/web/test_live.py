"""The live view: a face from the speech so far, at a constant cost per microphone chunk."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from voice2face.errors import AudioError
from voice2face.images import DISPLAY_SIZE
from voice2face.live import LiveFaces
from voice2face.pipeline import Voice2Face
from voice2face.web.live import LiveRecordings, LiveSession


@pytest.fixture(scope="module")
def model(random_checkpoint) -> Voice2Face:
    return Voice2Face.from_pretrained(random_checkpoint)


def chunks(samples: np.ndarray, size: int):
    for start in range(0, len(samples), size):
        yield (samples[start : start + size] * 32767).astype(np.int16)


class ChunkClock:
    """Time as the microphone keeps it: `tick` per chunk, none while a face is drawn, so how often the view
    redraws does not depend on how busy the machine running the test is."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def test_faces_form_as_speech_arrives_with_bounded_state(model, speech):
    data, rate = speech
    clock = ChunkClock()
    live = LiveFaces(model, clock=clock)
    updates = []
    for chunk in chunks(data, rate // 2):
        clock.tick(0.5)
        updates.append(live.add(rate, chunk))
    drawn = [u for u in updates if u.new_face]
    assert len(drawn) >= 5 and all(u.face.size == (DISPLAY_SIZE, DISPLAY_SIZE) for u in drawn)  # the page's size
    seconds = [u.speech_seconds for u in updates]
    assert seconds == sorted(seconds) and seconds[-1] > 0.6 * len(data) / rate
    assert updates[-1].recorded_seconds == pytest.approx(len(data) / rate, abs=0.05)
    assert "s of speech" in updates[-1].caption
    # what is kept between chunks stays under one window plus one chunk, however long the recording
    assert len(live.speech) < live.window + live.rate and len(live.unvoiced) < live.vad_frame
    rate_out, recording = live.recording()
    assert rate_out == 16000 and abs(len(recording) - len(data) * 16000 / rate) < 1000  # the resampler holds back ~35 ms


def test_no_face_before_a_second_of_speech(model, speech):
    data, rate = speech
    live = LiveFaces(model)
    start = int(np.flatnonzero(np.abs(data) > 0.05)[0])  # where the voice begins
    updates = [live.add(rate, chunk) for chunk in chunks(data[: start + int(0.8 * rate)], rate // 10)]
    assert all(u.face is None for u in updates)
    heard = updates[-1]
    assert 0 < heard.speech_seconds < 1.0
    assert "of speech so far; a face needs 1 s" in heard.caption
    later = [live.add(rate, chunk) for chunk in chunks(data[start + int(0.8 * rate) : start + 3 * rate], rate // 10)]
    first = next(u for u in later if u.face is not None)
    assert first.new_face and first.speech_seconds >= 1.0


def test_unchanged_speech_redraws_nothing(model, speech):
    data, rate = speech
    live = LiveFaces(model)
    for chunk in chunks(data[: 3 * rate], rate):
        live.add(rate, chunk)
    silence = live.add(rate, np.zeros(rate, np.int16))
    assert not silence.new_face and silence.face is live.face


def test_silence_only_is_listening_and_odd_input_is_an_error(model):
    live = LiveFaces(model)
    update = live.add(16000, np.zeros(16000, np.int16))
    assert update.face is None and update.caption.startswith("Listening")
    with pytest.raises(AudioError, match="changed its sample rate"):
        live.add(48000, np.zeros(48000, np.int16))
    with pytest.raises(AudioError, match="whole number of Hz"):
        LiveFaces(model).add("fast", np.zeros(10, np.int16))
    with pytest.raises(AudioError, match="Nothing was recorded"):
        LiveFaces(model).recording()


def test_chunks_sent_as_files_are_decoded_bounded_and_tones_draw_no_face(model, speech, tmp_path):
    import soundfile

    data, rate = speech
    live = LiveSession(model)
    for k, start in enumerate(range(0, 4 * rate, rate)):
        chunk = tmp_path / f"chunk{k}.wav"
        soundfile.write(chunk, data[start : start + rate], rate)
        live.add_file(chunk)
    update = live.catch_up(wait=True)  # chunks are heard by the recording's own thread: wait for it here
    assert update.face is not None and update.recorded_seconds == pytest.approx(4.0, abs=0.05)
    # a 30-minute "chunk" (as a hostile client might stream) is read for MAX_CHUNK_SECONDS only
    from voice2face.web.live import MAX_CHUNK_SECONDS

    long = tmp_path / "long.flac"
    soundfile.write(long, np.zeros(16000 * 1800, np.int16), 16000)
    before = live.faces.recorded_samples
    live.add_file(long)
    live.catch_up(wait=True)
    assert live.faces.recorded_samples - before <= MAX_CHUNK_SECONDS * 16000
    # a tone, however long it plays, never becomes a face
    tone = LiveFaces(model)
    t = np.arange(16000) / 16000
    for _ in range(5):
        update = tone.add(16000, (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16))
    assert update.face is None and tone.total is None and "No voice heard" in update.caption


def test_live_recordings_are_capped_and_dropped_when_idle(model, speech, tmp_path):
    """A shared page holds at most `limit` recordings; the next visitor is told the live view is full
    (not kept waiting), a recording whose chunks stop is dropped, and stopping hands it over once."""
    data, rate = speech
    chunk = tmp_path / "chunk.wav"
    soundfile.write(chunk, data[:rate], rate)
    now = [0.0]
    recordings = LiveRecordings(model, limit=2, idle_s=20, clock=lambda: now[0])
    recordings.add_file("a", chunk)
    recordings.add_file("b", chunk)
    with pytest.raises(AudioError, match="live view is full: 2 visitors"):
        recordings.add_file("c", chunk)
    assert len(recordings) == 2
    now[0] = 15.0
    recordings.add_file("a", chunk)  # a's chunks keep coming; b's stopped at 0 s
    assert recordings.open("a").catch_up(wait=True).recorded_seconds == pytest.approx(2.0, abs=0.05)
    now[0] = 25.0
    recordings.add_file("c", chunk)  # b was idle for 25 s: dropped, so c gets its place
    assert recordings.close("b") is None and len(recordings) == 2
    finished = recordings.close("a")
    assert finished is not None and finished.recording()[1].size > 1.9 * 16000
    assert recordings.close("a") is None  # handed over once


def test_a_busy_server_answers_the_stream_at_once_and_keeps_every_chunk(model, speech, tmp_path, monkeypatch):
    """Each face takes 0.4 s to draw here (a busy server) while chunks come every call: the stream is answered
    without waiting for the drawing, says it is behind, and the recording keeps all the audio, in order."""
    import time

    data, rate = speech
    draw = model.render

    def slow_render(*args, **kwargs):
        time.sleep(0.4)
        return draw(*args, **kwargs)

    monkeypatch.setattr(model, "render", slow_render)
    live = LiveSession(model)
    answers, waits = [], []
    for k, start in enumerate(range(0, len(data), rate // 2)):
        chunk = tmp_path / f"busy{k}.wav"
        soundfile.write(chunk, data[start : start + rate // 2], rate)
        began = time.monotonic()
        answers.append(live.add_file(chunk))
        waits.append(time.monotonic() - began)
    assert max(waits) < 0.3  # never kept waiting for a face
    assert any(a.waiting for a in answers) and "none is lost" in next(a.caption for a in answers if a.waiting)
    _, recording = live.recording()  # hears whatever is still kept first
    assert len(recording) / 16000 == pytest.approx(len(data) / rate, abs=0.2)
    import librosa

    expected = librosa.resample(data, orig_sr=rate, target_sr=16000)
    n = min(len(expected), len(recording))
    assert np.corrcoef(recording[:n].astype(float), expected[:n])[0, 1] > 0.9  # every chunk in its place


def test_a_chunk_that_cannot_be_read_is_said_and_the_recording_goes_on(model, speech, tmp_path):
    data, rate = speech
    live = LiveSession(model)
    broken = tmp_path / "broken.webm"
    broken.write_bytes(b"not audio at all" * 100)
    good = tmp_path / "good.wav"
    soundfile.write(good, data[: 2 * rate], rate)
    live.add_file(broken)
    live.add_file(good)
    update = live.catch_up(wait=True)
    answer = live.answer_as_is()
    assert "A piece of the recording could not be read" in answer.caption and answer.problem
    assert update.recorded_seconds == pytest.approx(2.0, abs=0.05)  # the good chunk after it was kept and heard


def test_a_recording_that_trickles_audio_loses_its_place(model, speech, tmp_path):
    """Eight sessions sending 32 KB every 10 s held every live place; a recording older than TRICKLE_AFTER_S must
    have received half its age in audio."""
    from voice2face.web.live import TRICKLE_AFTER_S

    data, rate = speech
    chunk = tmp_path / "chunk.wav"
    soundfile.write(chunk, data[:rate], rate)
    now = [0.0]
    recordings = LiveRecordings(model, limit=2, idle_s=20, clock=lambda: now[0])
    trickler, kept = recordings.open("trickler"), []
    for second in range(int(TRICKLE_AFTER_S) + 2):  # a real recording: a second of audio every second
        now[0] = float(second)
        recordings.add_file("speaker", chunk)
        recordings.open("speaker").catch_up(wait=True)
        if second % 10 == 0:
            recordings.add_file("trickler", chunk)
            trickler.catch_up(wait=True)
        kept.append("trickler" in recordings)
    assert kept[int(TRICKLE_AFTER_S)] and not kept[-1] and "speaker" in recordings  # dropped once past TRICKLE_AFTER_S, not before


def test_every_chunk_that_arrives_is_noted_in_order_and_late_ones_are_not_the_next_recordings(tmp_path):
    """Gradio keeps only a stream's newest chunk: the tap notes each as it arrives, for the Live handler to take."""
    from voice2face.web.live_chunks import BEHIND, ChunkArrivals

    uploads = tmp_path / "cache"
    uploads.mkdir()
    files = [uploads / f"chunk{k}.wav" for k in range(5)]
    for f in files:
        f.write_bytes(b"RIFF")
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"RIFF")
    arrivals = ChunkArrivals(uploads, per_session=3)
    arrivals.arrive("a", None, [{"path": str(files[0])}, ""])  # the first comes with the join
    arrivals.arrive("a", "s1", [{"path": str(files[1])}, "token"])
    arrivals.arrive("a", "s1", [{"path": str(outside)}, "token"])  # not uploaded here: left to Gradio, which refuses it
    arrivals.arrive("a", "s1", [{"path": str(uploads / ".." / "secret.wav")}, "token"])
    arrivals.arrive("a", "s1", "not a chunk")
    arrivals.arrive("b", "s2", [{"path": str(files[2])}, "theirs"])
    assert arrivals.take("a") == [(str(files[0]), ""), (str(files[1]), "token")]
    assert arrivals.take("a") == []
    arrivals.arrive("a", "s1", [{"path": str(files[3])}, "token"])
    assert arrivals.finish("a", ["s1"]) == [(str(files[3]), "token")]
    arrivals.arrive("a", "s1", [{"path": str(files[4])}, "token"])  # after Stop: not the next recording's
    arrivals.arrive("a", None, [{"path": str(files[0])}, ""])  # the next recording's first
    assert arrivals.take("a") == [(str(files[0]), "")]
    assert arrivals.take("b") == [(str(files[2]), "theirs")]
    for f in files[:4]:  # more than a recording may have waiting: its handler says so rather than leave a gap
        arrivals.arrive("c", "s3", [{"path": str(f)}, ""])
    with pytest.raises(AudioError, match=BEHIND):
        arrivals.take("c")
