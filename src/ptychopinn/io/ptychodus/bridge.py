"""Ptychodus files through the ``ptychodus`` package's own API (``ptychodus.api.io``).

:func:`~ptychopinn.io.ptychodus.product.read_product` /
:func:`~ptychopinn.io.ptychodus.product.write_product` and their diffraction-file siblings call
these functions when ``backend`` is ``"ptychodus"``, or ``"auto"`` (the default) and the package
is installed; ``"h5py"`` always uses the plain implementation. Ptychodus is imported only when
one of these functions runs. Root attributes that Ptychodus's records do not model (a product's
unknown attributes, a diffraction file's extra attributes) are read and written with h5py, so
both back ends return the same record.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ptychopinn.files import atomic_path
from ptychopinn.io.ptychodus import _keys as k
from ptychopinn.io.ptychodus._common import as_int64, decode, finite
from ptychopinn.io.ptychodus.container import PtychodusProduct

__all__ = ["Backend", "ptychodus_installed", "product_from_ptychodus", "product_to_ptychodus",
           "read_diffraction_with_ptychodus", "read_product_with_ptychodus", "use_ptychodus",
           "write_diffraction_with_ptychodus", "write_product_with_ptychodus"]

#: ``"auto"``: Ptychodus's API when installed, else h5py; ``"ptychodus"``: require it;
#: ``"h5py"``: the plain implementation.
Backend = Literal["auto", "ptychodus", "h5py"]

#: Exceptions Ptychodus's loaders raise for a file they cannot read (missing key, bad value).
READ_ERRORS = (KeyError, ValueError, TypeError, OSError, AttributeError)


def ptychodus_installed() -> bool:
    """Whether the ``ptychodus`` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("ptychodus") is not None


def use_ptychodus(backend: Backend) -> bool:
    """Resolve ``backend`` to "use Ptychodus's API" (True) or "use h5py" (False)."""
    if backend not in ("auto", "ptychodus", "h5py"):
        raise ValueError(f"backend must be 'auto', 'ptychodus' or 'h5py', got {backend!r}")
    if backend == "h5py":
        return False
    if backend == "ptychodus" and not ptychodus_installed():
        raise ImportError("backend='ptychodus' needs the ptychodus package: "
                          "pip install ptychopinn[ptychodus]")
    return ptychodus_installed()


# ------------------------------------------------------------------------------ products
def product_from_ptychodus(product: Any) -> PtychodusProduct:
    """Convert a ``ptychodus.api.product.Product`` to our numpy :class:`PtychodusProduct`.

    Parameters
    ----------
    product : ptychodus.api.product.Product
        Needs object and probe pixel geometries and an object centre.

    Returns
    -------
    PtychodusProduct
        Same fields (positions in metres, (opr, modes, h, w) probe, (layers, H, W) object,
        metadata, losses), validated, complex64.

    Raises
    ------
    ValueError
        One line when a field is missing or invalid (e.g. an empty object).
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
        )
    except ValueError as exc:
        raise ValueError(f"Ptychodus product {meta.name!r}: {exc}") from None


def product_to_ptychodus(product: PtychodusProduct) -> Any:
    """Our :class:`PtychodusProduct` as a ``ptychodus.api.product.Product`` (arrays copied).

    ``extra_attrs`` have no place in Ptychodus's record and are not carried.
    """
    from ptychodus.api.diffraction import Polarization
    from ptychodus.api.geometry import PixelGeometry
    from ptychodus.api.object import Object, ObjectCenter
    from ptychodus.api.probe import ProbeSequence
    from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
    from ptychodus.api.product import LossValue, Product, ProductMetadata

    counts = product.probe_photon_counts
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
        polarization=None if product.polarization is None
        else Polarization(product.polarization),
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


def _unmodelled_root_attrs(path: Path) -> tuple[dict[str, Any], str | None]:
    """(unknown root attributes, raw polarization) of a product file, and a check that the
    position datasets have equal lengths (Ptychodus's loader zips them, dropping the excess)."""
    import h5py

    with h5py.File(path, "r") as h5:
        extra = {key: decode(h5.attrs[key]) for key in h5.attrs
                 if key not in k.KNOWN_ROOT_ATTRS}
        raw = h5.attrs.get(k.POLARIZATION)
        lengths = [h5[key].shape for key in (k.POSITION_INDEXES, k.POSITION_X, k.POSITION_Y)]
    if len(set(lengths)) != 1:
        raise ValueError(f"position datasets have shapes {lengths}; expected equal lengths")
    return extra, None if raw is None else str(decode(raw))


def read_product_with_ptychodus(path: str | os.PathLike) -> PtychodusProduct:
    """Read a product file with ``ptychodus.api.io.load_product``.

    Raises what Ptychodus's loader raises for a file it cannot read (see :data:`READ_ERRORS`).
    Unknown root attributes and a polarization outside Ptychodus's enumeration (which its
    loader drops) are read with h5py.
    """
    from dataclasses import replace

    from ptychodus.api.io import load_product

    path = Path(path)
    extra, polarization = _unmodelled_root_attrs(path)
    product = product_from_ptychodus(load_product(path))
    return replace(product, extra_attrs=extra, polarization=polarization)


def write_product_with_ptychodus(product: PtychodusProduct, path: str | os.PathLike) -> Path:
    """Write ``product`` with ``ptychodus.api.io.save_product``, atomically (``extra_attrs``
    are then added as root attributes)."""
    import h5py
    from ptychodus.api.io import save_product

    path = Path(path)
    with atomic_path(path) as tmp:
        save_product(tmp, product_to_ptychodus(product))
        if product.extra_attrs:
            with h5py.File(tmp, "a") as h5:
                for key, value in product.extra_attrs.items():
                    h5.attrs[key] = value
    return path


# ------------------------------------------------------------------------- diffraction files
def read_diffraction_with_ptychodus(
    path: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Read ``diffraction.h5`` with ``ptychodus.api.io.load_diffraction_data``.

    Same return value as :func:`~ptychopinn.io.ptychodus.diffraction.read_diffraction_file`
    (attributes other than the detector pixel size are read with h5py). Ptychodus's loader
    needs ``bad_pixels`` and the detector pixel size; it raises for a file without them.
    """
    import h5py
    from ptychodus.api.io import load_diffraction_data

    path = Path(path)
    data = load_diffraction_data(path)
    patterns = np.array(data.get_patterns())
    if patterns.ndim != 3 or patterns.dtype.kind not in "uif":
        raise ValueError(f"{path}: {k.PATTERNS!r} is {patterns.dtype} {patterns.shape}; "
                         "expected real (n, H, W) photon counts")
    indexes = np.array(as_int64(data.get_indexes(), k.INDEXES))
    bad_pixels = np.asarray(data.get_bad_pixels()).astype(bool)
    geometry = data.get_pixel_geometry()
    with h5py.File(path, "r") as h5:
        attrs: dict[str, Any] = {key: decode(h5.attrs[key]) for key in h5.attrs}
        for key in h5[k.PATTERNS].attrs:
            attrs[key] = decode(h5[k.PATTERNS].attrs[key])
    attrs[k.DETECTOR_PIXEL_WIDTH] = float(geometry.width_m)
    attrs[k.DETECTOR_PIXEL_HEIGHT] = float(geometry.height_m)
    attrs[k.POSITION_PHOTON_COUNTS] = (
        np.asarray(data.get_probe_photon_counts(), dtype=np.float64)
        if data.has_measured_probe_photon_counts() else None)
    return patterns, indexes, bad_pixels, attrs


def write_diffraction_with_ptychodus(
    path: str | os.PathLike,
    patterns: np.ndarray,
    *,
    detector_pixel_width_m: float,
    detector_pixel_height_m: float,
    indexes: np.ndarray,
    bad_pixels: np.ndarray,
    probe_photon_counts: np.ndarray | None,
    compression: str | None,
) -> Path:
    """Write ``diffraction.h5`` with ``ptychodus.api.io.save_diffraction_data``, atomically.

    Inputs are validated by the caller
    (:func:`~ptychopinn.io.ptychodus.diffraction.write_diffraction_file`).
    """
    from ptychodus.api.assemble import AssembledDiffractionData
    from ptychodus.api.geometry import PixelGeometry
    from ptychodus.api.io import save_diffraction_data

    path = Path(path)
    data = AssembledDiffractionData(
        indexes,
        patterns,
        PixelGeometry(width_m=finite(detector_pixel_width_m, k.DETECTOR_PIXEL_WIDTH,
                                     positive=True),
                      height_m=finite(detector_pixel_height_m, k.DETECTOR_PIXEL_HEIGHT,
                                      positive=True)),
        bad_pixels,
        probe_photon_counts=probe_photon_counts,
    )
    with atomic_path(path) as tmp:
        save_diffraction_data(tmp, data, compression=compression)
    return path
