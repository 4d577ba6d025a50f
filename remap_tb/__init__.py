"""remap-tb: human-in-the-loop neural architecture search as a TensorBoard plugin.

Importing this package does no work and never imports torch.
"""

__version__ = "0.1.0"
