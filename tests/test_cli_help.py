"""Every CLI option is documented and shows its default; help defaults match the configs."""

from __future__ import annotations

import argparse
import re

import pytest

from ptychopinn.cli import _all_parsers, build_parser


def _actions():
    for parser in _all_parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            yield parser, action


def test_walks_every_subcommand():
    progs = {p.prog for p in _all_parsers(build_parser())}
    for cmd in ("simulate", "split", "convert", "inspect", "train", "infer", "iterative",
                "export", "compare", "demo", "study run"):
        assert f"ptychopinn {cmd}" in progs, cmd


def test_every_option_has_help():
    missing = [f"{p.prog} {a.option_strings or a.dest}" for p, a in _actions()
               if not (a.help or "").strip()]
    assert not missing, missing


def test_every_default_is_shown():
    """A real default is printed by --help; a None default's help says what happens."""
    unshown = []
    for parser, action in _actions():
        text = " ".join(parser.format_help().split())
        if action.default is None or action.default is False:
            continue
        if f"(default: {action.default})" not in text and "default" not in action.help:
            unshown.append(f"{parser.prog} {action.option_strings}")
    assert not unshown, unshown
    sim = next(p for p in _all_parsers(build_parser()) if p.prog == "ptychopinn simulate")
    sim = " ".join(sim.format_help().split())
    assert "--object-size OBJECT_SIZE object side (px) (default: 256)" in sim


def test_simulate_cli_defaults_are_simulation_config_defaults():
    from ptychopinn.data.simulate import DEFAULT_N_POSITIONS, SimulationConfig

    a = build_parser().parse_args(["simulate", "--out", "x.npz"])
    cfg = SimulationConfig()
    for f in ("object", "probe", "scan", "n_positions", "object_size", "patch_size", "step",
              "overlap", "jitter", "photons", "probe_defocus", "seed"):
        assert getattr(a, f) == getattr(cfg, f), f
    assert (not a.no_noise) == cfg.noise
    help_text = next(x.help for p, x in _actions() if "--n-positions" in x.option_strings)
    assert f"take {DEFAULT_N_POSITIONS}" in help_text


@pytest.mark.parametrize(("option", "section", "field"), [
    ("--epochs", "train", "epochs"), ("--batch-size", "train", "batch_size"),
    ("--seed", "train", "seed"), ("--accelerator", "train", "accelerator"),
    ("--devices", "train", "devices"), ("--strategy", "train", "strategy"),
    ("--gridsize", "grouping", "gridsize"),
])
def test_train_help_fallbacks_are_the_config_defaults(option, section, field):
    from ptychopinn.config import RunConfig

    train = next(p for p in _all_parsers(build_parser()) if p.prog == "ptychopinn train")
    action = next(a for a in train._actions if option in a.option_strings)
    fallback = re.search(r"else ([^;)]+)", action.help).group(1)
    default = getattr(getattr(RunConfig(), section), field)
    assert fallback == str(default), (option, action.help)
