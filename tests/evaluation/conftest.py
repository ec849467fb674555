"""Fixtures for the evaluation tests."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi


@pytest.fixture
def rng() -> np.random.Generator:
    """Seeded generator, fresh for every test."""
    return np.random.default_rng(20240607)


def smooth_image(
    rng: np.random.Generator, shape: tuple[int, int], sigma: float = 2.0
) -> np.ndarray:
    """Smooth random image with zero mean and unit standard deviation, float64."""
    img = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (img - img.mean()) / img.std()


def smooth_object(
    rng: np.random.Generator, shape: tuple[int, int], sigma: float = 2.0
) -> np.ndarray:
    """Complex test object: amplitude in ~[0.5, 1.1], phase in ~[-1.5, 1.5] rad, complex128."""
    amp = 0.8 + 0.1 * smooth_image(rng, shape, sigma)
    phase = 0.5 * smooth_image(rng, shape, sigma)
    return amp * np.exp(1j * phase)
