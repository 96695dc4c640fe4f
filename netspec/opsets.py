"""The ONNX opsets netspec lowers to. Apart from netspec.lower (which imports onnx), so `check`
can say what an export at the default opset would refuse without importing onnx."""

DEFAULT_OPSET = 17
# 13 is the oldest opset netspec lowers to; 26 the newest that onnxruntime 1.25 and newer load
# (1.24 refuses opset 26, 1.22 opset 23 and up), and what onnx 1.21 and newer check.
MIN_OPSET, MAX_OPSET = 13, 26
OPSET_RANGE = "what onnxruntime 1.25 and newer load"  # the range's reason, in messages and --help
