"""Bounds on what the web server holds for strangers: uploads, request bodies, live recordings, its file cache.

The bounds on what one clip may cost (seconds decoded, channels, rates, decoder time) are the method's
and live in `voice2face/limits.py`; the README's "Limits" section lists both.
"""

#: Live recordings held at once (each at most MAX_AUDIO_SECONDS of 16 kHz 16-bit audio, 9.6 MB); a
#: recording is dropped LIVE_IDLE_S after its last chunk (the page's recorder sends one every 0.1 s, however quiet
#: the room; at 20 s, sessions sending a chunk every 10 s kept every place).
MAX_LIVE_RECORDINGS = 8
LIVE_IDLE_S = 8.0

#: Request bodies the web server reads: uploads up to the upload cap (plus form overhead), anything
#: else (a request's JSON: file references, ticked lengths, 100 characters of text) far less.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_FORM_OVERHEAD_BYTES = 1024 * 1024
MAX_REQUEST_BYTES = 256 * 1024

#: The web server's file cache (uploads and drawn pictures): swept every CACHE_SWEEP_S of files older
#: than CACHE_AGE_S; an upload is let in only while the cache has room for it under CACHE_MAX_BYTES
#: (`web/uploads.py`; 32 queued 50 MB uploads fit), and one address may fill a quarter of it.
CACHE_SWEEP_S, CACHE_AGE_S = 60, 300
CACHE_MAX_BYTES = 2 * 1024**3
#: Files in one upload request (the page sends one; one request of 1,000 files made 1,000 files).
MAX_FILES_PER_UPLOAD = 2

#: Full-size downloads drawn at once (each holds the 1024-px graph and its faces: four at once peaked at
#: 2,062 MiB); the others wait their turn.
FULL_SIZE_AT_ONCE = 1
#: Events one page (a session) and one address may have in the queue at once: one client sending 40 took 34
#: of its places and others were told it was full. An address may hold half the queue (a classroom behind one
#: router is many visitors); behind a proxy (Hugging Face Spaces, or `app.py --behind-proxy`) it is the first
#: address of X-Forwarded-For. Live recordings one address may hold at once.
MAX_QUEUED_PER_SESSION = 4
MAX_QUEUED_PER_CLIENT = 16
MAX_LIVE_PER_CLIENT = 2
#: Sessions whose state the server holds (Gradio kept up to 10,000, about 100 KB each, for any session id a
#: script made up: 3,600 added 345 MiB); the oldest goes first.
MAX_SESSIONS = 300
