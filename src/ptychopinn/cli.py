"""Command-line interface: parses arguments, builds configs, calls library functions."""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.util
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from ptychopinn.errors import PtychoInputError

logger = logging.getLogger("ptychopinn")


def _cmd_simulate(a: argparse.Namespace) -> int:
    from ptychopinn.data.simulate import SimulationConfig, simulate
    from ptychopinn.io.dataset import save_dataset

    cfg = SimulationConfig(
        object=a.object, probe=a.probe, scan=a.scan, n_positions=a.n_positions,
        object_size=a.object_size, patch_size=a.patch_size, step=a.step, overlap=a.overlap,
        jitter=a.jitter, photons=a.photons, noise=not a.no_noise, seed=a.seed,
        probe_defocus=a.probe_defocus, position_error=a.position_error,
        position_drift=a.position_drift, position_scale=a.position_scale,
    )
    data = simulate(cfg)
    save_dataset(data, a.out)
    logger.info("wrote %s (%d patterns, %dx%d, %.3g photons/pattern)", a.out, data.n_patterns,
                data.patch_size, data.patch_size, cfg.photons)
    return 0


def _cmd_split(a: argparse.Namespace) -> int:
    from ptychopinn.data.split import split_dataset
    from ptychopinn.io.dataset import load_dataset, save_dataset

    data = load_dataset(a.data)
    train, test = split_dataset(data, axis=a.axis, fraction=a.fraction)
    save_dataset(train, a.out_train)
    save_dataset(test, a.out_test)
    logger.info("train: %d patterns -> %s; test: %d patterns -> %s", train.n_patterns,
                a.out_train, test.n_patterns, a.out_test)
    return 0


def _cmd_inspect(a: argparse.Namespace) -> int:
    from ptychopinn.data.inspect import inspect_dataset, report_markdown
    from ptychopinn.files import atomic_path
    from ptychopinn.io import cxi
    from ptychopinn.io.dataset import load_dataset

    if cxi.is_cxi(a.data):  # its own report: near-field data and files without a probe too
        if a.figure:
            raise PtychoInputError("--figure is not offered for CXI files; convert to NPZ "
                                   "first", path=a.data)
        report = cxi.cxi_report(a.data)
        sys.stdout.write(cxi.report_markdown(report))
        if a.json:
            with atomic_path(a.json) as tmp:
                tmp.write_text(json.dumps(report, indent=2, default=str))
        return 0
    data = load_dataset(a.data, values=a.values)
    report = inspect_dataset(data, path=a.data)
    sys.stdout.write(report_markdown(report))
    if a.json:
        with atomic_path(a.json) as tmp:
            tmp.write_text(json.dumps(report, indent=2, default=str))
    if a.figure:
        from ptychopinn.viz import dataset_overview

        dataset_overview(data, a.figure)
    return 0


def _cmd_convert(a: argparse.Namespace) -> int:
    from ptychopinn.io.dataset import convert_from, save_dataset

    data = convert_from(a.source, a.format, values=a.values)
    if a.out.suffix.lower() == ".cxi":
        from ptychopinn.io.cxi import save_cxi

        save_cxi(data, a.out, photon_energy_eV=a.photon_energy_ev, distance_m=a.distance_m,
                 detector_pixel_m=a.detector_pixel_m)
    else:
        save_dataset(data, a.out)
    logger.info("wrote %s (%d patterns)", a.out, data.n_patterns)
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from ptychopinn.demo import DemoConfig, run_demo

    summary = run_demo(DemoConfig(out=Path(a.out), seed=a.seed, train_minutes=a.train_minutes,
                                  adapt_minutes=a.adapt_minutes, quick=a.quick))
    sys.stdout.write(summary)
    return 0


def _cmd_study_run(a: argparse.Namespace) -> int:
    import distributed  # noqa: F401  (sets its own log levels on import; quieted below)

    from ptychopinn.studies.runner import run_study
    from ptychopinn.studies.spec import load_study

    if not a.verbose:
        logging.getLogger("distributed").setLevel(logging.WARNING)
    result = run_study(load_study(a.study), a.out, clobber=a.clobber, verify_only=a.verify_only,
                       scheduler=a.scheduler, show_progress=not a.no_progress,
                       quiet_workers=not a.verbose)
    if result.errors:
        first = next(iter(result.errors.items()))
        sys.stderr.write(f"ptychopinn study: {len(result.errors)} job(s) failed; first: "
                         f"{first[0]}: {first[1]}\n")
        return 1
    if not result.verification_ok:
        sys.stderr.write(f"ptychopinn study: verification failed; see "
                         f"{Path(a.out) / 'verification.json'}\n")
        return 1
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help unless the default is None or False (the
    help then says what happens) or the help already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action)


def _all_parsers(p: argparse.ArgumentParser):
    """``p`` and every (nested) subcommand parser."""
    yield p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _all_parsers(child)


def build_parser() -> argparse.ArgumentParser:
    """The ``ptychopinn`` argument parser (every option's help shows its default)."""
    p = argparse.ArgumentParser(prog="ptychopinn", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="simulate a dataset with ground truth")
    s.add_argument("--out", required=True, type=Path, help="output .npz or .h5")
    s.add_argument("--object", default="lines", help="lines | grf | PATH.npz | PATH.png")
    s.add_argument("--probe", default="disk", help="disk | PATH.npz (probeGuess)")
    s.add_argument("--scan", default="random", choices=["random", "raster", "spiral"],
                   help="scan pattern")
    s.add_argument("--n-positions", type=int, default=None,
                   help="scan positions (default: a raster scan fills the object; random "
                        "and spiral scans take 1000)")
    s.add_argument("--object-size", type=int, default=256, help="object side (px)")
    s.add_argument("--patch-size", type=int, default=64, help="diffraction pattern side N (px)")
    s.add_argument("--step", type=float, default=None,
                   help="scan step (px); overrides --overlap (default: from --overlap and the "
                        "probe diameter)")
    s.add_argument("--overlap", type=float, default=0.7, help="linear overlap fraction")
    s.add_argument("--jitter", type=float, default=0.0, help="raster jitter (px)")
    s.add_argument("--photons", type=float, default=1e6, help="mean total counts per pattern")
    s.add_argument("--no-noise", action="store_true", help="no Poisson noise")
    s.add_argument("--probe-defocus", type=float, default=1.0, help="disk probe edge phase (rad)")
    s.add_argument("--position-error", type=float, default=0.0, metavar="PX",
                   help="stage error: patterns taken at positions off the stored (nominal) ones "
                        "by a random error of this RMS (px); the true positions are stored as "
                        "xcoords_true/ycoords_true")
    s.add_argument("--position-drift", type=float, default=0.0, metavar="PX",
                   help="stage error: linear drift of this many px from the first to the last "
                        "pattern, in a random direction")
    s.add_argument("--position-scale", type=float, default=0.0, metavar="FRAC",
                   help="stage error: true positions scaled by 1 + FRAC about the scan centre")
    s.add_argument("--seed", type=int, default=0, help="seed of object, scan and noise")
    s.set_defaults(func=_cmd_simulate)

    s = sub.add_parser("split", help="spatial train/test split")
    s.add_argument("data", type=Path, help="dataset to split (.npz or .h5)")
    s.add_argument("--axis", default="y", choices=["y", "x"], help="split along this axis")
    s.add_argument("--fraction", type=float, default=0.5,
                   help="share of the scan extent that goes to the training part")
    s.add_argument("--out-train", required=True, type=Path, help="training part (.npz or .h5)")
    s.add_argument("--out-test", required=True, type=Path, help="test part (.npz or .h5)")
    s.set_defaults(func=_cmd_split)

    s = sub.add_parser("inspect", help="dataset report (Markdown to stdout)")
    s.add_argument("data", type=Path, help="dataset (.npz, .h5, or .cxi: then the CXI report, "
                                          "with its far-/near-field geometry)")
    s.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    s.add_argument("--figure", type=Path, default=None, help="also write an overview PNG")
    s.add_argument("--values", choices=["amplitude", "intensity"], default=None,
                   help="declare what the diffraction array holds (default: as the file's "
                        "metadata says; undeclared float data are amplitudes)")
    s.set_defaults(func=_cmd_inspect)

    s = sub.add_parser("convert", help="convert another package's data to our NPZ/HDF5, or "
                                       "ours to CXI")
    s.add_argument("source", type=Path, help="file (or Ptychodus product/folder) to convert")
    s.add_argument("--format", required=True, choices=["tike", "ptychodus", "npz", "cxi"],
                   help="format of SOURCE (npz: re-validate one of ours, e.g. legacy keys; "
                        "npz and cxi read any file 'inspect' loads: our NPZ/HDF5 or a "
                        "far-field CXI with a probe)")
    s.add_argument("--out", required=True, type=Path,
                   help="output .npz or .h5, or .cxi (a far-field CXI file: intensities, "
                        "translations in metres, the probe as illumination)")
    s.add_argument("--photon-energy-ev", type=float, default=None,
                   help="--out .cxi: photon energy in eV (default: the dataset's metadata, "
                        "else 8000)")
    s.add_argument("--distance-m", type=float, default=None,
                   help="--out .cxi: sample-detector distance in m (default: the dataset's "
                        "metadata, else 2.0)")
    s.add_argument("--detector-pixel-m", type=float, default=None,
                   help="--out .cxi: detector pixel size in m (default: the dataset's metadata, "
                        "else 75e-6); the object pixel is then wavelength*distance/(N*pixel)")
    s.add_argument("--values", choices=["amplitude", "intensity"], default=None,
                   help="what SOURCE's patterns hold (default: as the file's metadata says; "
                        "undeclared float data are amplitudes)")
    s.set_defaults(func=_cmd_convert)

    s = sub.add_parser("demo", help="simulate; reconstruct with the shipped general model, "
                                    "adapted, and trained networks; compare with LSQML")
    s.add_argument("--out", required=True, type=Path, help="demo output folder")
    s.add_argument("--seed", type=int, default=0, help="seed of simulation and training")
    s.add_argument("--train-minutes", type=float, default=1.5,
                   help="training budget per model (minutes)")
    s.add_argument("--adapt-minutes", type=float, default=1.0,
                   help="adaptation budget of the shipped general model on the scan (minutes)")
    s.add_argument("--quick", action="store_true", help="tiny sizes (seconds; for tests)")
    s.set_defaults(func=_cmd_demo)

    s = sub.add_parser("study", help="the dose/overlap study (SPEC §8)")
    study = s.add_subparsers(dest="study_command", required=True)
    s = study.add_parser("run", help="run, resume or verify a study on dask.distributed")
    s.add_argument("study", type=Path, help="STUDY.yaml")
    s.add_argument("--out", required=True, type=Path, help="study output folder")
    mode = s.add_mutually_exclusive_group()
    mode.add_argument("--clobber", action="store_true", help="redo finished jobs")
    mode.add_argument("--verify-only", action="store_true",
                      help="re-check the artifacts without computing")
    s.add_argument("--scheduler", default=None,
                   help="address of a running dask scheduler (default: a LocalCluster)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_study_run)

    _add_model_commands(sub)
    for parser in _all_parsers(p):
        parser.formatter_class = _HelpFormatter
    return p


def _add_model_commands(sub) -> None:
    """train / infer / compare / iterative / study (added as they exist)."""
    from ptychopinn import cli_model

    cli_model.add_commands(sub)


#: Lightning's loggers (its banners "GPU available: ...", "`Trainer.fit` stopped: ..." are INFO).
_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


def _tame_lightning(verbose: bool) -> None:
    """Lightning's log lines through our root handler only, at WARNING unless ``verbose``.

    Importing ``lightning`` sets its loggers to INFO and gives the ``lightning`` logger a
    handler of its own (``INFO: ...``), so every banner printed twice and levels set before
    the import were lost. Remove those handlers and set the level again.
    """
    for name in _LIGHTNING_LOGGERS:
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            log.removeHandler(handler)
        log.propagate = True
        log.setLevel(logging.INFO if verbose else logging.WARNING)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``then()`` right after the top-level package ``name`` has been imported."""

    def __init__(self, name: str, then: Callable[[], None]):
        self.name, self.then = name, then

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name or self not in sys.meta_path:
            return None
        sys.meta_path.remove(self)  # find the real spec with the other finders
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module, then = loader.exec_module, self.then

        def exec_then(module):
            exec_module(module)
            then()

        loader.exec_module = exec_then
        return spec


@contextlib.contextmanager
def _lightning_logs(*, verbose: bool) -> Iterator[None]:
    """Apply :func:`_tame_lightning` now if Lightning is loaded, else as soon as it is.

    Lightning is imported lazily (only by commands that train), so the CLI cannot set its
    log levels up front without paying its import time on every command.
    """
    if "lightning" in sys.modules:
        _tame_lightning(verbose)
        yield
        return
    hook = _AfterImport("lightning", lambda: _tame_lightning(verbose))
    sys.meta_path.insert(0, hook)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(hook)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. Errors are one line on stderr."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(message)s", stream=sys.stderr, force=True)
    logging.getLogger("distributed").setLevel(logging.WARNING)
    try:
        with _lightning_logs(verbose=args.verbose):
            return int(args.func(args) or 0)
    except (PtychoInputError, ValueError, FileNotFoundError, RuntimeError) as e:
        if args.verbose:
            raise
        msg = " ".join(str(e).split()) or type(e).__name__
        sys.stderr.write(f"ptychopinn {args.command}: error: {msg}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
