"""A Ptychodus (>= 1.7) ``TrainableReconstructor`` that runs ptychopinn models.

Importing this module needs the optional dependency ``ptychodus`` (``pip install
ptychopinn[ptychodus]``); ``import ptychopinn`` and ``import ptychopinn.interop`` never import
it. The reconstructor runs in the Ptychodus process (no subprocess): ptychopinn is PyTorch only.

What Ptychodus 1.7 calls (``ptychodus.api.reconstruct``):

``reconstruct(ReconstructInput) -> Iterator[ReconstructOutput]``
    ``ReconstructInput.diffraction_patterns`` (n, H, W) photon counts, DC at (H // 2, W // 2),
    already paired 1:1 with ``product.probe_positions`` (``prepare_reconstruct_input``);
    ``bad_pixels`` (H, W) bool; ``product`` the initial product. We yield one
    ``ReconstructOutput(product, progress=1)``: the input product whose object is replaced by the
    stitched ptychopinn object on the input object's grid (same shape, pixel size and centre).
``train(input_path, output_path) -> Iterator[TrainOutput]``
    Two paths only (the GUI passes the chosen directory twice; ``ptychodus -b train`` passes the
    batch input and output directories). See :meth:`PtychopinnReconstructor.train`.
``load_model_from_file`` / ``save_model``
    Our ``model.zip`` bundle (safetensors + JSON manifest, no pickle). Ptychodus's batch mode
    loads ``<input dir>/model.zip`` by itself because :meth:`get_model_file_extension` is
    ``.zip``.
``export_training_data(file_path, ReconstructInput)``
    A ptychopinn dataset (NPZ, or chunked HDF5 for ``.h5``), loadable by
    :func:`ptychopinn.io.dataset.load_dataset`.

Ptychodus hard-codes its reconstructor libraries in ``ptychodus.model.core.ModelCore``;
:func:`install_in_ptychodus` (or ``python -m ptychopinn.interop.ptychodus_reconstructor``) adds
:class:`PtychopinnReconstructorLibrary` to them. See ``docs/ptychodus.md``.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    from ptychodus.api.object import Object
    from ptychodus.api.product import LossValue, Product
    from ptychodus.api.reconstruct import (
        ReconstructInput,
        ReconstructorLibrary,
        ReconstructOutput,
        TrainableReconstructor,
        TrainOutput,
    )
except ModuleNotFoundError as exc:
    if not (exc.name or "ptychodus").startswith("ptychodus"):
        raise
    raise ImportError(
        "ptychopinn.interop.ptychodus_reconstructor needs Ptychodus >= 1.7: "
        "pip install ptychopinn[ptychodus]"
    ) from None

import numpy as np

from ptychopinn.config import RunConfig, load_config
from ptychopinn.data.container import PtychoData
from ptychopinn.errors import PtychoInputError
from ptychopinn.inference.adapt import AdaptConfig
from ptychopinn.inference.predict import InferConfig
from ptychopinn.io.ptychodus import (
    DIFFRACTION_FILE_NAME,
    dataset_from_batch_directory,
    dataset_from_product,
)
from ptychopinn.iterative.ptychi_backend import IterativeConfig
from ptychopinn.models.registry import DEFAULT_KIND
from ptychopinn.training.bundle import Bundle

logger = logging.getLogger(__name__)

__all__ = [
    "LIBRARY_NAME",
    "RECONSTRUCTOR_NAME",
    "PtychopinnReconstructor",
    "PtychopinnReconstructorLibrary",
    "default_run_config",
    "install_in_ptychodus",
    "ptychodata_from_input",
]

#: Ptychodus library name; with :data:`RECONSTRUCTOR_NAME` it gives the settings key
#: ``[Processing] Algorithm = ptychopinn-lightning_pinn``.
LIBRARY_NAME = "PtychoPINN-Lightning"
#: Reconstructor name inside the library.
RECONSTRUCTOR_NAME = "PINN"
#: Training directory entries :meth:`PtychopinnReconstructor.train` looks for.
TRAIN_DATA_FILE_NAME = "train_data.npz"
TRAIN_CONFIG_FILE_NAME = "config.yaml"
RUN_DIR_NAME = "ptychopinn_run"


def default_run_config() -> RunConfig:
    """Training configuration used when none is given: the default kind's recommended run
    (:data:`~ptychopinn.models.registry.DEFAULT_KIND`, :meth:`RunConfig.for_kind`, as
    ``ptychopinn train`` without ``--config``) without progress bars; the network's patch size
    is the patterns'."""
    return RunConfig.for_kind(DEFAULT_KIND).with_overrides(train={"show_progress": False})


def ptychodata_from_input(parameters: ReconstructInput) -> PtychoData:
    """Build a ptychopinn dataset from a Ptychodus ``ReconstructInput``.

    :func:`~ptychopinn.io.ptychodus.dataset_from_product`, the conversion that
    ``ptychopinn convert --format ptychodus`` and ``load_dataset`` use for a batch directory:
    positions in object pixels of the product's object (+ 0.5 px for even N), bad pixels
    zeroed, amplitudes ``sqrt(counts)``, first probe mode, first object layer.

    Parameters
    ----------
    parameters : ptychodus.api.reconstruct.ReconstructInput
        ``diffraction_patterns`` (M, N, N) photon counts paired 1:1 with the M product positions;
        ``bad_pixels`` (N, N) bool or None; ``product`` whose probe is on the object pixel grid.

    Returns
    -------
    PtychoData
        ``diffraction`` (M, N, N) float32 amplitudes, ``positions`` (M, 2) float64 (row, col),
        ``probe`` (N, N) complex64, ``obj`` (H, W) complex64, ``metadata["object_shape"]`` =
        (H, W), so reconstructions land on the product's grid.

    Raises
    ------
    PtychoInputError
        One line (``Ptychodus input '<name>': ...``) for non-square patterns, a
        pattern/position count mismatch, a probe whose size differs from the patterns, a probe
        not on the object grid, or invalid counts.
    """
    name = parameters.product.metadata.name
    return dataset_from_product(
        parameters.product, parameters.diffraction_patterns, parameters.bad_pixels,
        where=f"Ptychodus input {name!r}",
        provenance=f"Ptychodus ReconstructInput (product {name!r})")


def _training_source(input_path: Path) -> PtychoData | Path:
    """What :meth:`PtychopinnReconstructor.train` trains on (see its docstring)."""
    if input_path.is_file():
        return input_path
    if not input_path.is_dir():
        raise PtychoInputError("training data not found", path=input_path)
    if (input_path / TRAIN_DATA_FILE_NAME).is_file():
        return input_path / TRAIN_DATA_FILE_NAME
    if (input_path / DIFFRACTION_FILE_NAME).is_file():
        return dataset_from_batch_directory(input_path)
    found = sorted(input_path.glob("*.npz"))
    if len(found) == 1:
        return found[0]
    raise PtychoInputError(
        f"expected {TRAIN_DATA_FILE_NAME}, a Ptychodus batch directory ({DIFFRACTION_FILE_NAME} "
        f"+ product.h5) or exactly one *.npz dataset; found {len(found)} *.npz files",
        path=input_path,
    )


def _fresh_run_dir(output_path: Path, name: str = RUN_DIR_NAME) -> Path:
    """``output_path/name`` (default ``ptychopinn_run``), or ``..._2``, ``..._3``, ... if taken."""
    candidate = output_path / name
    k = 1
    while candidate.exists():
        k += 1
        candidate = output_path / f"{name}_{k}"
    return candidate


def _loss_history(metrics_csv: Path) -> tuple[list[LossValue], list[LossValue]]:
    """Per-epoch (training, validation) losses from a run's ``metrics.csv``."""
    train: list[LossValue] = []
    val: list[LossValue] = []
    if not metrics_csv.is_file():
        return train, val
    with open(metrics_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            epoch = row.get("epoch")
            if not epoch:
                continue
            for key, out in (("train/loss_epoch", train), ("val/loss", val)):
                if row.get(key):
                    out.append(LossValue(epoch=int(float(epoch)), value=float(row[key])))
    return train, val


class PtychopinnReconstructor(TrainableReconstructor):
    """Ptychodus ``TrainableReconstructor`` running a ptychopinn model bundle.

    Parameters
    ----------
    run_config : RunConfig, optional
        Training configuration (default :func:`default_run_config`). A ``config.yaml`` in the
        training directory replaces it; the patch size always comes from the patterns.
    infer_config : InferConfig, optional
        Inference options (default: ``InferConfig(show_progress=False)``).
    model_path : path-like, optional
        A ``model.zip`` bundle (or run directory) to load at construction.
    adapt : AdaptConfig, optional
        Off by default. When set, every ``reconstruct`` first fine-tunes a copy of the loaded
        model on that scan's own diffraction (physics loss, no labels; see
        :func:`ptychopinn.inference.adapt.adapt`) and reconstructs with the copy; the loaded
        model is not changed. Refused for the supervised baseline.
    adapt_dir : path-like, optional
        Where adapted models are kept (one run directory per call, ``adapted``,
        ``adapted_2``, ...); default: a temporary directory, deleted afterwards.
    refine : IterativeConfig, optional
        Off by default. When set, the stitched (possibly adapted) network object is handed to
        pty-chi as its initial guess and ``refine.epochs`` of ``refine.algorithm`` polish it
        (:func:`ptychopinn.inference.refine.refine_reconstruction`); the output object is the
        refined one and the product's losses are pty-chi's per epoch. Needs pty-chi (refused
        at construction otherwise). The instance keeps its pty-chi worker process open
        between calls (:class:`~ptychopinn.iterative.PtychiWorker`), so only the first
        refinement pays the worker's start-up (≈13 s on a CPU); it ends with :meth:`close`
        or the instance.

    Notes
    -----
    Each instance holds the loaded :class:`~ptychopinn.training.bundle.Bundle` (per instance;
    nothing is global). Bad detector pixels are zeroed, as in ``ptychopinn convert``
    (Ptychodus's own PtychoPINN back end inpaints them instead).
    """

    def __init__(
        self,
        *,
        run_config: RunConfig | None = None,
        infer_config: InferConfig | None = None,
        model_path: str | os.PathLike[str] | None = None,
        adapt: AdaptConfig | None = None,
        adapt_dir: str | os.PathLike[str] | None = None,
        refine: IterativeConfig | None = None,
    ) -> None:
        super().__init__()
        self._ptychi_worker = None
        if refine is not None:
            from ptychopinn.inference.refine import require_ptychi

            require_ptychi("refine=")
            from ptychopinn.iterative.ptychi_backend import PtychiWorker

            self._ptychi_worker = PtychiWorker(num_threads=refine.num_threads)
        self._refine = refine
        self._run_config = run_config or default_run_config()
        self._infer_config = infer_config or InferConfig(show_progress=False)
        self._adapt = adapt
        self._adapt_dir = None if adapt_dir is None else Path(adapt_dir)
        self._bundle: Bundle | None = None
        if model_path is not None:
            self.load_model_from_file(Path(model_path))

    def close(self) -> None:
        """End the pty-chi worker process kept for ``refine=`` (a later call starts another)."""
        if self._ptychi_worker is not None:
            self._ptychi_worker.close()

    @property
    def name(self) -> str:
        """Reconstructor name shown by Ptychodus."""
        return RECONSTRUCTOR_NAME

    @property
    def bundle(self) -> Bundle | None:
        """The loaded model bundle, or None."""
        return self._bundle

    def get_progress_goal(self) -> int:
        """Progress units per call: one ``reconstruct``/``train`` call is one unit."""
        return 1

    def _require_bundle(self, action: str) -> Bundle:
        if self._bundle is None:
            raise RuntimeError(
                f"{LIBRARY_NAME}: cannot {action}: no model loaded; load a ptychopinn model.zip "
                "(or train one) first"
            )
        return self._bundle

    def reconstruct(self, parameters: ReconstructInput) -> Iterator[ReconstructOutput]:
        """Reconstruct the object with the loaded model; yields one output.

        Parameters
        ----------
        parameters : ReconstructInput
            Patterns (M, N, N) photon counts, bad pixels (N, N), initial product.

        Yields
        ------
        ReconstructOutput
            ``product``: the input product (metadata, positions, probes unchanged) with a
            one-layer (H, W) complex64 object on the input object's grid -- the stitched
            ptychopinn object, 0 where no pattern contributed; ``progress`` = 1.

        Raises
        ------
        RuntimeError
            When no model is loaded (before any work is done).
        """
        from ptychopinn.inference.workflow import run_inference

        bundle = self._require_bundle("reconstruct")
        data = ptychodata_from_input(parameters)
        adapt_dir = None
        if self._adapt is not None and self._adapt_dir is not None:
            adapt_dir = _fresh_run_dir(self._adapt_dir, "adapted")
        res = run_inference(bundle, data, self._infer_config, adapt_cfg=self._adapt,
                            adapt_dir=adapt_dir, refine=self._refine, worker=self._ptychi_worker)
        recon = res.reconstruction
        losses = ([] if res.loss_history is None else
                  [LossValue(epoch=i, value=float(v)) for i, v in enumerate(res.loss_history)])
        product = parameters.product
        object_in = product.object_
        if object_in.num_layers > 1:
            logger.warning(
                "%s: input object has %d layers; the output has one", self.name,
                object_in.num_layers,
            )
        object_out = Object(
            array=recon.object[np.newaxis].astype(np.complex64),
            pixel_geometry=object_in.get_pixel_geometry().copy(),
            center=object_in.get_center().copy(),
            layer_spacing_m=[],
        )
        yield ReconstructOutput(
            product=Product(
                metadata=product.metadata,
                probe_positions=product.probe_positions,
                probes=product.probes,
                object_=object_out,
                losses=losses,
            ),
            progress=1,
            status=0,
        )

    def is_model_loaded(self) -> bool:
        """True once a bundle is loaded or trained."""
        return self._bundle is not None

    def get_model_file_filter(self) -> str:
        """Qt file-dialog filter for model bundles."""
        return "ptychopinn model bundle (*.zip)"

    def get_model_file_extension(self) -> str:
        """Bundle extension; Ptychodus batch mode loads ``<input dir>/model.zip``."""
        return ".zip"

    def load_model_from_file(self, file_path: Path) -> None:
        """Load a ``model.zip`` bundle (or a run directory holding one); verified, no pickle."""
        from ptychopinn.training.bundle import load_bundle

        self._bundle = load_bundle(file_path)
        logger.info("%s: loaded model %s", self.name, file_path)

    def save_model(self, file_path: Path) -> None:
        """Write the loaded model as a bundle (atomic), keeping its manifest's provenance."""
        from ptychopinn.training.bundle import resave_bundle

        resave_bundle(self._require_bundle("save the model"), file_path)

    def get_training_data_file_filter(self) -> str:
        """Qt file-dialog filter for exported training data."""
        return "ptychopinn dataset (*.npz *.h5)"

    def export_training_data(self, file_path: Path, parameters: ReconstructInput) -> None:
        """Write ``parameters`` as a ptychopinn dataset (NPZ; chunked HDF5 for ``.h5``), atomic.

        The dataset holds the amplitudes, positions, probe and object of
        :func:`ptychodata_from_input`; ``load_dataset`` reads it back.
        """
        from ptychopinn.io.dataset import save_dataset

        data = ptychodata_from_input(parameters)
        save_dataset(data, file_path)
        logger.info("%s: exported %d patterns to %s", self.name, data.n_patterns, file_path)

    def train(self, input_path: Path, output_path: Path) -> Iterator[TrainOutput]:
        """Train a model and load it; yields one output with the loss history.

        Parameters
        ----------
        input_path : Path
            A ptychopinn dataset file (e.g. from :meth:`export_training_data`), or a directory
            holding ``train_data.npz``, a Ptychodus batch input (``diffraction.h5`` +
            ``product.h5``, read like ``ptychopinn convert``) or exactly one ``*.npz`` dataset.
            A ``config.yaml`` (ptychopinn run config) in that directory replaces the run config.
        output_path : Path
            Directory receiving the run, ``output_path/ptychopinn_run`` (``_2``, ``_3``, ... when
            taken): ``model.zip``, ``config.yaml``, ``metrics.csv``, ``summary.json``.

        Yields
        ------
        TrainOutput
            Per-epoch ``training_loss`` and ``validation_loss``; ``progress`` = 1.
        """
        from ptychopinn.training.api import train

        input_path, output_path = Path(input_path), Path(output_path)
        cfg = self._run_config
        config_file = input_path / TRAIN_CONFIG_FILE_NAME
        if input_path.is_dir() and config_file.is_file():
            cfg = load_config(config_file)
            logger.info("%s: training config from %s", self.name, config_file)
        source = _training_source(input_path)
        if isinstance(source, Path):
            from ptychopinn.io.dataset import load_dataset

            data = load_dataset(source)
        else:
            data = source
        run_dir = _fresh_run_dir(output_path)
        result = train(data, run_dir, cfg, data_path=source if isinstance(source, Path) else None)
        self.load_model_from_file(result.bundle_path)
        train_loss, val_loss = _loss_history(run_dir / "metrics.csv")
        yield TrainOutput(
            training_loss=train_loss, validation_loss=val_loss, progress=1, status=0
        )


class PtychopinnReconstructorLibrary(ReconstructorLibrary):
    """Ptychodus ``ReconstructorLibrary`` holding one :class:`PtychopinnReconstructor`.

    Keyword arguments are passed to the reconstructor. Its log messages (logger ``ptychopinn``)
    show in Ptychodus's processing log.
    """

    def __init__(self, **reconstructor_kwargs: Any) -> None:
        super().__init__("ptychopinn")
        self._reconstructors = [PtychopinnReconstructor(**reconstructor_kwargs)]

    @property
    def name(self) -> str:
        """Library name (the part before ``_`` in the Ptychodus algorithm key)."""
        return LIBRARY_NAME

    def __iter__(self) -> Iterator[PtychopinnReconstructor]:
        return iter(self._reconstructors)


def install_in_ptychodus(**reconstructor_kwargs: Any) -> None:
    """Make every Ptychodus ``ModelCore`` created afterwards offer our reconstructor.

    Ptychodus 1.7 hard-codes its reconstructor libraries in ``ModelCore.__init__`` and passes
    them to ``ProcessingCore``; this wraps ``ptychodus.model.core.ProcessingCore`` (in this
    process only) so that :class:`PtychopinnReconstructorLibrary` is appended to that list.
    Calling it again has no further effect.

    Parameters
    ----------
    **reconstructor_kwargs
        Passed to :class:`PtychopinnReconstructor` (``run_config``, ``infer_config``,
        ``model_path``, ``adapt``, ``adapt_dir``, ``refine``).
    """
    import ptychodus.model.core as core

    original = core.ProcessingCore
    if getattr(original, "ptychopinn_installed", False):
        return

    def processing_core(
        task_manager: Any, settings_registry: Any, product_api: Any, algorithm_libraries: Any
    ) -> Any:
        libraries = [*algorithm_libraries, PtychopinnReconstructorLibrary(**reconstructor_kwargs)]
        return original(task_manager, settings_registry, product_api, libraries)

    processing_core.ptychopinn_installed = True  # type: ignore[attr-defined]
    core.ProcessingCore = processing_core  # type: ignore[assignment,misc]


def main() -> int:
    """Run the Ptychodus application (GUI or ``-b`` batch mode) with our reconstructor added."""
    install_in_ptychodus()
    from ptychodus.__main__ import main as ptychodus_main

    return int(ptychodus_main())


if __name__ == "__main__":  # run through the importable module, not a __main__ copy
    from ptychopinn.interop.ptychodus_reconstructor import main as _main

    raise SystemExit(_main())
