"""Serving the page to strangers: the queue, a guard on every route in our own words, the file cache's sweep."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import signal
from collections.abc import Iterable
from pathlib import Path

import gradio as gr
import matplotlib
from gradio.exceptions import InvalidPathError
from gradio_client.utils import is_http_url_like
from pydantic import ValidationError
from starlette.middleware import Middleware

from .cache_sweep import CacheSweeper
from .limits import CACHE_AGE_S, CACHE_MAX_BYTES, CACHE_SWEEP_S, MAX_SESSIONS
from .live_chunks import ChunkArrivals, LiveChunkTap
from .page import CSS, MAX_UPLOAD, PAGE_JS
from .request_size import RequestSizeLimit
from .routes import RouteGuard, client_address
from .uploads import UploadGuard, UploadRoom

log = logging.getLogger("voice2face.app")

#: Requests computed at once, and requests allowed to wait; each takes a fraction of a second on CPU.
CONCURRENCY = 2
QUEUE_SIZE = 32
#: What the Live stream asks of Gradio; its recorder in the browser sends a chunk every 0.1 s whatever this says
#: (Gradio 6.31, measured), and the face is redrawn as often as drawing allows (`live.LiveFaces.current`).
LIVE_EVERY_S = 1.0

def refuse_web_addresses(component: gr.Audio) -> gr.Audio:
    """Make `component` refuse web addresses as input: the server would download them with no size cap.

    Gradio fetches a URL given as a file input before any event code runs; this wraps the one
    method that does it, on this component only (a subclass would make Gradio write a .pyi stub).
    """
    fetch = component.async_move_resource_to_block_cache

    async def move_local_files_only(url_or_file_path):
        if isinstance(url_or_file_path, str) and is_http_url_like(url_or_file_path):
            raise gr.Error("Send the audio file itself; web addresses are not fetched.", print_exception=False)
        return await fetch(url_or_file_path)

    component.async_move_resource_to_block_cache = move_local_files_only
    return component


def refuse_server_paths_in_our_words(demo: gr.Blocks) -> gr.Blocks:
    """An API caller that names a file on the server ("/etc/passwd") instead of uploading one is refused
    by Gradio with a message naming the server's folders, and one that sends a plain string where a file
    goes got pydantic's message and a traceback in the log: say both in our words, naming no folder."""
    preprocess = demo.preprocess_data

    async def uploads_only(*args, **kwargs):
        try:
            return await preprocess(*args, **kwargs)
        except InvalidPathError:
            raise gr.Error("Only files uploaded to this page can be used: send the audio file itself.", print_exception=False) from None
        except ValidationError:
            raise gr.Error("An input is not what this page takes: send the audio as an uploaded file (gradio_client's handle_file), "
                           "the lengths as a list such as [\"1 s\", \"whole clip\"] and other lengths as text.",
                           print_exception=False) from None  # fmt: skip

    demo.preprocess_data = uploads_only
    return demo


def refuse_unknown_choices(component: gr.CheckboxGroup) -> gr.CheckboxGroup:
    """Make `component` refuse values it does not offer (an API caller's "3 s") in our words, naming
    the offered lengths and the free-text box, instead of Gradio's generic "not in the list of choices"."""
    offered = [value for _, value in component.choices]
    preprocess = component.preprocess

    def known_lengths_only(payload):
        if payload is not None and not isinstance(payload, list):
            raise gr.Error("The lengths must be a list such as [\"1 s\", \"whole clip\"].", print_exception=False)
        unknown = [value for value in payload or [] if value not in offered]
        if unknown:
            raise gr.Error(
                f"{str(unknown[0])[:20]!r} is not one of the lengths offered ({', '.join(offered)}). "
                "Put other lengths in seconds in the other-lengths box (the next input), e.g. \"3 12.5\".",
                print_exception=False,
            )
        return preprocess(payload)

    component.preprocess = known_lengths_only
    return component


def refuse_out_of_range(slider: gr.Slider, what: str) -> gr.Slider:
    """Make `slider` answer a value it cannot take (a string, NaN, infinity, 1e308, out of its range), as an API
    caller can send, in our words and without a traceback in the server's log."""

    def in_range_only(payload):
        number = payload if isinstance(payload, (int, float)) and not isinstance(payload, bool) else None
        if number is None or not math.isfinite(number) or not slider.minimum <= number <= slider.maximum:
            raise gr.Error(f"The {what} slider goes from {slider.minimum:g} to {slider.maximum:g}; {str(payload)[:20]!r} is not on it.",
                           print_exception=False)  # fmt: skip
        return gr.Number.round_to_precision(number, slider.precision)

    slider.preprocess = in_range_only
    return slider


def refuse_unknown_examples(examples: gr.Examples) -> gr.Examples:
    """Make the examples' route answer an index it does not have (an API caller's 99 or "x") in our words,
    instead of a traceback in the log; and keep the examples drawable however long the server runs."""
    preprocess = examples.dataset.preprocess
    examples_outlive_the_sweep(examples)

    def known_examples_only(payload):
        count = len(examples.dataset.samples or [])
        if not isinstance(payload, int) or isinstance(payload, bool) or not 0 <= payload < count:
            raise gr.Error(f"There are {count} examples, numbered 0 to {count - 1}; {str(payload)[:20]!r} is not one.",
                           print_exception=False)  # fmt: skip
        return preprocess(payload)

    examples.dataset.preprocess = known_examples_only
    return examples


def examples_outlive_the_sweep(examples: gr.Examples) -> None:
    """Gradio copies each example's file into its cache once, at start-up, keeping the file's own (old) time:
    the cache sweep took them as old files within minutes, and every later click said "No audio file named
    'female_voice_en_f4.flac' was found". Now a click whose copy is gone copies the example again, and every
    click dates its copy now, so it lives as long as a visitor's upload."""
    processed = examples._get_processed_example
    memo = examples.non_none_processed_examples

    def with_fresh_files(example):
        values = processed(example)
        if not all(Path(path).is_file() for path in example_paths(values)) and example in memo:
            del memo[example]  # copied again from the example itself
            values = processed(example)
            memo[example] = values
        for path in example_paths(values):
            with contextlib.suppress(OSError):
                os.utime(path)
        return values

    examples._get_processed_example = with_fresh_files


def example_paths(values: list) -> list[str]:
    """The files in an example's processed values (Gradio's file data, as dicts)."""
    return [value["path"] for value in values if isinstance(value, dict) and isinstance(value.get("path"), str)]


def is_live_stream(event) -> bool:
    """Whether a Gradio queue event is one of the Live tab's streams."""
    return event.streaming and event.fn.api_name == "live_update"


def end_live_stream_of(demo: gr.Blocks, request: gr.Request) -> None:
    """End the one Live stream that `request` came by (someone else's under the same session id leaves it open)."""
    joined = getattr(request, "request", None)
    for event in list(demo._queue.event_ids_to_events.values()):
        if is_live_stream(event) and event.request is joined:
            event.run_time, event.closed = math.inf, True
            event.signal.set()


def live_streams_of(demo: gr.Blocks, session: str) -> list[str]:
    """The event ids of `session`'s Live streams that Gradio still holds (open, or closed and not yet ended)."""
    return [event_id for event_id, event in list(demo._queue.event_ids_to_events.items()) if is_live_stream(event) and event.session_hash == session]


def live_chunk_tap(demo: gr.Blocks, arrivals: ChunkArrivals) -> Middleware:
    """`live_chunks.LiveChunkTap` for this page: its Live event, and the session of each Live stream Gradio holds."""
    live_event = next(index for index, fn in demo.fns.items() if fn.api_name == "live_update")

    def live_session_of(event_id: str) -> str | None:
        event = demo._queue.event_ids_to_events.get(event_id)
        return event.session_hash if event is not None and is_live_stream(event) else None

    return Middleware(LiveChunkTap, arrivals=arrivals, live_event=live_event, live_session_of=live_session_of)


def end_live_streams(demo: gr.Blocks, sessions: Iterable[str]) -> None:
    """End the Live tab's open streams of `sessions` now, as Gradio's own close route does.

    Gradio counts an open stream among the jobs it runs (40 in all, for every route) until the
    stream's time limit, however idle it is: 40 streams that each sent one chunk and stopped held
    the whole server, every visitor's faces included, for 5 minutes. Call on the server's event
    loop: the events' signals are asyncio events.
    """
    sessions = set(sessions)
    for event in list(demo._queue.event_ids_to_events.values()):
        if is_live_stream(event) and event.session_hash in sessions:
            event.run_time, event.closed = math.inf, True
            event.signal.set()


def draw_charts_headless() -> None:
    """Set matplotlib's backend to agg: a server opens no windows. Gradio asks matplotlib for its backend around every
    event; left to pick one, matplotlib imported pyplot to do so, on the first visitor's request and in the server's
    event loop: 0.35 s in which no page was answered."""
    matplotlib.use("agg")


def launch(
    demo: gr.Blocks, host: str, port: int, share: bool, block: bool = True, cache_sweep: tuple[float, float] = (CACHE_SWEEP_S, CACHE_AGE_S),
    monitoring: bool = False, behind_proxy: bool | None = None, cache_max_bytes: int = CACHE_MAX_BYTES,
) -> CacheSweeper:
    """Serve the page; if a share link was asked for but cannot be made, keep serving locally. Its file
    cache is swept every `cache_sweep[0]` s of files older than `cache_sweep[1]` s (and bounded in size);
    uploads are let in only while it has room under `cache_max_bytes` (`uploads.UploadGuard`); with `block`, serve until interrupted (Ctrl-C, or SIGTERM as docker, systemd and Spaces send) and
    then empty the cache. Gradio's monitoring page answers only with `monitoring`; `behind_proxy` (None: on Spaces)
    reads who each visitor is from X-Forwarded-For, for fair shares."""
    behind_proxy = is_behind_proxy() if behind_proxy is None else behind_proxy
    draw_charts_headless()
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE, api_open=False)  # no /run/ route skips the queue
    arrivals = getattr(demo, "live_chunk_arrivals", None)  # `layout.build_demo`'s page has a Live tab
    live_taps = [live_chunk_tap(demo, arrivals)] if arrivals is not None else []
    gradio_says = io.StringIO()  # Gradio prints its own share-link advice (download steps for its tunnel helper)
    with contextlib.redirect_stdout(gradio_says):
        demo.launch(
            server_name=host,
            server_port=port,
            share=share,
            max_file_size=MAX_UPLOAD,
            prevent_thread_lock=True,
            show_error=True,
            quiet=True,
            state_session_capacity=MAX_SESSIONS,  # Gradio kept 10,000 sessions' state, about 100 KB each
            css=CSS,
            js=PAGE_JS,
            # every body capped before any route reads it, and routes the page never uses closed
            # (and every chunk of a Live recording noted as it arrives, for the page's Live handler)
            app_kwargs={"middleware": [Middleware(RequestSizeLimit), route_guard(demo, monitoring, behind_proxy),
                                       Middleware(UploadGuard, room=UploadRoom(demo.GRADIO_CACHE, cache_max_bytes), behind_proxy=behind_proxy),
                                       *live_taps]},
            theme=gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["monospace"]),
        )
    local = f"http://{host}:{port}"
    if demo.share_url:
        print(f"voice2face is serving at {local} and at the public link {demo.share_url}")
    elif share:
        log.debug("Gradio on the share link: %s", " ".join(gradio_says.getvalue().split()))
        print(f"Could not make a public link (no connection to Gradio's share service); voice2face is serving at {local} only.")
    else:
        print(f"voice2face is serving at {local} (add --share for a temporary public link)")
    kept = lambda: set().union(*(getattr(b, "keep_in_cache", set()) for b in demo.blocks.values()))  # noqa: E731
    sweeper = CacheSweeper(demo.GRADIO_CACHE, *cache_sweep, cache_max_bytes, keep=kept).start()
    if block:
        signal.signal(signal.SIGTERM, stop_on_sigterm)
        try:
            demo.block_thread()
        finally:
            sweeper.clear()
    return sweeper


def route_guard(demo: gr.Blocks, monitoring: bool, behind_proxy: bool) -> Middleware:
    """`routes.RouteGuard` for this page: its events, those that skip the queue, the sessions its queue knows,
    and how many events each client has in it."""
    unqueued = {index for index, fn in demo.fns.items() if not fn.queue}
    public = {fn.api_name for fn in demo.fns.values() if fn.api_name and fn.api_visibility == "public"}

    def queued_by(session: str, address: str | None) -> tuple[int, int | None]:
        """Events in the queue (waiting or running) of this session, and of this address (None: not counted)."""
        events = list(demo._queue.event_ids_to_events.values())
        addresses = [request_address(event.request, behind_proxy) for event in events if event.request is not None]
        return sum(event.session_hash == session for event in events), None if address is None else addresses.count(address)

    return Middleware(RouteGuard, events=len(demo.fns), unqueued=unqueued, public=public, monitoring=monitoring, behind_proxy=behind_proxy,
                      known_session=lambda session: session in demo._queue.pending_messages_per_session, queued_by=queued_by)  # fmt: skip


def request_address(request, behind_proxy: bool) -> str | None:
    """`routes.client_address` of a Starlette request (Gradio's events keep the one that joined them)."""
    return client_address(request.headers, request.client.host if request.client else None, behind_proxy)


def is_behind_proxy() -> bool:
    """On Hugging Face Spaces every visitor comes through its proxy, which says who they are in X-Forwarded-For."""
    return bool(os.environ.get("SPACE_ID"))


def stop_on_sigterm(signum, frame) -> None:
    """SIGTERM stops the server as Ctrl-C does, so the cache is emptied (it was left behind)."""
    raise KeyboardInterrupt
