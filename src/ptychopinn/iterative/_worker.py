"""Subprocess worker that runs pty-chi (``python -m ptychopinn.iterative._worker``).

Not part of the public API: :class:`ptychopinn.iterative.ptychi_backend.PtychiWorker` starts
it. It serves runs until its stdin closes: each request is one line ``IN<TAB>OUT``. It reads
``IN`` (``.npz``: ``counts`` (M,N,N) float32 DC-centred intensities, ``positions_rc`` (M,2)
float64 patch centres in object pixels, ``probe`` (N,N) complex64 on the ortho-FFT scale,
``object`` (H,W) complex64 initial object, ``config_json`` 0-d str) and writes ``OUT``
(``.npz``) atomically; with ``snapshot_every`` = K in the config it also holds
``snapshot_epochs`` (S,) int64, ``snapshot_seconds`` (S,) float64 (cumulative compute time,
snapshot copies excluded) and ``snapshot_objects`` (S,H,W) complex64, taken every K epochs and
after the last. It runs in its own process because pty-chi sets torch's global default
dtype and device. Progress goes to stderr as ``PTYCHOPINN_PROGRESS epoch=E/T loss=L`` lines,
a failed run's error as one ``PTYCHOPINN_ERROR <message>`` line, and the end of every run as
``PTYCHOPINN_DONE <0|1>``. Starting the process (torch, pty-chi and torch's compiler stack are
imported) costs ~13 s on a 2-core CPU, which is why one process serves several runs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import types
from pathlib import Path

import numpy as np

logger = logging.getLogger("ptychopinn.iterative._worker")

_ERROR_PREFIX = "PTYCHOPINN_ERROR "
_DONE_PREFIX = "PTYCHOPINN_DONE "


def _install_torchvision_shim() -> None:
    """Make ``from torchvision.transforms import GaussianBlur`` work for pty-chi.

    pty-chi 2.2 imports torchvision only for ``GaussianBlur`` (used to build *random*
    initial objects, which we never do). On a CPU-only torch the PyPI torchvision wheel is
    missing or cannot load its CUDA-linked operators, so in this worker process only we
    provide a small pure-torch stand-in when the real import fails.
    """
    try:
        from torchvision.transforms import GaussianBlur  # noqa: F401

        return
    except Exception:  # missing, or a wheel built against another torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

    import torch

    class GaussianBlur:
        """Separable Gaussian blur with reflect padding on (..., H, W) tensors."""

        def __init__(self, kernel_size, sigma=(0.1, 2.0)) -> None:
            ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            sg = (sigma, sigma) if isinstance(sigma, int | float) else sigma
            self.kernel_size = tuple(int(k) for k in ks)
            self.sigma = tuple(float(s) for s in sg)

        def __call__(self, img):
            shape = img.shape
            x = img.reshape(-1, 1, shape[-2], shape[-1])
            for axis, (k, s) in enumerate(zip(self.kernel_size, self.sigma, strict=True)):
                t = torch.arange(k, dtype=x.dtype, device=x.device) - (k - 1) / 2
                g = torch.exp(-0.5 * (t / s) ** 2)
                g = g / g.sum()
                if axis == 0:
                    x = torch.nn.functional.pad(x, (0, 0, k // 2, k // 2), mode="reflect")
                    x = torch.nn.functional.conv2d(x, g.reshape(1, 1, k, 1))
                else:
                    x = torch.nn.functional.pad(x, (k // 2, k // 2, 0, 0), mode="reflect")
                    x = torch.nn.functional.conv2d(x, g.reshape(1, 1, 1, k))
            return x.reshape(shape)

    tv = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    transforms.GaussianBlur = GaussianBlur
    tv.transforms = transforms
    sys.modules["torchvision"] = tv
    sys.modules["torchvision.transforms"] = transforms


def _build_options(api, cfg: dict, refine_probe: bool, refine_positions: bool):
    algorithm = cfg["algorithm"]
    options_cls = {
        "lsqml": api.LSQMLOptions,
        "epie": api.EPIEOptions,
        "rpie": api.RPIEOptions,
        "dm": api.DMOptions,
    }[algorithm]
    options = options_cls()

    data = options.data_options
    data.fft_shift = False  # we hand over intensities already ifftshift-ed (DC at [0, 0])
    data.save_data_on_device = False

    obj = options.object_options
    obj.optimizable = True
    obj.determine_position_origin_coords_by = api.ObjectPosOriginCoordsMethods.SPECIFIED
    # pty-chi cuts a patch starting at position + origin - (N - 1)/2; our convention starts
    # at position - N/2 (even N), hence origin = (N - 1)/2 - N/2 = -0.5 per axis.
    obj.position_origin_coords = np.array([-0.5, -0.5])
    obj.remove_object_probe_ambiguity.enabled = bool(refine_probe)

    probe = options.probe_options
    probe.optimizable = bool(refine_probe)

    pos = options.probe_position_options
    pos.optimizable = bool(refine_positions)
    pos.constrain_position_mean = False
    if cfg.get("position_step_size") is not None:
        pos.step_size = float(cfg["position_step_size"])
    if cfg.get("position_update_limit") is not None:
        pos.correction_options.update_magnitude_limit = float(cfg["position_update_limit"])
    if cfg.get("position_affine"):
        pos.affine_transform_constraint.enabled = True

    rec = options.reconstructor_options
    rec.num_epochs = int(cfg["epochs"])
    if algorithm != "dm":  # DM always uses all positions (and warns on a custom batch size)
        rec.batch_size = int(cfg["batch_size"])
    rec.random_seed = int(cfg["seed"])
    rec.allow_nondeterministic_algorithms = False
    rec.default_dtype = api.Dtypes.FLOAT32
    if algorithm == "lsqml":
        rec.rescale_probe_intensity_in_first_epoch = False
    return options


def _resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False")
    return requested


def _main(in_path: Path, out_path: Path, default_threads: int) -> None:
    with np.load(in_path, allow_pickle=False) as inp:
        counts = inp["counts"].astype(np.float32)
        positions = inp["positions_rc"].astype(np.float64)
        probe = inp["probe"].astype(np.complex64)
        obj0 = inp["object"].astype(np.complex64)
        cfg = json.loads(str(inp["config_json"]))

    import torch

    # every run sets its own thread count (a served process outlives the run's config)
    torch.set_num_threads(int(cfg.get("num_threads") or default_threads))
    device = _resolve_device(cfg["device"])

    _install_torchvision_shim()
    import ptychi.api as api
    from ptychi.api.task import PtychographyTask

    # pty-chi's far field is the unnormalised fft2: |F|^2 = N^2 |F_ortho|^2 for N x N.
    fft_scale = float(np.sqrt(probe.shape[-2] * probe.shape[-1]))
    options = _build_options(api, cfg, cfg["refine_probe"], cfg["refine_positions"])
    options.reconstructor_options.default_device = (
        api.Devices.GPU if device == "cuda" else api.Devices.CPU
    )
    intensities = np.fft.ifftshift(counts, axes=(-2, -1)).astype(np.float32)

    task = PtychographyTask(
        options,
        diffraction_data=intensities,
        object_data=obj0[None],
        probe_data=(probe / np.float32(fft_scale))[None, None],
        probe_position_x_px=positions[:, 1],
        probe_position_y_px=positions[:, 0],
    )

    if cfg["mode"] == "forward":
        with torch.no_grad():
            indices = torch.arange(counts.shape[0])
            y = task.reconstructor.forward_model.forward(indices).detach().cpu().numpy()
        amplitudes = np.sqrt(np.fft.fftshift(y, axes=(-2, -1))).astype(np.float32)
        _save(out_path, amplitudes=amplitudes, device=np.array(device))
        return

    epochs = int(cfg["epochs"])
    every = int(cfg.get("snapshot_every") or 0)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    losses: list[float] = []
    snap_epochs: list[int] = []
    snap_seconds: list[float] = []
    snap_objects: list[np.ndarray] = []
    paused = 0.0  # seconds spent copying snapshots, excluded from the timings
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        task.run(n_epochs=1)
        table = task.reconstructor.loss_tracker.table
        loss = float(table["loss"].iloc[-1]) if len(table) else float("nan")
        losses.append(loss)
        sys.stderr.write(f"PTYCHOPINN_PROGRESS epoch={epoch}/{epochs} loss={loss:.6g}\n")
        sys.stderr.flush()
        if every and (epoch % every == 0 or epoch == epochs):
            sync()  # the epoch's (asynchronous) GPU work belongs to the compute time
            t_snap = time.perf_counter()
            snap_epochs.append(epoch)
            snap_seconds.append(t_snap - t0 - paused)
            snap_objects.append(
                task.get_data_to_cpu("object", as_numpy=True)[0].astype(np.complex64))
            paused += time.perf_counter() - t_snap
    sync()
    # the last epoch ended at its snapshot (if any), which therefore carries the run's time
    wall = snap_seconds[-1] if snap_seconds else time.perf_counter() - t0 - paused

    obj = task.get_data_to_cpu("object", as_numpy=True)[0].astype(np.complex64)
    probe_out = task.get_data_to_cpu("probe", as_numpy=True)[0, 0] * np.float32(fft_scale)
    pos_out = np.stack(
        [task.get_probe_positions_y(as_numpy=True), task.get_probe_positions_x(as_numpy=True)],
        axis=1,
    ).astype(np.float64)
    if not cfg["refine_positions"]:
        pos_out = positions
    snapshots = {}
    if every:
        snapshots = {"snapshot_epochs": np.asarray(snap_epochs, dtype=np.int64),
                     "snapshot_seconds": np.asarray(snap_seconds, dtype=np.float64),
                     "snapshot_objects": np.stack(snap_objects)}
    _save(
        out_path,
        object=obj,
        probe=probe_out.astype(np.complex64),
        positions_rc=pos_out,
        loss_history=np.asarray(losses, dtype=np.float64),
        wall_time_s=np.array(wall),
        device=np.array(device),
        snapshot_overhead_s=np.array(paused),
        **snapshots,
    )


def _save(out_path: Path, **arrays: np.ndarray) -> None:
    """``arrays`` as an NPZ at ``out_path``, atomically (the package's one atomic write)."""
    from ptychopinn.files import atomic_path

    with atomic_path(out_path) as tmp, open(tmp, "wb") as fh:  # a file object: no ".npz" added
        np.savez(fh, **arrays)


def _serve(requests, default_threads: int) -> None:
    """Run each ``IN<TAB>OUT`` line of ``requests``; end every run with a DONE line."""
    for line in requests:
        in_s, tab, out_s = line.rstrip("\n").partition("\t")
        rc = 1
        try:
            if not tab:
                raise ValueError(f"expected 'IN<TAB>OUT', got {line.strip()!r}")
            _main(Path(in_s), Path(out_s), default_threads)
            rc = 0
        except Exception as exc:  # report one line; the parent raises RuntimeError
            logger.debug("run failed", exc_info=True)
            msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")
            sys.stderr.write(f"{_ERROR_PREFIX}{msg}\n")
        finally:
            _release_memory()
        # on a line of its own even after a partial line (e.g. a C library's warning)
        sys.stderr.write(f"\n{_DONE_PREFIX}{rc}\n")
        sys.stderr.flush()


def _release_memory() -> None:
    """Drop what the finished run left behind (pty-chi's task, cached GPU blocks)."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m ptychopinn.iterative._worker`` (requests on stdin)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        sys.stderr.write(f"{_ERROR_PREFIX}usage: python -m ptychopinn.iterative._worker "
                         "(one 'IN<TAB>OUT' request per line on stdin)\n")
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    import torch

    _serve(sys.stdin, torch.get_num_threads())
    return 0


if __name__ == "__main__":
    sys.exit(main())
