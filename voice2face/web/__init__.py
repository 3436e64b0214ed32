"""The web demo's server, as one room: the page, the live view, and the guards and limits a shared link needs.

- `page`: what the page shows for one clip (faces, notes, the voice reading, the model card), without Gradio;
  `charts`: its two charts; `page.css` and `page.js`: how it looks and what it does in the browser;
- `live`: the Live tab's recordings, every chunk kept and heard in order, bounded in number;
- `layout`: the Gradio page itself (its components and their wiring), `page.js` its browser side;
- `events`: what each event does: one call into the pipeline, its answer turned into the page's components;
- `server`: serving it: the queue, the guards on every route, the file cache's sweep;
- `gradio_import`: Gradio imported without the stub writer that took a third of its import;
- `limits`, `request_size`, `routes`, `cache_sweep`: what strangers can make the server hold, and how they are answered.

Nothing in `voice2face` outside this folder imports it. Importing it sets Gradio's environment before
Gradio is imported: no analytics calls, a file cache folder of our own (removed when the process ends), and no
stub writing at import (`gradio_import`).
"""

import atexit
import os
import shutil
import tempfile

from .gradio_import import skip_stub_writing

skip_stub_writing()  # before Gradio is imported: a second off every start

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls at run time


def use_a_cache_folder_of_our_own() -> None:
    """Gradio's file cache in a new folder, unless GRADIO_TEMP_DIR names one: the sweep deletes everything in it, and
    /tmp/gradio is every Gradio app's. It goes when the process ends (each start makes its own): one was left in
    /tmp by every start, test run and benchmark."""
    if "GRADIO_TEMP_DIR" in os.environ:
        return
    folder = tempfile.mkdtemp(prefix="voice2face-cache-")
    os.environ["GRADIO_TEMP_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


use_a_cache_folder_of_our_own()
