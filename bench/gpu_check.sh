#!/usr/bin/env bash
# GPU check for the training stage (run on a machine with an NVIDIA GPU, e.g. through the device tool).
# 1. parity: trains the generated sample briefly on CUDA (gsplat), then renders the same Gaussians with
#    both backends and reports the PSNR of the CPU renders against the CUDA renders;
# 2. the CUDA rasteriser tests (classic and antialiased against the CPU rasteriser);
# 3. the compression stage on CUDA (bench/compress_gpu_check.sh: PLAS on CUDA, the compress job on CUDA);
# 4. the sky, exposure and antialiasing settings on CUDA: a generated oblique scene with a sky, quick preset;
# 5. fern 1/4 with gsplat, preset default (the 30k-step schedule), within a 150 s budget;
# 6. blocks: a generated wide flight trained in 2 blocks and merged, against whole training (PSNR).
# Expects the datasets copied into the tree at ./datasets (or SPACEPORT_DATASETS). Sized for one device call
# (10 minutes at most, a 15-minute session budget in all): the cheap CUDA paths first, the two budgeted runs last.
# Its time has never been measured: no session has had a GPU yet.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATASETS=${SPACEPORT_DATASETS:-$PWD/datasets}
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch, gsplat; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gsplat', gsplat.__version__)"

echo "== parity: CPU rasteriser vs gsplat on the same trained Gaussians"
$PY -m spaceport.cli sample "$OUT/sample.zip" --n 12 --width 480 --height 360
$PY -m spaceport.cli sfm "$OUT/sample.zip" "$OUT/sample_sfm"
$PY -m spaceport.cli train "$OUT/sample_sfm" "$OUT/sample_cuda" --preset quick --device cuda
$PY - "$OUT" <<'PY'
import json, math, sys, torch
from pathlib import Path
from spaceport.splats import read_ply
from spaceport_train.data import load_scene
from spaceport_train.rasterize import rasterize
out = Path(sys.argv[1])
splats = read_ply(out / "sample_cuda" / "splat.ply")
config = json.loads((out / "sample_cuda" / "train-config.json").read_text())
scene = load_scene(out / "sample_sfm", config["resolution_scale"])
t = lambda a: torch.from_numpy(a).float()
args = [t(splats.means), t(splats.quats), t(splats.scales), t(splats.opacities),
        torch.cat([t(splats.sh0)[:, None], t(splats.shN)], 1)]
results = []
for view in scene.views:
    common = dict(width=view.width, height=view.height, sh_degree=splats.sh_degree)
    cpu, _, _ = rasterize(*args, view.viewmat[None], view.K[None], backend="cpu", **common)
    cuda, _, _ = rasterize(*[a.cuda() for a in args], view.viewmat[None].cuda(), view.K[None].cuda(),
                           backend="cuda", **common)
    mse = float(((cpu - cuda.cpu()).clamp(-1, 1) ** 2).mean())
    results.append(10 * math.log10(1 / max(mse, 1e-12)))
print(f"parity: CPU vs CUDA render PSNR over {len(results)} views: median {sorted(results)[len(results)//2]:.1f} dB, "
      f"min {min(results):.1f} dB")
PY

echo "== CUDA rasteriser tests (classic and antialiased vs the CPU rasteriser)"
$PY -m pytest -q tests/train/test_rasterize.py -k cuda

echo "== compression on CUDA"
OUT="$OUT" PY="$PY" SPACEPORT_DATASETS="$DATASETS" bash bench/compress_gpu_check.sh

echo "== sky + exposure + antialiased on CUDA: generated oblique scene, truth reconstruction, quick preset"
$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path
from spaceport_sfm.sample import SampleOptions, make_sample, write_truth_reconstruction
from spaceport_train.config import TrainConfig
from spaceport_train.trainer import train
out = Path(sys.argv[1])
capture = make_sample(out / "sky.zip", n=24, width=640, height=480, options=SampleOptions(sky=True, exposure_stops=0.5))
sfm = write_truth_reconstruction(capture, out / "sky_sfm")
for background in ("black", "sky"):
    m = train(sfm, out / f"sky_{background}", TrainConfig.from_preset("quick", {"device": "cuda", "steps": "3000",
              "background": background}))
    print(background, {k: m[k] for k in ("psnr", "steps", "total_wall_s", "backend", "rasterize_mode")}, m["exposure"])
PY

echo "== fern 1/4 (llff_fern/images, 1008x756), preset default (30k steps), gsplat, 150 s budget"
$PY -m spaceport.cli sfm "$DATASETS/llff_fern/images" "$OUT/fern4_sfm"
start=$(date +%s)
$PY -m spaceport.cli train "$OUT/fern4_sfm" "$OUT/fern4" --preset default --device cuda --time-budget-s 150
echo "fern 1/4 train wall: $(( $(date +%s) - start )) s"
$PY -c "import json; m=json.load(open('$OUT/fern4/metrics.json')); print({k: m[k] for k in ('psnr','ssim','num_gaussians','steps','wall_time_s','total_wall_s','device','backend','resolution')})"

echo "== blocks: 2 blocks merged against whole training at the same 3000 steps, gsplat"
$PY bench/blocks_quality.py --out "$OUT/blocks" --device cuda --blocks 2 --steps 3000 --photos 64 --width 320
