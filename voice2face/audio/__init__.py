"""Everything that turns untrusted input into speech, in the order it runs.

- `load.py`: `load_audio` checks a source (path, bytes or samples) and has it decoded;
- `decoder_process.py`: a pool of worker processes that decode uploads, capped in
  memory, time and work, so a crashing or slow decoder costs one request;
- `decode.py`: the decoder itself (libsndfile, or FFmpeg through PyAV), block by
  block to mono at the model's rate, refusing impossible layouts from the header;
- `speech_check.py`: is it a voice at all (Silero VAD), not a tone, noise or music;
- `front_end.py`: silence removal (WebRTC VAD), log-mel features, and the cuts of
  the speech for each length asked for.
"""
