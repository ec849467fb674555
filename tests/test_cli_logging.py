"""Library log lines in the CLI: Lightning's banners print once with -v and not at all by default.

Lightning's import sets its loggers to INFO and adds a handler of its own, so before the fix
"GPU available: ..." printed twice (once as "INFO: GPU available: ...") on every ``train``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from ptychopinn.cli import _AfterImport, main

_RUN = "import sys; from ptychopinn.cli import main; sys.exit(main(sys.argv[1:]))"


def _train(tiny_npz, out, *extra: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, *extra, "train", "--data", str(tiny_npz), "--out", str(out),
         "--epochs", "1", "--batch-size", "16", "--accelerator", "cpu"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.zip").is_file()
    return proc.stderr


@pytest.mark.slow
def test_lightning_banners_print_at_most_once(tiny_npz, tmp_path, cli_train_run):
    _, quiet = cli_train_run  # ``ptychopinn train`` at the default level
    assert quiet.count("GPU available") <= 1, quiet[-2000:]
    assert "INFO:" not in quiet, quiet[-2000:]
    assert "GPU available" not in quiet  # library INFO lines are hidden at the default level
    assert "trained 1 epochs" in quiet  # our own INFO line is kept

    verbose = _train(tiny_npz, tmp_path / "run_v", "-v")
    for banner in ("GPU available", "TPU available", "`Trainer.fit` stopped"):
        assert verbose.count(banner) == 1, (banner, verbose[-2000:])
    assert "INFO: GPU available" not in verbose


def test_import_hook_is_removed_after_the_command(tmp_path):
    main(["simulate", "--out", str(tmp_path / "d.npz"), "--object-size", "32", "--patch-size",
          "16", "--n-positions", "8", "--seed", "1"])
    assert not any(isinstance(f, _AfterImport) for f in sys.meta_path)
