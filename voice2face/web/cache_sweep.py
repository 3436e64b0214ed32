"""A sweep of the web server's file cache that stays bounded under load and cannot die quietly.

Gradio's own sweep (`delete_cache`) iterates over a set that requests add to,
and dies for good with "Set changed size during iteration" under concurrent
uploads, logging nothing; and it only counts files by age, so an upload burst
fills the disk within its 5 minutes. This one walks the folder itself: it
deletes files older than `max_age_s`, then the oldest until the folder is under
`max_bytes`, never the files `keep` names (the page's own pictures, which it
shows from start-up); an error is logged and the next sweep runs anyway.
`clear` empties the folder at shutdown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger("voice2face.cache")


class CacheSweeper:
    def __init__(self, folder: str | Path, every_s: float, max_age_s: float, max_bytes: int,
                 keep: Callable[[], set[str]] = set):  # fmt: skip
        self.folder, self.every_s, self.max_age_s, self.max_bytes, self.keep = Path(folder), every_s, max_age_s, max_bytes, keep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "CacheSweeper":
        self._thread = threading.Thread(target=self._run, name="voice2face-cache-sweep", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - a sweep that fails once must not stop the next
                log.exception("cache sweep failed; trying again in %.0f s", self.every_s)

    def files(self) -> list[tuple[float, int, Path]]:
        """(modified time, size, path) of every file under the folder, oldest first; files that vanish
        while being listed (another request's, or a finished upload's temporary file) are skipped."""
        found = []
        for root, _, names in os.walk(self.folder):
            for name in names:
                path = Path(root) / name
                try:
                    stat = path.stat()
                except OSError:
                    continue
                found.append((stat.st_mtime, stat.st_size, path))
        return sorted(found)

    def sweep(self, now: float | None = None) -> int:
        """Delete what is too old, then the oldest until under the size cap; return the bytes freed."""
        now = time.time() if now is None else now
        keep = {str(Path(p)) for p in self.keep()}
        files = [f for f in self.files() if str(f[2]) not in keep]
        total = sum(size for _, size, _ in files)
        freed, emptied = 0, set()
        for modified, size, path in files:  # oldest first
            if now - modified <= self.max_age_s and total - freed <= self.max_bytes:
                break
            try:
                path.unlink()
                freed += size
                emptied.add(path.parent)
            except OSError:
                continue
        self._remove_empty_folders(now, emptied)
        return freed

    def _remove_empty_folders(self, now: float, emptied: set[Path]) -> None:
        """Empty folders this sweep emptied, or older than `max_age_s` (a young empty one may be an
        upload's, about to be written)."""
        for root, _, _ in sorted(os.walk(self.folder), key=lambda entry: -len(entry[0])):
            folder = Path(root)
            try:
                if folder != self.folder and (folder in emptied or now - folder.stat().st_mtime > self.max_age_s):
                    folder.rmdir()  # only succeeds when empty
            except OSError:
                pass

    def clear(self) -> None:
        """Stop sweeping and delete every file (at shutdown: the next start makes its own)."""
        self._stop.set()
        self.max_age_s, self.max_bytes, self.keep = -1, 0, set
        self.sweep()
