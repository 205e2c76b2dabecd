"""Compression stage job: a splat PLY becomes a PlayCanvas SOG bundle (own PLAS and k-means)."""
