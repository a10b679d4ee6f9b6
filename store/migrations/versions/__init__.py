"""Migration scripts, one file each, applied in order."""
