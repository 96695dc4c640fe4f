"""netspec: a small declarative language for neural networks, compiled to a checked graph.

    import netspec
    net = netspec.load("specs/resnet18.net", classes=10)
    print(net.table())
    net.export("resnet18.onnx")
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load", "Network", "NetspecError"]


def __getattr__(name):
    # Lazy: `import netspec` (and so `netspec check`) stays light.
    if name in ("load", "Network"):
        from netspec import api

        return getattr(api, name)
    if name == "NetspecError":
        from netspec.diagnostics import NetspecError

        return NetspecError
    raise AttributeError(f"module 'netspec' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
