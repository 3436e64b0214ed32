"""Gradio imported without its stub writer: a second off every start of the server.

Each time Gradio is imported, its component metaclass calls `create_or_modify_pyi` for every component class:
the class's source file is read, parsed with `ast` twice and rendered through a Jinja template, to keep the
`.pyi` stub beside it up to date for people who write components. The stubs ship in Gradio's wheel and we write
no components, so at run time that is only work: 1.0-1.3 s of a 2.7-3.0 s `import gradio` on 2 cores
(`benchmarks/bench_app.py --parts startup`), which the server waits for before its page is up.

`skip_stub_writing` puts a finder first on `sys.meta_path` that lets `gradio.component_meta` load as it is and
then replaces that one function with one that does nothing. Nothing else of Gradio changes. Where Gradio is
already imported, or no longer has the function, it does nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

MODULE, FUNCTION = "gradio.component_meta", "create_or_modify_pyi"


def keep_stubs_as_shipped(*_args: object) -> None:
    """Stands in for Gradio's stub writer: the stubs stay as its wheel shipped them."""


class StubWriterRemover(importlib.abc.MetaPathFinder):
    """Finds `gradio.component_meta` as Python would, and removes the stub writer once the module has run."""

    def find_spec(self, name: str, path=None, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            if hasattr(module, FUNCTION):
                setattr(module, FUNCTION, keep_stubs_as_shipped)

        spec.loader.exec_module = exec_module
        return spec


def skip_stub_writing() -> None:
    """Before Gradio is imported: its components are defined without their stubs being rewritten."""
    if MODULE not in sys.modules and not any(isinstance(f, StubWriterRemover) for f in sys.meta_path):
        sys.meta_path.insert(0, StubWriterRemover())
