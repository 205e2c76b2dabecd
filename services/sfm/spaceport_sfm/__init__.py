"""SfM stage job: a ZIP of photos becomes a COLMAP reconstruction (pycolmap)."""
