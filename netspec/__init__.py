"""netspec: a small declarative language for neural networks, compiled to a checked graph."""

__version__ = "0.1.0"
