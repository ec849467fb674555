"""Backward-compatible import path for :mod:`ptychopinn.io.ptychodus` (the Ptychodus >= 1.7
product, diffraction, geometry and batch-directory formats, split there by concern)."""

from __future__ import annotations

from ptychopinn.io.ptychodus import (
    DIFFRACTION_FILE_NAME,
    LEGACY_PRODUCT_FILE_NAMES,
    PRODUCT_FILE_NAME,
    PtychodusProduct,
    amplitudes_from_counts,
    far_field_pixel_size_m,
    positions_m_to_px,
    positions_px_to_m,
    probe_centre_offset,
    product_from_reconstruction,
    read_batch_directory,
    read_diffraction_file,
    read_product,
    read_ptychodus_npz,
    reconstruction_from_product,
    write_batch_directory,
    write_diffraction_file,
    write_product,
)

__all__ = [
    "DIFFRACTION_FILE_NAME",
    "LEGACY_PRODUCT_FILE_NAMES",
    "PRODUCT_FILE_NAME",
    "PtychodusProduct",
    "amplitudes_from_counts",
    "far_field_pixel_size_m",
    "positions_m_to_px",
    "positions_px_to_m",
    "probe_centre_offset",
    "product_from_reconstruction",
    "read_batch_directory",
    "read_diffraction_file",
    "read_product",
    "read_ptychodus_npz",
    "reconstruction_from_product",
    "write_batch_directory",
    "write_diffraction_file",
    "write_product",
]
