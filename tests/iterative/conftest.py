"""One ``ptychopinn iterative`` CLI run shared by the output and snapshot tests."""

from __future__ import annotations

import pytest

#: ``ptychopinn iterative --epochs EPOCHS --snapshot-every EVERY --refine-probe`` on the tiny scan
EPOCHS, EVERY = 5, 2


@pytest.fixture(scope="session")
def cli_lsqml_out(tmp_path_factory, tiny_npz):
    """OUT of one CLI run (probe refined, snapshots every EVERY epochs)."""
    pytest.importorskip("ptychi")
    from ptychopinn.cli import main

    out = tmp_path_factory.mktemp("lsqml") / "out"
    assert main(["iterative", "--data", str(tiny_npz), "--out", str(out), "--epochs",
                 str(EPOCHS), "--snapshot-every", str(EVERY), "--refine-probe"]) == 0
    return out
