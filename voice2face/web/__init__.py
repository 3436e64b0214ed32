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
Gradio is imported: no analytics calls, a file cache folder of our own, and no stub writing at import
(`gradio_import`).
"""

import os
import tempfile

from .gradio_import import skip_stub_writing

skip_stub_writing()  # before Gradio is imported: a second off every start

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls at run time
# a cache folder of our own: the sweep deletes everything in it, and /tmp/gradio is every Gradio app's
os.environ.setdefault("GRADIO_TEMP_DIR", tempfile.mkdtemp(prefix="voice2face-cache-"))
