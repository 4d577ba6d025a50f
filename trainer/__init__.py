"""remap-tb's PyTorch side: datasets, models from specs, training, the CLI."""
