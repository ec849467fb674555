"""Ptychodus product and diffraction files, read and written only through the ``ptychodus``
package's own API (``ptychodus.api.io.load_product`` / ``save_product`` /
``load_diffraction_data`` / ``save_diffraction_data``, which its HDF5 file plugins also use).

``ptychodus`` is imported inside these functions, never when this module is imported. Without
it every function here is refused in one line naming the extra,
``pip install 'ptychopinn[ptychodus]'``. A file Ptychodus's loader refuses is refused here too,
in one line naming the file. The one thing Ptychodus's record cannot hold, a product's unknown
root attributes (:attr:`PtychodusProduct.extra_attrs`), is read and written with h5py by
:func:`_read_extra_root_attrs` / :func:`_write_extra_root_attrs`, the only h5py access to
these files in ptychopinn.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.errors import PtychoInputError
from ptychopinn.files import atomic_path
from ptychopinn.io.ptychodus import _keys as k
from ptychopinn.io.ptychodus.container import (
    PtychodusProduct,
    as_float64,
    as_int64,
    finite,
)

logger = logging.getLogger(__name__)

__all__ = ["INSTALL_HINT", "product_from_ptychodus", "product_to_ptychodus",
           "read_diffraction_file", "read_product", "require_ptychodus",
           "write_diffraction_file", "write_product"]

#: How to get the optional ``ptychodus`` dependency (named in every refusal).
INSTALL_HINT = "pip install 'ptychopinn[ptychodus]'"

#: What Ptychodus's loaders raise for a file they cannot read (missing key, bad value, not HDF5).
_READ_ERRORS = (KeyError, ValueError, TypeError, OSError, AttributeError)


def require_ptychodus(what: str, path: str | os.PathLike | None = None) -> None:
    """Refuse ``what`` in one line naming the extra when ``ptychodus`` (>= 1.7) is missing.

    Checked with :func:`importlib.util.find_spec`, so nothing is imported.

    Raises
    ------
    PtychoInputError
        ``"<path>: <what> needs the ptychodus package (>= 1.7), which is not installed:
        pip install 'ptychopinn[ptychodus]'"``.
    """
    if importlib.util.find_spec("ptychodus") is None:
        raise PtychoInputError(f"{what} needs the ptychodus package (>= 1.7), which is not "
                               f"installed: {INSTALL_HINT}", path=path)


def _one_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def _load_with(loader: Any, path: Path, what: str) -> Any:
    """``loader(path)`` (a ``ptychodus.api.io`` loader); what it refuses is refused in one line
    naming the file."""
    try:
        return loader(path)
    except _READ_ERRORS as exc:
        raise PtychoInputError(f"ptychodus cannot read this {what} ({_one_line(exc)})",
                               path=path) from None


def _existing_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    require_ptychodus(what, path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path


# ------------------------------------------------------------------------------ products
def product_from_ptychodus(product: Any, *, where: str | os.PathLike | None = None,
                           extra_attrs: dict[str, Any] | None = None) -> PtychodusProduct:
    """Convert a ``ptychodus.api.product.Product`` to our numpy :class:`PtychodusProduct`.

    Parameters
    ----------
    product : ptychodus.api.product.Product
        Needs object and probe pixel geometries and an object centre.
    where : str or path-like, optional
        Named in errors (default ``Ptychodus product '<name>'``).
    extra_attrs : dict, optional
        Root attributes Ptychodus's record does not hold.

    Returns
    -------
    PtychodusProduct
        Same fields (positions in metres, (opr, modes, h, w) probe, (layers, H, W) object,
        metadata, losses), validated, complex64.

    Raises
    ------
    PtychoInputError
        One line naming ``where`` when a field is missing or invalid (e.g. an empty object).
    """
    meta = product.metadata
    positions = product.probe_positions
    probes = product.probes
    obj = product.object_
    try:
        probe_px = probes.get_pixel_geometry()
        object_px = obj.get_pixel_geometry()
        centre = obj.get_center()
        return PtychodusProduct(
            name=meta.name,
            comments=meta.comments,
            detector_object_distance_m=meta.detector_distance_m,
            photon_energy_eV=meta.photon_energy_eV,
            probe_photon_count=meta.probe_photon_count,
            exposure_time_s=meta.exposure_time_s,
            mass_attenuation_m2_per_kg=meta.mass_attenuation_m2_per_kg,
            tomography_angle_deg=meta.tomography_angle_deg,
            focus_object_distance_m=meta.focus_object_distance_m,
            tilt_angle_deg=meta.tilt_angle_deg,
            far_field=meta.far_field,
            polarization=None if meta.polarization is None else str(meta.polarization.value),
            probe_position_indexes=positions.get_indexes(),
            probe_position_x_m=positions.get_coordinates_x_m(),
            probe_position_y_m=positions.get_coordinates_y_m(),
            probe_photon_counts=positions.get_probe_photon_counts(),
            probe=probes.get_array(),
            opr_weights=probes.get_opr_weights_or_none(),
            probe_pixel_width_m=probe_px.width_m,
            probe_pixel_height_m=probe_px.height_m,
            object=obj.get_array(),
            object_center_x_m=centre.x_m,
            object_center_y_m=centre.y_m,
            object_pixel_width_m=object_px.width_m,
            object_pixel_height_m=object_px.height_m,
            object_layer_spacing_m=np.asarray(obj.layer_spacing_m, dtype=np.float64),
            loss_epochs=np.asarray([loss.epoch for loss in product.losses], dtype=np.int64),
            loss_values=np.asarray([loss.value for loss in product.losses], dtype=np.float64),
            extra_attrs=extra_attrs or {},
        )
    except ValueError as exc:
        raise PtychoInputError(f"invalid Ptychodus product: {exc}",
                               path=where or f"Ptychodus product {meta.name!r}") from None


def product_to_ptychodus(product: PtychodusProduct, *,
                         where: str | os.PathLike | None = None) -> Any:
    """Our :class:`PtychodusProduct` as a ``ptychodus.api.product.Product`` (arrays copied).

    ``extra_attrs`` have no place in Ptychodus's record and are not carried.

    Raises
    ------
    PtychoInputError
        Without ``ptychodus``, or one line (naming ``where``, e.g. the destination file) for a
        polarization outside Ptychodus's ``Polarization`` or a product its classes refuse.
    """
    require_ptychodus("a Ptychodus product", where)
    from ptychodus.api.diffraction import Polarization
    from ptychodus.api.geometry import PixelGeometry
    from ptychodus.api.object import Object, ObjectCenter
    from ptychodus.api.probe import ProbeSequence
    from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
    from ptychodus.api.product import LossValue, Product, ProductMetadata

    polarization = None
    if product.polarization is not None:
        try:
            polarization = Polarization(product.polarization)
        except ValueError:
            allowed = ", ".join(repr(p.value) for p in Polarization)
            raise PtychoInputError(f"{product.polarization!r} is not a Ptychodus polarization; "
                                   f"expected one of {allowed} or None", path=where,
                                   key=k.POLARIZATION) from None
    counts = product.probe_photon_counts
    try:
        points = [
            ProbePosition(int(i), float(x), float(y),
                          probe_photon_count=None if counts is None else float(counts[j]))
            for j, (i, x, y) in enumerate(zip(product.probe_position_indexes,
                                              product.probe_position_x_m,
                                              product.probe_position_y_m, strict=True))
        ]
        metadata = ProductMetadata(
            name=product.name,
            comments=product.comments,
            detector_distance_m=product.detector_object_distance_m,
            photon_energy_eV=product.photon_energy_eV,
            probe_photon_count=product.probe_photon_count,
            exposure_time_s=product.exposure_time_s,
            mass_attenuation_m2_per_kg=product.mass_attenuation_m2_per_kg,
            tomography_angle_deg=product.tomography_angle_deg,
            focus_object_distance_m=product.focus_object_distance_m,
            tilt_angle_deg=product.tilt_angle_deg,
            polarization=polarization,
            far_field=product.far_field,
        )
        probes = ProbeSequence(
            array=np.array(product.probe),
            opr_weights=None if product.opr_weights is None else np.array(product.opr_weights),
            pixel_geometry=PixelGeometry(width_m=product.probe_pixel_width_m,
                                         height_m=product.probe_pixel_height_m),
        )
        obj = Object(
            array=np.array(product.object),
            pixel_geometry=PixelGeometry(width_m=product.object_pixel_width_m,
                                         height_m=product.object_pixel_height_m),
            center=ObjectCenter(x_m=product.object_center_x_m, y_m=product.object_center_y_m),
            layer_spacing_m=[float(v) for v in product.object_layer_spacing_m],
        )
        losses = [LossValue(int(e), float(v))
                  for e, v in zip(product.loss_epochs, product.loss_values, strict=True)]
        return Product(metadata=metadata, probe_positions=ProbePositionSequence(points),
                       probes=probes, object_=obj, losses=losses)
    except (ValueError, TypeError) as exc:
        raise PtychoInputError(f"ptychodus refused the product ({_one_line(exc)})",
                               path=where) from None


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in ("S", "O") and value.ndim == 0:
        return _decode(value[()])
    return value


def _read_extra_root_attrs(path: Path) -> dict[str, Any]:
    """Root attributes of a product file that Ptychodus's record does not model.

    With :func:`_write_extra_root_attrs`, the only h5py access to Ptychodus files: its loader
    drops these attributes, and zips the three position datasets, silently keeping the
    shortest, so their lengths are checked here too.
    """
    import h5py

    with h5py.File(path, "r") as h5:
        extra = {key: _decode(h5.attrs[key]) for key in h5.attrs
                 if key not in k.KNOWN_ROOT_ATTRS}
        keys = (k.POSITION_INDEXES, k.POSITION_X, k.POSITION_Y)
        lengths = [h5[key].shape for key in keys]
    if len(set(lengths)) != 1:
        sizes = ", ".join(str(s[0] if s else 0) for s in lengths)
        raise PtychoInputError(f"{', '.join(map(repr, keys))}: lengths differ ({sizes}); "
                               "expected one x and y per index", path=path)
    return extra


def _write_extra_root_attrs(path: Path, extra: dict[str, Any]) -> None:
    """Add ``extra`` as root attributes of the product file ``path`` (see
    :func:`_read_extra_root_attrs`)."""
    import h5py

    with h5py.File(path, "a") as h5:
        for key, value in extra.items():
            try:
                h5.attrs[key] = value
            except (TypeError, ValueError) as exc:
                raise PtychoInputError(f"cannot be stored as an HDF5 attribute ({exc})",
                                       key=f"extra_attrs[{key!r}]") from None


def read_product(path: str | os.PathLike) -> PtychodusProduct:
    """Read a Ptychodus product file with ``ptychodus.api.io.load_product``.

    Parameters
    ----------
    path : path-like
        A ``product.h5`` written by Ptychodus or by :func:`write_product`.

    Returns
    -------
    PtychodusProduct
        Probe and object as complex64 (Ptychodus may store complex128); positions float64 in
        metres; unknown root attributes in ``extra_attrs``. Missing optional attributes get
        Ptychodus's defaults (name ``"Unnamed"``, numbers 0, ``far_field`` True, probe pixel
        size = object pixel size); the legacy ``probe_energy_eV`` is accepted, as Ptychodus
        does; an unknown polarization becomes None (Ptychodus logs a warning).

    Raises
    ------
    PtychoInputError
        Without ``ptychodus``; or one line naming the file for a file Ptychodus's loader
        refuses (missing dataset or attribute, not HDF5), position datasets of different
        lengths, or invalid content.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = _existing_file(path, "reading a Ptychodus product")
    from ptychodus.api.io import load_product

    theirs = _load_with(load_product, path, "product file")
    return product_from_ptychodus(theirs, where=path, extra_attrs=_read_extra_root_attrs(path))


def write_product(product: PtychodusProduct, path: str | os.PathLike) -> Path:
    """Write ``product`` with ``ptychodus.api.io.save_product``, atomically.

    The file is written beside ``path`` and moved into place (:func:`ptychopinn.files.atomic_path`),
    so readers never see a partial file. ``extra_attrs`` are then added as root attributes.

    Parameters
    ----------
    product : PtychodusProduct
        The product (its polarization, when set, must be a Ptychodus ``Polarization`` value).
    path : path-like
        Destination, conventionally ``product.h5``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    PtychoInputError
        Without ``ptychodus``, or one line for a product Ptychodus's record cannot hold.
    """
    path = Path(path)
    require_ptychodus("writing a Ptychodus product", path)
    from ptychodus.api.io import save_product

    theirs = product_to_ptychodus(product, where=path)
    with atomic_path(path) as tmp:
        save_product(tmp, theirs)
        if product.extra_attrs:
            _write_extra_root_attrs(tmp, dict(product.extra_attrs))
    logger.info("wrote Ptychodus product %s (%d positions)", path, product.num_positions)
    return path


# ------------------------------------------------------------------------- diffraction files
def read_diffraction_file(
    path: str | os.PathLike, *, frames: slice | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Read an assembled diffraction file (``diffraction.h5``) with
    ``ptychodus.api.io.load_diffraction_data``.

    Parameters
    ----------
    path : path-like
        Written by Ptychodus or by :func:`write_diffraction_file`.
    frames : slice, optional
        Keep only these frames (the whole file is read); default all.

    Returns
    -------
    patterns : numpy.ndarray
        (n, H, W) raw photon counts in the stored dtype (not masked), DC at (H // 2, W // 2).
    indexes : numpy.ndarray
        (n,) int64 scan indexes; pair with the product's ``probe_position_indexes`` by value.
    bad_pixels : numpy.ndarray
        (H, W) bool, True where the detector pixel is invalid.
    attrs : dict
        ``detector_pixel_width_m`` / ``detector_pixel_height_m`` (float, metres) and
        ``probe_photon_counts`` ((n,) float64, or None when not measured).

    Raises
    ------
    PtychoInputError
        Without ``ptychodus``; or one line naming the file for a file Ptychodus's loader
        refuses (e.g. no ``bad_pixels`` or detector pixel size, as written before 1.7) or
        patterns that are not real (n, H, W) counts.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = _existing_file(path, "reading a Ptychodus diffraction file")
    from ptychodus.api.io import load_diffraction_data

    data = _load_with(load_diffraction_data, path, "diffraction file")
    patterns = np.asarray(data.get_patterns())
    if patterns.dtype.kind not in "uif":
        raise PtychoInputError(f"has dtype {patterns.dtype}; expected real photon counts",
                               path=path, key=k.PATTERNS)
    try:
        indexes = np.array(as_int64(data.get_indexes(), k.INDEXES))
    except ValueError as exc:
        raise PtychoInputError(str(exc), path=path) from None
    geometry = data.get_pixel_geometry()
    counts = (np.asarray(data.get_probe_photon_counts(), dtype=np.float64)
              if data.has_measured_probe_photon_counts() else None)
    sel = slice(None) if frames is None else frames
    attrs: dict[str, Any] = {
        k.DETECTOR_PIXEL_WIDTH: float(geometry.width_m),
        k.DETECTOR_PIXEL_HEIGHT: float(geometry.height_m),
        k.POSITION_PHOTON_COUNTS: None if counts is None else counts[sel],
    }
    bad_pixels = np.asarray(data.get_bad_pixels()).astype(bool)
    return patterns[sel], indexes[sel], bad_pixels, attrs


def write_diffraction_file(
    path: str | os.PathLike,
    patterns: np.ndarray,
    *,
    detector_pixel_width_m: float,
    detector_pixel_height_m: float,
    indexes: np.ndarray | None = None,
    bad_pixels: np.ndarray | None = None,
    probe_photon_counts: np.ndarray | None = None,
    compression: str | None = "lzf",
) -> Path:
    """Write an assembled diffraction file with ``ptychodus.api.io.save_diffraction_data``,
    atomically.

    Parameters
    ----------
    path : path-like
        Destination, conventionally ``<batch dir>/diffraction.h5``.
    patterns : numpy.ndarray
        (n, H, W) photon counts (intensities, not amplitudes), DC at (H // 2, W // 2), stored in
        the given dtype.
    detector_pixel_width_m, detector_pixel_height_m : float
        Detector pixel size in metres.
    indexes : numpy.ndarray, optional
        (n,) scan indexes; default ``arange(n)``.
    bad_pixels : numpy.ndarray, optional
        (H, W) bool mask; default all False (Ptychodus requires the dataset).
    probe_photon_counts : numpy.ndarray, optional
        (n,) measured photons per pattern.
    compression : str or None
        HDF5 filter ("lzf", like Ptychodus, or None).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    PtychoInputError
        Without ``ptychodus``, or one line naming the argument for inconsistent input.
    """
    path = Path(path)
    require_ptychodus("writing a Ptychodus diffraction file", path)
    from ptychodus.api.assemble import AssembledDiffractionData
    from ptychodus.api.geometry import PixelGeometry
    from ptychodus.api.io import save_diffraction_data

    patterns = np.asarray(patterns)
    if patterns.ndim != 3 or patterns.dtype.kind not in "uif":
        raise PtychoInputError(f"expected real (n, H, W) intensities, got {patterns.dtype} "
                               f"{patterns.shape}", path=path, key="patterns")
    n = patterns.shape[0]
    try:
        indexes = (np.arange(n, dtype=np.int64) if indexes is None
                   else np.array(as_int64(indexes, k.INDEXES)))
        width = finite(detector_pixel_width_m, k.DETECTOR_PIXEL_WIDTH, positive=True)
        height = finite(detector_pixel_height_m, k.DETECTOR_PIXEL_HEIGHT, positive=True)
        counts = (None if probe_photon_counts is None
                  else np.array(as_float64(probe_photon_counts, k.POSITION_PHOTON_COUNTS)))
    except ValueError as exc:
        raise PtychoInputError(str(exc), path=path) from None
    if indexes.size != n:
        raise PtychoInputError(f"expected {n} entries, got {indexes.size}", path=path,
                               key="indexes")
    if counts is not None and counts.size != n:
        raise PtychoInputError(f"expected {n} entries, got {counts.size}", path=path,
                               key="probe_photon_counts")
    bad = (np.zeros(patterns.shape[1:], dtype=bool) if bad_pixels is None
           else np.asarray(bad_pixels, dtype=bool))
    if bad.shape != patterns.shape[1:]:
        raise PtychoInputError(f"expected shape {patterns.shape[1:]}, got {bad.shape}",
                               path=path, key="bad_pixels")
    try:
        data = AssembledDiffractionData(indexes, patterns,
                                        PixelGeometry(width_m=width, height_m=height), bad,
                                        probe_photon_counts=counts)
    except ValueError as exc:
        raise PtychoInputError(f"ptychodus refused the data ({_one_line(exc)})",
                               path=path) from None
    with atomic_path(path) as tmp:
        save_diffraction_data(tmp, data, compression=compression)
    return path
