"""The Live tab's recordings on a shared server: every chunk kept, heard in order, and bounded.

The page's stream sends a short audio file about every 0.1 s (Gradio's recorder, whatever the event's
`stream_every`), each noted as it arrives (`live_chunks`). A chunk's bytes are kept at once, in order,
and heard by the recording's own thread (decoded by the same bounded decoder, in a worker, as uploads,
at most MAX_CHUNK_SECONDS of each) into a `voice2face.live.LiveFaces`, which draws the face so far; the
stream is answered at once with the newest face, however busy the server is.

`LiveRecordings` holds the recordings of a shared page: one a visitor session, at most
MAX_LIVE_RECORDINGS at once, each dropped LIVE_IDLE_S after its last chunk, so what strangers can
make the server hold is bounded.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..audio.load import load_audio
from ..errors import AudioError
from ..live import LiveFaces, LiveUpdate
from ..pipeline import Voice2Face
from .limits import LIVE_IDLE_S, MAX_LIVE_PER_CLIENT, MAX_LIVE_RECORDINGS

#: Chunk bytes a recording may have waiting to be heard (a second of browser audio is 2-40 KB).
MAX_WAITING_BYTES = 16 * 1024 * 1024
#: The page sends a chunk about every 0.1 s; a "chunk" longer than this is cut to it.
MAX_CHUNK_SECONDS = 5.0
#: A recording's first chunks may come without its token for this long (the page gets it with the first answer).
TOKENLESS_S = 3.0
#: A recording older than this keeps its place only while it has received at least half its age in audio:
#: eight sessions sending 32 KB every 10 s held every place and turned away seven real visitors in 70 s.
TRICKLE_AFTER_S, MIN_AUDIO_PACE = 30.0, 0.5
#: The caption says the server is behind only when this many chunks wait besides the one just kept: one
#: chunk still being heard as the next arrives is the ordinary pace (the note flickered in once a second).
BEHIND_CHUNKS = 2


@dataclass
class LiveAnswer(LiveUpdate):
    """What the page's stream is answered with: the face so far, and whether the server keeps up."""

    waiting: int = 0  # chunks kept and not yet heard, when the server is behind (BEHIND_CHUNKS or more); else 0
    problem: str = ""  # why a kept chunk could not be heard (the rest of the recording goes on)
    token: str | None = None  # the recording's token, in the answer to the chunk that began it (`LiveSession.hand_token`)

    @classmethod
    def of(cls, update: LiveUpdate, waiting: int = 0, problem: str = "") -> "LiveAnswer":
        return cls(**vars(update), waiting=waiting, problem=problem)

    @property
    def caption(self) -> str:
        """The live view's line: what the face is drawn from, and, when the server is behind, how much is still
        to be heard (every chunk is kept; only redraws are skipped)."""
        line = super().caption
        if self.waiting:
            line += f" (the server is busy: {self.waiting} chunks of audio kept, still to be heard; none is lost)"
        if self.problem:
            line += f" A piece of the recording could not be read: {self.problem}"
        return line


class LiveSession:
    """One visitor's recording: chunks kept in order as they come and heard by a thread of its own."""

    def __init__(self, model: Voice2Face, address: str | None = None, clock: Callable[[], float] = time.monotonic):
        self.faces = LiveFaces(model)
        self.token = secrets.token_urlsafe(16)  # the page that holds it may add to this recording and stop it
        self.address, self.clock, self.started = address, clock, clock()
        self.bound = False  # a chunk has come with the token: chunks without it are someone else's
        self.handed = False  # the token has gone to the page that began the recording (to no one else)
        self.inbox: deque[bytes] = deque()  # chunks kept, not yet heard
        self.inbox_lock, self.hearing = threading.Lock(), threading.Lock()
        self.listener: threading.Thread | None = None  # hears the kept chunks, one at a time, in order
        self.problem = ""  # why the last chunk that could not be heard was not
        self.answered_face: Image.Image | None = None  # the face the page was last sent
        self.chunks_heard = 0

    def hand_token(self) -> str | None:
        """The token, to the first call that asks (the page that began the recording: its Record, or its first
        chunk); None to any later one."""
        if self.handed:
            return None
        self.handed = True
        return self.token

    def admit(self, token: str) -> None:
        """Refuse a chunk that does not carry this recording's token. Until the page has the token (it comes
        with the answer to its Record or its first chunk), its first chunks come without it (or with the
        last recording's): they are taken for TOKENLESS_S, and never once a chunk with the token has come."""
        if token == self.token:
            self.bound = True
        elif self.bound or self.clock() - self.started > TOKENLESS_S:
            raise AudioError("This recording belongs to another page; record on your own page.")

    def received_seconds(self) -> float:
        """Audio this recording has received: what was heard, and the kept chunks at the pace of those heard."""
        faces = self.faces
        heard = faces.recorded_samples / faces.rate
        with self.inbox_lock:
            waiting = len(self.inbox)
        return heard + waiting * max(heard / max(self.chunks_heard, 1), 0.1)

    def add_file(self, path: str | Path) -> LiveAnswer:
        """Take the next chunk as the page streams it, a short audio file: kept at once, in order, and heard
        by this recording's own thread, so the page's stream is answered at once however busy the server
        is (a stream left waiting lost audio: 4.8 s of 10 s reached the server). Every chunk is kept; only
        redraws are skipped. The answer carries the newest face drawn, and how much is still to be heard."""
        self.keep(Path(path).read_bytes())
        with self.inbox_lock:
            if self.listener is None or not self.listener.is_alive():
                self.listener = threading.Thread(target=self.catch_up, kwargs={"wait": True}, daemon=True)
                self.listener.start()
        return self.answer_as_is()

    def keep(self, chunk: bytes) -> None:
        """Queue a chunk's file bytes, in the order they came (at most MAX_WAITING_BYTES waiting)."""
        if len(chunk) > MAX_WAITING_BYTES:
            raise AudioError(f"A live chunk of {len(chunk) / 2**20:.0f} MB is far more than a second of audio; record again.")
        with self.inbox_lock:
            if sum(map(len, self.inbox)) + len(chunk) > MAX_WAITING_BYTES:
                raise AudioError("The server has fallen too far behind your microphone; stop and record again in a minute.")
            self.inbox.append(chunk)

    def catch_up(self, wait: bool = False) -> LiveAnswer:
        """Hear every kept chunk in order, then draw if there is new speech. One thread hears a recording at
        a time; another that arrives meanwhile leaves its chunk kept and returns the face as it is (with
        `wait`, it waits its turn: the end of a recording must hear everything)."""
        if not self.hearing.acquire(blocking=wait):
            return self.answer_as_is()
        try:
            while True:
                with self.inbox_lock:
                    if not self.inbox:
                        break
                    chunk = self.inbox.popleft()
                try:
                    self.chunks_heard += 1
                    self.hear_file(chunk)
                except AudioError as err:  # heard in this recording's own thread: say it with the next answer
                    self.problem = str(err)
            return LiveAnswer.of(self.faces.current(), problem=self.problem)
        finally:
            self.hearing.release()

    def hear_file(self, chunk: bytes) -> None:
        """Decode one chunk like an upload (in a worker, bounded), never more than MAX_CHUNK_SECONDS of it nor
        more than the recording has room for."""
        faces = self.faces
        room = (faces.max_samples - faces.recorded_samples) / faces.rate
        if room > 0:
            audio = load_audio(chunk, faces.rate, max_seconds=min(MAX_CHUNK_SECONDS, room))
            faces.add(faces.rate, audio.samples)

    def answer_as_is(self) -> LiveAnswer:
        """The newest face drawn (new_face if this is the first answer to carry it), and how many kept
        chunks are still to be heard."""
        faces = self.faces
        with self.inbox_lock:
            backlog = max(len(self.inbox) - 1, 0)  # the chunk just kept is on its way; more are a backlog
            face, new = faces.face, faces.face is not None and faces.face is not self.answered_face
            self.answered_face = face
        used = faces.drawn_samples if face is not None else len(faces.speech)
        update = LiveUpdate(face, used / faces.rate, faces.recorded_samples / faces.rate, new_face=new, not_voice=faces.not_voice)
        return LiveAnswer.of(update, backlog if backlog >= BEHIND_CHUNKS else 0, self.problem)

    def recording(self) -> tuple[int, np.ndarray]:
        """The whole recording as a (rate, int16 samples) pair: every chunk kept is heard first."""
        self.catch_up(wait=True)
        return self.faces.recording()


#: What stopping says when the server holds no recording for the session.
NO_RECORDING = (
    f"No recording reached the server: the live view was full, or the recording sent nothing for {LIVE_IDLE_S:.0f} s. "
    "Try again, or record a clip in the “Record or upload” tab."
)


class LiveRecordings:
    """The live view's recordings, one a visitor session, kept here rather than in Gradio's session
    state (which keeps a closed tab's state for an hour, and one for every session hash a script
    invents): at most `limit` at once and MAX_LIVE_PER_CLIENT an address, each dropped `idle_s` after
    its last chunk or when it sends audio far slower than it is recorded, so the memory the live view
    can hold is bounded by `limit` recordings whatever visitors do, and one client cannot hold every
    place. A recording belongs to the page that holds its token (`LiveSession.token`): chunks and a
    stop from anyone else are refused. Thread-safe: Gradio calls it from several worker threads."""

    def __init__(self, model: Voice2Face, limit: int = MAX_LIVE_RECORDINGS, idle_s: float = LIVE_IDLE_S,
                 clock: Callable[[], float] = time.monotonic):  # fmt: skip
        self.model, self.limit, self.idle_s, self.clock = model, limit, idle_s, clock
        self.recordings: dict[str, tuple[LiveSession, float]] = {}  # session -> (recording, time of its last chunk)
        self.lock = threading.Lock()

    def open(self, session: str, address: str | None = None) -> LiveSession:
        """This session's recording, begun now if it has none; an AudioError when `limit` others are recording,
        or MAX_LIVE_PER_CLIENT from this address (None: an address that is not counted)."""
        self.drop_idle()
        with self.lock:
            live = self.recordings[session][0] if session in self.recordings else None
            if live is None:
                self.check_room(address)
                live = LiveSession(self.model, address, self.clock)
            self.recordings[session] = (live, self.clock())
            return live

    def check_room(self, address: str | None) -> None:
        if len(self.recordings) >= self.limit:
            raise AudioError(
                f"The live view is full: {self.limit} visitors are recording right now. Try again in a minute, "
                "or record a clip in the “Record or upload” tab."
            )
        if address is not None and sum(live.address == address for live, _ in self.recordings.values()) >= MAX_LIVE_PER_CLIENT:
            raise AudioError(f"Your address is recording {MAX_LIVE_PER_CLIENT} times already; stop one of them first.")

    def drop_idle(self) -> list[str]:
        """Drop the recordings whose last chunk is older than `idle_s` (a closed tab, a stalled stream), and
        those older than TRICKLE_AFTER_S that have received under MIN_AUDIO_PACE of their age in audio;
        the sessions dropped."""
        with self.lock:
            now = self.clock()
            idle = [session for session, (live, last) in self.recordings.items() if now - last > self.idle_s or trickles(live, now)]
            for session in idle:
                del self.recordings[session]
        return idle

    def add_file(self, session: str, path: str | Path, token: str | None = None, address: str | None = None) -> LiveAnswer:
        """The next chunk of this session's recording (see `LiveSession.add_file`), if it carries its token
        (None: a caller in this process, trusted)."""
        live = self.open(session, address)
        if token is not None:
            live.admit(token)
        answer = live.add_file(path)
        answer.token = live.hand_token() if token is not None else None
        return answer

    def belongs(self, session: str, token: str) -> bool:
        """Whether `session` is recording and `token` is its recording's."""
        with self.lock:
            entry = self.recordings.get(session)
            return entry is not None and entry[0].token == token

    def close(self, session: str, token: str | None = None) -> LiveSession | None:
        """End this session's recording and hand it over (None if it had none, it was dropped, or `token`
        is not its own: someone else's stop leaves it recording; None: a caller in this process)."""
        with self.lock:
            entry = self.recordings.get(session)
            if entry is None or (token is not None and token != entry[0].token):
                return None
            del self.recordings[session]
        return entry[0]

    def __len__(self) -> int:
        return len(self.recordings)

    def __contains__(self, session: str) -> bool:
        return session in self.recordings


def trickles(live: LiveSession, now: float) -> bool:
    """Whether a recording sends audio far slower than it is recorded (a client holding a place)."""
    age = now - live.started
    return age > TRICKLE_AFTER_S and live.received_seconds() < MIN_AUDIO_PACE * age
