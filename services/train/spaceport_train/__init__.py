"""Training stage job: a COLMAP reconstruction becomes a 3D Gaussian splat (gsplat on CUDA, own rasteriser on CPU)."""
