"""Bounds on what one request may cost, in one place (and without heavy imports, for the CLI's --help)."""

#: Longest stretch of a file that is decoded. Longer files are not refused: only
#: their first MAX_AUDIO_SECONDS are read (never the whole file), and the result
#: says so. Faces stop changing long before this (see the duration sweep).
MAX_AUDIO_SECONDS = 300.0
