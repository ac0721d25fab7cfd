"""The emulator ships with the source, not the wheel: `demo` and `emulator` find it from a clone,
and say in one line what to do where it is absent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import emulator_source, main


def test_a_clone_finds_the_emulator_from_any_directory(tmp_path: Path) -> None:
    code = ("import sys; from gateway.cli.emulator_source import emulator_available; "
            "ok = emulator_available(); import shopify_emulator; print(ok)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"}, timeout=60)  # the editable install: no PYTHONPATH
    assert done.stdout.strip() == "True", done.stderr


def test_without_the_source_tree_the_demo_says_where_to_run_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(emulator_source, "find_spec", lambda name: None)
    monkeypatch.setattr(emulator_source, "SOURCE_ROOT", tmp_path)  # an installed wheel: nothing beside it
    for command in ("demo", "emulator"):
        assert main([command]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "make demo" in err and "Traceback" not in err
