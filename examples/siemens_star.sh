#!/usr/bin/env bash
# Siemens star: PtychoPINN vs pty-chi LSQML on real far-field data (issue #5).
#
# Data: tike's test set `siemens-star-small.npz.bz2` (APS Velociprobe scan, 516 patterns of
# 128x128, positions in pixels, BSD-3, from github.com/AdvancedPhotonSource/tike tests/data/).
# Its probe is an analytic guess, so LSQML refines it first and the PINN trains with that probe.
#
#   1. convert the tike file to our dataset NPZ (sqrt counts, DC centred, patch-centre positions)
#   2. pty-chi LSQML, 100 epochs, probe refinement -> lsqml/{reconstruction.npz, probe.npz}
#   3. train the PINN (gridsize 2, N=128, unsupervised, whole scan) with LSQML's probe
#      (`train --probe`; the bundle keeps that probe, so `infer` needs no --probe), and the unrolled
#      physics network (`--model unrolled`, its recommended grouping) the same way
#   4. infer on the same scan -> pinn/reconstruction.npz, unrolled/reconstruction.npz
#   5. issue #16: the unrolled network from tike's analytic probe guess (not LSQML's), once with the
#      probe held fixed and once learning it (`train --refine-probe`: fixed power, circular support;
#      the refined probe -> unrolled_refprobe_run/probe.npz), and the LSQML-probe network adapted
#      for ADAPT_MINUTES to the scan (`infer --adapt-minutes`)
#   6. issue #21: the shipped general model (no training on the star) with LSQML's probe, plain
#      and adapted for GENERAL_ADAPT_MINUTES (1)
#   7. issue #23: the shipped general model from tike's analytic probe (no LSQML probe anywhere):
#      scan refinement of the probe (`infer --refine-probe`: 3 rounds of the network's
#      reconstruction + joint gradient steps on object and probe) -> general_scan/probe.npz, then
#      GENERAL_ADAPT_MINUTES (1) of adaptation with that probe
#      (refining the positions too let their scale drift 5 % with the free probe: 0.42, BENCHMARKS)
#   8. compare all against the LSQML reconstruction -> compare/{metrics.csv,frc.csv,comparison.png}
#
# Run from the repository root (needs pty-chi: pip install 'ptychopinn[ptychi]'):
#   bash examples/siemens_star.sh
#   OUT=/tmp/star MINUTES=8 ADAPT_MINUTES=3 STAR=path/to/siemens-star-small.npz.bz2 bash examples/siemens_star.sh
# Steps whose outputs exist are skipped, so an interrupted run can be restarted.
# On a 2-core CPU: LSQML 100 epochs takes about 5-50 minutes (depending on load), training MINUTES.
set -euo pipefail

OUT=${OUT:-star_out}
MINUTES=${MINUTES:-8}
ADAPT_MINUTES=${ADAPT_MINUTES:-3}
STAR=${STAR:-../shared/data/real/tike-siemens-star/siemens-star-small.npz.bz2}

if [[ ! -f "$STAR" ]]; then
    echo "siemens_star.sh: $STAR not found; set STAR=path/to/siemens-star-small.npz.bz2" >&2
    exit 2
fi
mkdir -p "$OUT"

# 1. tike -> dataset
[[ -f "$OUT/star.npz" ]] ||
    ptychopinn convert "$STAR" --format tike --out "$OUT/star.npz"

# 2. iterative reference with probe refinement (writes reconstruction.npz and probe.npz)
[[ -f "$OUT/lsqml/probe.npz" ]] ||
    ptychopinn iterative --data "$OUT/star.npz" --out "$OUT/lsqml" \
        --algorithm lsqml --refine-probe --epochs 100

# 3. PINN, unsupervised, on the whole scan, with the refined probe; stops after MINUTES
[[ -f "$OUT/pinn_run/model.zip" ]] ||
    ptychopinn train --data "$OUT/star.npz" --probe "$OUT/lsqml/probe.npz" \
        --out "$OUT/pinn_run" --model pinn --gridsize 2 --epochs 100000 --max-minutes "$MINUTES"

[[ -f "$OUT/unrolled_run/model.zip" ]] ||
    ptychopinn train --data "$OUT/star.npz" --probe "$OUT/lsqml/probe.npz" \
        --out "$OUT/unrolled_run" --model unrolled --epochs 100000 --max-minutes "$MINUTES"

# 4. PINN reconstructions of the same scan
ptychopinn infer --model "$OUT/pinn_run" --data "$OUT/star.npz" --out "$OUT/pinn"
ptychopinn infer --model "$OUT/unrolled_run" --data "$OUT/star.npz" --out "$OUT/unrolled"

# 5. from tike's analytic probe: held fixed, and refined during training; then adaptation
[[ -f "$OUT/unrolled_analytic_run/model.zip" ]] ||
    ptychopinn train --data "$OUT/star.npz" --out "$OUT/unrolled_analytic_run" --model unrolled \
        --epochs 100000 --max-minutes "$MINUTES"
[[ -f "$OUT/unrolled_refprobe_run/model.zip" ]] ||
    ptychopinn train --data "$OUT/star.npz" --out "$OUT/unrolled_refprobe_run" --model unrolled \
        --refine-probe --probe-warmup-epochs 0 --epochs 100000 --max-minutes "$MINUTES"
ptychopinn infer --model "$OUT/unrolled_analytic_run" --data "$OUT/star.npz" \
    --out "$OUT/unrolled_analytic"
ptychopinn infer --model "$OUT/unrolled_refprobe_run" --data "$OUT/star.npz" \
    --out "$OUT/unrolled_refprobe"
[[ -f "$OUT/unrolled_adapt/reconstruction.npz" ]] ||
    ptychopinn infer --model "$OUT/unrolled_run" --data "$OUT/star.npz" \
        --out "$OUT/unrolled_adapt" --adapt-minutes "$ADAPT_MINUTES"

# 6. issue #21: the general model shipped with the package (trained on 64-px synthetic scans, its
#    canvas weights rebuilt for 128-px patterns), no training on the star, given LSQML's probe;
#    plain (with the bundle's 20 data-consistency steps on the whole stitched object: 0.914
#    against LSQML-100, 0.767 with --object-steps 0), then adapted to the scan for
#    GENERAL_ADAPT_MINUTES (0.907)
[[ -f "$OUT/general/reconstruction.npz" ]] ||
    ptychopinn infer --data "$OUT/star.npz" --probe "$OUT/lsqml/probe.npz" --out "$OUT/general"
[[ -f "$OUT/general_adapt/reconstruction.npz" ]] ||
    ptychopinn infer --data "$OUT/star.npz" --probe "$OUT/lsqml/probe.npz" \
        --out "$OUT/general_adapt" --adapt-minutes "${GENERAL_ADAPT_MINUTES:-1}"

# 7. issue #23: from tike's analytic probe, the general model refines probe and positions itself
[[ -f "$OUT/general_scan/reconstruction.npz" ]] ||
    ptychopinn infer --data "$OUT/star.npz" --out "$OUT/general_scan" --refine-probe \
        --adapt-minutes "${GENERAL_ADAPT_MINUTES:-1}"

# 8. metrics, FRC and figure, with LSQML as the reference
ptychopinn compare --ref "$OUT/lsqml/reconstruction.npz" \
    --recon PtychoPINN-General="$OUT/general" PtychoPINN-General+adapt="$OUT/general_adapt" \
    PtychoPINN-General-analytic-probe+refined="$OUT/general_scan" \
    PtychoPINN="$OUT/pinn" PtychoPINN-Unrolled="$OUT/unrolled" \
    PtychoPINN-Unrolled+adapt="$OUT/unrolled_adapt" \
    PtychoPINN-Unrolled-analytic-probe="$OUT/unrolled_analytic" \
    PtychoPINN-Unrolled-refined-probe="$OUT/unrolled_refprobe" PtyChi-LSQML="$OUT/lsqml" \
    --out "$OUT/compare"

echo "siemens_star.sh: done; see $OUT/compare/comparison.png and $OUT/compare/metrics.csv"
