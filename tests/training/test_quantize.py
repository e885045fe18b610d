"""int8 export: one scale per output column tracks fp32 closer than one per matrix."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from guardstack.training.export import quantize


def _matmul_model(path, weight):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", weight.shape[1]])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_per_channel_int8_keeps_small_columns_that_one_scale_per_matrix_loses(tmp_path):
    rng = np.random.default_rng(0)
    # columns whose magnitudes differ a hundredfold, as a fine-tuned head's do
    weight = (rng.normal(size=(64, 16)) * np.geomspace(0.01, 1.0, 16)).astype(np.float32)
    _matmul_model(tmp_path / "fp32.onnx", weight)
    x = rng.normal(size=(32, 64)).astype(np.float32)
    want = _run(tmp_path / "fp32.onnx", x)
    err = {}
    for per_channel in (False, True):
        out = quantize(tmp_path / "fp32.onnx", tmp_path / f"int8_{per_channel}.onnx",
                       per_channel=per_channel)
        got = _run(out, x)
        # relative error on the smallest column, the one a shared scale crushes
        err[per_channel] = float(np.abs(got[:, 0] - want[:, 0]).mean()
                                 / np.abs(want[:, 0]).mean())
    assert err[True] < 0.05
    assert err[False] > 2 * err[True]
