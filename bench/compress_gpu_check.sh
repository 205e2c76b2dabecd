#!/usr/bin/env bash
# GPU check for the compression stage (run on a machine with an NVIDIA GPU; bench/gpu_check.sh calls it).
# 1. PLAS on CUDA: the result is a permutation, sorts as smooth as on the CPU (VAD within 5%), and its time;
# 2. the compress job with --device cuda on the donut and the guitar (k-means and PLAS on CUDA, the fidelity
#    render through gsplat): it succeeds, its .sog decodes, its size and render PSNR match the CPU run's
#    within 2% and 0.5 dB, and the streamed scene, .spz and .glb are written.
# Expects the datasets at ./datasets (or SPACEPORT_DATASETS). A few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATASETS=${SPACEPORT_DATASETS:-$PWD/datasets}
OUT=${OUT:-$PWD/gpu-check-out}/compress
mkdir -p "$OUT"

echo "== PLAS on CUDA against the CPU (random 512x512x3, seed 11)"
$PY - <<'PY'
import time, torch
from spaceport_compress.plas import neighbour_variance, sort_with_plas
grid = torch.randint(0, 256, (3, 512, 512), generator=torch.Generator().manual_seed(11)).float()
results = {}
for device in ("cpu", "cuda"):
    start = time.perf_counter()
    sorted_grid, indices = sort_with_plas(grid.to(device), min_block_size=4, improvement_break=1e-4, seed=11)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    flat = indices.flatten().cpu()
    assert torch.equal(flat.sort().values, torch.arange(flat.numel())), "not a permutation"
    assert torch.equal(sorted_grid.cpu().flatten(1), grid.flatten(1)[:, flat])
    results[device] = (neighbour_variance(sorted_grid.cpu()), seconds)
    print(f"{device}: VAD {results[device][0]:.4f} in {seconds:.1f} s")
assert results["cuda"][0] <= 1.05 * results["cpu"][0], results
print("PLAS on CUDA: OK")
PY

for splat in v3dg_donut playcanvas_guitar; do
  echo "== spaceport compress --device cuda: $splat"
  $PY -m spaceport.cli compress "$DATASETS/splats/$splat.ply" "$OUT/$splat-cuda" --device cuda
  $PY -m spaceport.cli compress "$DATASETS/splats/$splat.ply" "$OUT/$splat-cpu" --device cpu
  $PY - "$OUT/$splat-cuda" "$OUT/$splat-cpu" <<'PY'
import json, sys
from pathlib import Path
cuda, cpu = (json.loads((Path(p) / "metrics.json").read_text()) for p in sys.argv[1:3])
for name in ("scene.sog", "lod/lod-meta.json", "scene.spz", "scene.glb"):
    assert (Path(sys.argv[1]) / name).is_file(), name
print(f"cuda: {cuda['output_bytes']} B, {cuda['psnr']:.2f} dB, {cuda['wall_time_s']:.1f} s, phases {cuda['timings_s']}")
print(f"cpu:  {cpu['output_bytes']} B, {cpu['psnr']:.2f} dB, {cpu['wall_time_s']:.1f} s")
assert abs(cuda["output_bytes"] / cpu["output_bytes"] - 1) < 0.02, "sizes differ by more than 2%"
assert cuda["psnr"] > cpu["psnr"] - 0.5, "CUDA run renders more than 0.5 dB worse"
print("compress on CUDA: OK")
PY
done
