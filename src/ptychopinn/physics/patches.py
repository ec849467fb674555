"""Sub-pixel patch extraction and placement (an adjoint pair).

Convention (SPEC §3): a patch of even size ``N`` centred at integer position ``(y, x)`` covers
object rows ``y - N/2 … y + N/2 - 1`` and columns ``x - N/2 … x + N/2 - 1``; its centre is array
index ``N/2``. Non-integer positions interpolate bilinearly. Pixels outside the object read as 0
(extraction) and are dropped (placement), so the two operators stay exact adjoints.
"""

from __future__ import annotations

import torch
from torch import Tensor


def bilinear_indices(
    positions: Tensor, n: int, shape: tuple[int, int]
) -> tuple[Tensor, Tensor, Tensor]:
    """Flat indices, validity mask and bilinear weights of the (N+1, N+1) integer support.

    Parameters
    ----------
    positions : Tensor of shape (K, 2), float
        Patch centres (row, col) in object pixels.
    n : int
        Patch size N.
    shape : (H, W)
        Object shape.

    Returns
    -------
    flat : Tensor (K, N+1, N+1) int64
        Flat object index of each support pixel (clamped to a valid index).
    valid : Tensor (K, N+1, N+1) bool
        Whether the support pixel lies inside the object.
    frac : Tensor (K, 2)
        Fractional parts (fy, fx) in [0, 1).
    """
    h, w = shape
    pos = positions.to(torch.float64)
    base = torch.floor(pos)
    frac = pos - base
    start = base.to(torch.int64) - n // 2  # (K, 2) top-left integer corner
    ar = torch.arange(n + 1, device=positions.device)
    rows = start[:, 0, None] + ar[None, :]  # (K, N+1)
    cols = start[:, 1, None] + ar[None, :]
    vr = (rows >= 0) & (rows < h)
    vc = (cols >= 0) & (cols < w)
    valid = vr[:, :, None] & vc[:, None, :]
    flat = rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]
    return flat, valid, frac


class PatchGeometry:
    """Bilinear geometry of patches on a canvas, computed once, reused by extract and place.

    The unrolled network cuts and places the same patches K times per forward pass; computing
    indices, masks and weights once removes most of the per-step cost. :meth:`place` is the
    package's one bilinear splat (``place_patches``, ``Stitcher.add`` and the pty-chi coverage
    map all use it).

    Parameters
    ----------
    positions : Tensor of shape (K, 2) or (B, K, 2), float
        Patch centres (row, col); with a batch dimension each batch item has its own canvas.
    n : int
        Patch size N (even).
    shape : (H, W)
        Canvas shape.
    """

    def __init__(self, positions: Tensor, n: int, shape: tuple[int, int]):
        h, w = shape
        self.n, self.shape = n, (h, w)
        self.batch = positions.shape[0] if positions.ndim == 3 else None
        k = positions.shape[-2]
        flat, valid, self.frac = bilinear_indices(positions.reshape(-1, 2), n, (h, w))
        if self.batch is not None:
            offs = torch.arange(self.batch, device=positions.device).repeat_interleave(k)
            flat = flat + (offs * (h * w))[:, None, None]
        self.flat = flat
        self.valid = None if bool(valid.all()) else valid  # None: every support pixel inside
        self._fracs_by_dtype: dict[torch.dtype, tuple[Tensor, Tensor]] = {}

    def _mask(self, x: Tensor) -> Tensor:
        return x if self.valid is None else x * self.valid.to(x.dtype)

    def extract(self, obj: Tensor) -> Tensor:
        """(H, W) or (B, H, W) canvas -> (K, N, N) or (B, K, N, N) patches."""
        n = self.n
        support = self._mask(obj.reshape(-1)[self.flat])  # (K, N+1, N+1)
        fy, fx = self._fracs(obj.dtype)
        r = torch.view_as_real(support) if support.is_complex() else support[..., None]
        # separable bilinear interpolation: two lerps on real views (complex × real weights
        # would be promoted to a full complex product)
        rows = torch.lerp(r[:, :n], r[:, 1:], fy)  # (K, N, N+1, 2|1)
        out = torch.lerp(rows[:, :, :n], rows[:, :, 1:], fx)
        out = torch.view_as_complex(out) if support.is_complex() else out[..., 0]
        return out if self.batch is None else out.reshape(self.batch, -1, n, n)

    def _fracs(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Fractional parts (fy, fx), each (K, 1, 1, 1), in the real dtype matching ``dtype``."""
        if dtype not in self._fracs_by_dtype:
            rdtype = torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32
            f = self.frac.to(rdtype)
            self._fracs_by_dtype[dtype] = (f[:, 0, None, None, None], f[:, 1, None, None, None])
        return self._fracs_by_dtype[dtype]

    def place(self, patches: Tensor, out: Tensor | None = None) -> Tensor:
        """Adjoint of :meth:`extract`: patches added into (H, W) or (B, H, W) canvases.

        Each patch is spread onto its (N+1, N+1) integer support and index-added, so the cost
        is O(K N²) whatever the canvas size. ``out`` (contiguous, the patches' dtype): add
        into this canvas in place and return it, instead of a new zero canvas.
        """
        n = self.n
        h, w = self.shape
        p = patches.reshape(-1, n, n)
        fy, fx = self._fracs(p.dtype)
        cplx = p.is_complex()
        r = torch.view_as_real(p) if cplx else p[..., None]  # (K, N, N, 2|1)
        # adjoint of the two lerps, in reverse order (columns, then rows): with the input
        # zero-padded by one on both sides, support[j] = (1 - f)·x[j] + f·x[j - 1] is a lerp
        rp = torch.nn.functional.pad(r, (0, 0, 1, 1))  # (K, N, N+2, d)
        cols = torch.lerp(rp[:, :, 1:], rp[:, :, :-1], fx)  # (K, N, N+1, d)
        cp = torch.nn.functional.pad(cols, (0, 0, 0, 0, 1, 1))  # (K, N+2, N+1, d)
        sup = torch.lerp(cp[:, 1:], cp[:, :-1], fy)  # (K, N+1, N+1, d)
        if self.valid is not None:
            sup = sup * self.valid[..., None].to(sup.dtype)
        # index_add on the complex view: a (size, 2) real target takes a slow scatter path
        sup = torch.view_as_complex(sup) if cplx else sup[..., 0]
        if out is not None:
            out.view(-1).index_add_(0, self.flat.reshape(-1), sup.reshape(-1))
            return out
        size = h * w * (self.batch or 1)
        out = p.new_zeros(size).index_add_(0, self.flat.reshape(-1), sup.reshape(-1))
        return out.reshape(h, w) if self.batch is None else out.reshape(self.batch, h, w)


def extract_patches(obj: Tensor, positions: Tensor, n: int) -> Tensor:
    """Cut N×N patches centred at ``positions`` out of ``obj``.

    Parameters
    ----------
    obj : Tensor of shape (H, W) or (B, H, W), real or complex
        Object. With a batch dimension, ``positions`` must be (B, K, 2) and each batch item is
        cut from its own object.
    positions : Tensor of shape (K, 2) or (B, K, 2), float
        Patch centres (row, col) in object pixels.
    n : int
        Patch size N (even).

    Returns
    -------
    Tensor of shape (K, N, N) or (B, K, N, N)
        The patches, same dtype as ``obj``.

    Examples
    --------
    >>> o = torch.arange(16.0).reshape(4, 4)
    >>> extract_patches(o, torch.tensor([[2.0, 2.0]]), 2)[0]
    tensor([[ 5.,  6.],
            [ 9., 10.]])
    """
    return PatchGeometry(positions, n, tuple(obj.shape[-2:])).extract(obj)


def place_patches(patches: Tensor, positions: Tensor, shape: tuple[int, int]) -> Tensor:
    """Add N×N patches into a canvas at ``positions``: the adjoint of :func:`extract_patches`.

    Parameters
    ----------
    patches : Tensor of shape (K, N, N) or (B, K, N, N)
        Patch values.
    positions : Tensor of shape (K, 2) or (B, K, 2), float
        Patch centres (row, col).
    shape : (H, W)
        Canvas shape.

    Returns
    -------
    Tensor of shape (H, W) or (B, H, W)
        Summed contributions (no normalisation; divide by the placed weights to stitch).
    """
    return PatchGeometry(positions, patches.shape[-1], shape).place(patches)


def shift_image(img: Tensor, t: Tensor | tuple[float, float]) -> Tensor:
    """Move image content by +t = (drow, dcol) pixels with a Fourier phase ramp (periodic).

    Exact for integer ``t`` (a circular roll). Parameters: img (…, H, W) real or complex.
    """
    t = torch.as_tensor(t, dtype=torch.float64)
    h, w = img.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=torch.float64, device=img.device)
    fx = torch.fft.fftfreq(w, dtype=torch.float64, device=img.device)
    ramp = torch.exp(-2j * torch.pi * (fy[:, None] * t[0] + fx[None, :] * t[1]))
    cdtype = torch.complex128 if img.dtype in (torch.float64, torch.complex128) else torch.complex64
    out = torch.fft.ifft2(torch.fft.fft2(img.to(cdtype)) * ramp.to(cdtype))
    return out if img.is_complex() else out.real.to(img.dtype)
