"""Ptychodus (>= 1.7) file formats: products, diffraction files, batch directories, NPZ export.

One module per concern: :mod:`~ptychopinn.io.ptychodus.files` (``product.h5`` and
``diffraction.h5``, read and written through the ``ptychodus`` package),
:mod:`~ptychopinn.io.ptychodus.container` (the :class:`PtychodusProduct` record),
:mod:`~ptychopinn.io.ptychodus.product` (products <-> ptychopinn arrays),
:mod:`~ptychopinn.io.ptychodus.geometry` (position conventions, far-field sampling),
:mod:`~ptychopinn.io.ptychodus.batch` (batch input directories),
:mod:`~ptychopinn.io.ptychodus.npz_export` (Ptychodus's PtychoPINN NPZ) and
:mod:`~ptychopinn.io.ptychodus.dataset` (:func:`dataset_from_product`, the one conversion to a
:class:`~ptychopinn.data.container.PtychoData`).

Product and diffraction files are read and written only through Ptychodus's own
``ptychodus.api.io`` (what its HDF5 file plugins call), so a file Ptychodus refuses is refused
here too, in one line naming the file. Without the ``ptychodus`` package that I/O is refused in
one line naming the extra (``pip install 'ptychopinn[ptychodus]'``); the geometry functions,
:class:`PtychodusProduct` and :func:`read_ptychodus_npz` need no Ptychodus. Importing this package
never imports ``ptychodus``. The layouts below are those of the ``ptychodus`` 1.7.0 sources
(``ptychodus.api.io``):

Product HDF5 (``load_product`` / ``save_product``)
    A flat file. Root attributes ``name``, ``comments``, ``detector_object_distance_m``,
    ``photon_energy_eV`` (legacy spelling ``probe_energy_eV`` accepted on read),
    ``probe_photon_count``, ``exposure_time_s``, ``mass_attenuation_m2_per_kg``,
    ``tomography_angle_deg``, ``focus_object_distance_m``, ``tilt_angle_deg``, ``far_field``
    (bool) and, when set, ``polarization`` (str). Root datasets ``probe_position_indexes`` (P,)
    int, ``probe_position_x_m`` / ``probe_position_y_m`` (P,) float64, optional
    ``probe_photon_counts`` (P,) float64, ``probe`` complex (opr, modes, h, w) with attributes
    ``pixel_width_m`` / ``pixel_height_m``, optional ``opr_weights`` (P, opr) float, ``object``
    complex (layers, H, W) with attributes ``center_x_m``, ``center_y_m``, ``pixel_width_m``,
    ``pixel_height_m``, ``object_layer_spacing_m`` (layers - 1,) float64 -- written by Ptychodus
    even for a single layer, as an empty array -- and ``loss_epochs`` / ``loss_values``.

Assembled diffraction file ``diffraction.h5`` (``load_diffraction_data``)
    ``patterns`` (n, H, W) raw photon counts (detector dtype, DC at pixel (H//2, W//2) because the
    crop window starts at ``beam_center - size // 2``) with attributes ``detector_pixel_width_m`` /
    ``detector_pixel_height_m``; ``indexes`` (n,) scan indexes; ``bad_pixels`` (H, W) bool;
    optional ``probe_photon_counts`` (n,). Compressed with LZF by Ptychodus.

Batch input directory (``ModelCore.batch_mode_execute``, ``StandardFileLayout``)
    ``<dir>/diffraction.h5`` + ``<dir>/product.h5`` (+ optional ``settings.ini``,
    ``model<ext>``, ``fluorescence.h5``); the output directory receives ``product.h5``.
    Ptychodus releases before 1.7 used ``product-in.h5`` / ``product-out.h5``; the reader accepts
    ``product-in.h5`` as a fallback.

PtychoPINN training NPZ (``save_ptychopinn_training_data``)
    ``xcoords``, ``ycoords``, ``xcoords_start``, ``ycoords_start`` (object-pixel positions by the
    formula below), ``diff3d`` (n, H, W) **intensities** in the source dtype (bad pixels inpainted
    or zeroed), ``bad_pixels`` (H, W) bool, ``probeGuess`` (modes, h, w) complex,
    ``objectGuess`` (H, W) complex (layer 0), ``scan_index`` (n,) zeros. Nothing in the file says
    that ``diff3d`` holds intensities, hence :func:`read_ptychodus_npz` refuses to guess.

Position conventions
--------------------
Ptychodus stores probe positions in metres; a position is where the probe array's geometric
centre sits. Its object-pixel coordinate is
(``ObjectGeometry.map_probe_positions_to_object_x_px``)::

    x_px = (x_m - center_x_m) / pixel_width_m + (W - 1) / 2        (same for y with H)

and a probe of width ``w`` placed there covers object columns starting at
``x_px - (w - 1) / 2`` (``ProbeGeometry.resolve_patch_bounds``): the probe-array index
``(w - 1) / 2`` lands on ``x_px``.

ptychopinn's convention (SPEC section 2) is that a position is the object pixel under probe-array
index ``w // 2`` (the patch centre, like the DC pixel). For odd sizes both agree. For even sizes
they differ by half a pixel: the same patch (the same object pixels multiplied by the same probe
pixels) has ``ours = ptychodus + (w // 2 - (w - 1) / 2) = ptychodus + 0.5``. Every function here
that converts to or from ptychopinn positions (``*_rc``) takes the probe shape into account;
:func:`positions_m_to_px` / :func:`positions_px_to_m` apply the plain formula above unless given
``probe_shape``. Ptychodus's own PtychoPINN export applies no such shift.
"""

from __future__ import annotations

from ptychopinn.io.ptychodus.batch import (
    DIFFRACTION_FILE_NAME,
    LEGACY_PRODUCT_FILE_NAMES,
    PRODUCT_FILE_NAME,
    read_batch_directory,
    write_batch_directory,
)
from ptychopinn.io.ptychodus.container import PtychodusProduct
from ptychopinn.io.ptychodus.dataset import (
    amplitudes_from_counts,
    convert_ptychodus,
    dataset_from_batch_directory,
    dataset_from_product,
    dataset_from_ptychodus_npz,
)
from ptychopinn.io.ptychodus.files import (
    product_from_ptychodus,
    product_to_ptychodus,
    read_diffraction_file,
    read_product,
    require_ptychodus,
    write_diffraction_file,
    write_product,
)
from ptychopinn.io.ptychodus.geometry import (
    far_field_pixel_size_m,
    positions_m_to_px,
    positions_px_to_m,
    probe_centre_offset,
)
from ptychopinn.io.ptychodus.npz_export import read_ptychodus_npz
from ptychopinn.io.ptychodus.product import (
    product_from_reconstruction,
    reconstruction_from_product,
)

__all__ = [
    "DIFFRACTION_FILE_NAME",
    "LEGACY_PRODUCT_FILE_NAMES",
    "PRODUCT_FILE_NAME",
    "PtychodusProduct",
    "amplitudes_from_counts",
    "convert_ptychodus",
    "dataset_from_batch_directory",
    "dataset_from_product",
    "dataset_from_ptychodus_npz",
    "far_field_pixel_size_m",
    "positions_m_to_px",
    "positions_px_to_m",
    "probe_centre_offset",
    "product_from_ptychodus",
    "product_from_reconstruction",
    "product_to_ptychodus",
    "read_batch_directory",
    "read_diffraction_file",
    "read_product",
    "read_ptychodus_npz",
    "reconstruction_from_product",
    "require_ptychodus",
    "write_batch_directory",
    "write_diffraction_file",
    "write_product",
]
