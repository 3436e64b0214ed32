"""Gradio imported without its stub writer (`voice2face.web.gradio_import`), each in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{cwd}"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_component_defined_after_our_import_writes_no_stub_and_gradio_still_calls_the_writer(tmp_path: Path):
    (tmp_path / "our_component.py").write_text("import gradio as gr\n\n\nclass Shout(gr.Textbox):\n    pass\n")
    shown = run_python(
        """
        import inspect
        import voice2face.web
        import gradio.component_meta as meta
        import our_component
        print(meta.create_or_modify_pyi.__qualname__)
        print("create_or_modify_pyi(" in inspect.getsource(meta.ComponentMeta.__new__))
        print(our_component.Shout(value="x").value)
        """,
        tmp_path,
    ).split()
    assert shown == ["keep_stubs_as_shipped", "True", "x"]  # the writer Gradio calls is ours, and components still work
    assert not (tmp_path / "our_component.pyi").exists()


def test_without_it_gradio_writes_the_stub_the_test_above_looks_for(tmp_path: Path):
    (tmp_path / "our_component.py").write_text("import gradio as gr\n\n\nclass Shout(gr.Textbox):\n    pass\n")
    run_python("import our_component", tmp_path)
    assert "class Shout" in (tmp_path / "our_component.pyi").read_text()


def test_once_gradio_is_imported_it_adds_no_finder(tmp_path: Path):
    shown = run_python(
        """
        import sys
        import gradio
        from voice2face.web.gradio_import import StubWriterRemover, skip_stub_writing
        skip_stub_writing()
        print(any(isinstance(f, StubWriterRemover) for f in sys.meta_path), gradio.component_meta.create_or_modify_pyi.__module__)
        """,
        tmp_path,
    ).split()
    assert shown == ["False", "gradio.component_meta"]
