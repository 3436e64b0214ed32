"""voice2face web demo: record or upload speech, see the faces drawn from several lengths of it.

    python app.py [--checkpoint DIR] [--host 127.0.0.1] [--port 7860] [--share]

Start-up only: the page, the live view and the server's guards live in voice2face/web/.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from voice2face import DEFAULT_CHECKPOINT, Voice2Face, Voice2FaceError
from voice2face.paths import OPENVINO_CACHE
from voice2face.process import limit_malloc_arenas
from voice2face.web.page import DemoOutput, warm_up

log = logging.getLogger("voice2face.app")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="voice2face web demo")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="checkpoint directory (default: %(default)s)")
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to serve on; 0.0.0.0 for all interfaces (default: %(default)s, or $GRADIO_SERVER_NAME as on Spaces)",
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)), help="port (default: %(default)s)"
    )
    parser.add_argument("--share", action="store_true", help="also open a temporary public link through Gradio's share service")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    parser.add_argument("--monitoring", action="store_true", help="open Gradio's monitoring page (per-event timings) to anyone who finds it")
    parser.add_argument("--behind-proxy", action="store_true", default=None,
                        help="every visitor comes through a proxy: read who they are from X-Forwarded-For, for fair shares (on by itself on Spaces)")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    limit_malloc_arenas()  # before Gradio's threads start: under load they held 0.5 GB more without it
    try:
        model = Voice2Face.from_pretrained(args.checkpoint, device=args.device)
    except Voice2FaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(1, thread_name_prefix="voice2face-warm-up") as warming:
        example = warming.submit(ready_to_serve, model)
        # Gradio is imported only now, beside the warm-up: its import is about 3 s of Python, the warm-up nearly
        # all native code that lets Python go, so the two share the cores (to the first faces 1-2 s sooner)
        from voice2face.web.layout import build_demo
        from voice2face.web.server import launch

        demo = build_demo(model, args.checkpoint, args.behind_proxy, example.result())
    launch(demo, args.host, args.port, args.share, monitoring=args.monitoring, behind_proxy=args.behind_proxy)
    return 0


def ready_to_serve(model: Voice2Face) -> DemoOutput:
    """The model's compiled graphs, read from the cache or made, then one request served: the page's worked example."""
    if model.serve_with_openvino(OPENVINO_CACHE):
        log.info("drawing faces and hearing voices through OpenVINO (compiled from the checkpoint, kept in %s)", OPENVINO_CACHE)
    return warm_up(model)


if __name__ == "__main__":
    raise SystemExit(main())
