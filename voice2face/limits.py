"""Bounds on what one request may cost, in one place (and without heavy imports, for the CLI's --help).

A hosted demo is shared with strangers, so every quantity a visitor controls
has a cap here; the README's "Limits" section lists them.
"""

#: Longest stretch of a file that is decoded. Longer files are not refused: only
#: their first MAX_AUDIO_SECONDS are read (never the whole file), and the result
#: says so. Faces stop changing long before this (see the duration sweep).
MAX_AUDIO_SECONDS = 300.0

#: Channels and sample rates a file may declare; checked before any sample is decoded.
MAX_CHANNELS = 32
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 192_000

#: Samples (frames x channels) decoded from one file at most: 300 s of 48 kHz stereo.
#: A file with more channels or a higher rate has fewer of its seconds read, so
#: decoding time stays bounded whatever the header says; memory is bounded
#: separately, because each block is downmixed and resampled as it is read.
MAX_DECODED_SAMPLES = 300 * 48_000 * 2

#: Compressed frames decoded from one file at most. A 300 s clip has about 15,000 (20-85 ms each); a
#: file of millions of one-sample frames (2.5 M took 80 s at 33 us each) is refused after 1-2 s of work,
#: so it cannot hold a decoder, and with it the visitors queued behind it, for the whole time limit.
MAX_DECODED_FRAMES = 50_000
#: And a file whose first FRAMES_CHECKED frames last under MIN_MEAN_FRAME_SECONDS each on average (codecs'
#: frames last 2.5-120 ms) is refused there, after about 0.1 s of work, so that two such files sent at
#: once do not hold both request slots for the 1.7 s that 50,000 frames take.
FRAMES_CHECKED = 2_000
MIN_MEAN_FRAME_SECONDS = 0.002

#: Address space of the process that decodes uploads; a decoder bug that allocates
#: without bound fails there, not in the server.
DECODER_MEMORY_BYTES = 1536 * 1024 * 1024
#: A file that takes longer than this to decode is given up (its worker is killed).
DECODE_TIMEOUT_S = 60.0

#: The least speech a face is drawn from. From less, the reading swings (gender and age from 0.3 s of a
#: man's voice drew a child); the page and the live view say they need more instead.
MIN_FACE_SPEECH_SECONDS = 1.0

#: Lengths of speech one request may ask for.
MAX_DURATIONS = 16

#: Sizes a face may be asked for, in pixels (the models draw 64 or 1024).
MIN_SIZE, MAX_SIZE = 64, 1024
