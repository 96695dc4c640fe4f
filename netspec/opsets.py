"""The ONNX opsets netspec lowers to. Apart from netspec.lower (which imports onnx), so `check`
can say what an export at the default opset would refuse without importing onnx."""

DEFAULT_OPSET = 17
# What onnxruntime 1.31 and newer load; 13 is the oldest netspec lowers to.
MIN_OPSET, MAX_OPSET = 13, 26
