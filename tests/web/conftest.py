"""What every web test shares."""

from __future__ import annotations

import tempfile

import pytest


@pytest.fixture(autouse=True, scope="session")
def client_downloads_kept_here(tmp_path_factory):
    """gradio_client downloads each file an answer holds into a folder of its own under the system's temp folder
    and leaves that folder behind, empty, once it has moved the file: one /tmp/<40 hex digits> per file, thousands
    a day of test runs. Here the temp folder is one of pytest's, which it removes in turn."""
    kept, tempfile.tempdir = tempfile.tempdir, str(tmp_path_factory.mktemp("temp"))
    yield
    tempfile.tempdir = kept
