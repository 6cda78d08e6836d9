#!/usr/bin/python3
"""QDQ int8 export of the trained CNN: models/cnn-qdq.onnx.

    /usr/bin/python3 models/make_qdq.py [--calibration 2000]

The ONNX "QDQ" format as onnxruntime's static quantizer writes it (that quantizer is not packaged
for Debian, so the rewrite is done here with the onnx Python API):
- every Conv/Gemm weight becomes DequantizeLinear(int8 codes, per-output-channel scale, zero point 0):
  symmetric, scale = max|W[c]| / 127 per output channel (axis 0 of Conv's [M, C, kh, kw] and of
  Gemm's transposed [N, K] weight);
- every bias becomes DequantizeLinear(int32 codes, scale = activation scale × weight scale[c]);
- every Conv/Gemm input activation goes through QuantizeLinear → DequantizeLinear, uint8 per tensor,
  its range calibrated (min/max) on the first --calibration images of the Fashion-MNIST *training*
  set (dataset-fashion-mnist), never on test images.
"""
import argparse
import os
import sys

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train import CNN, read_idx  # noqa: E402  (same folder; the model's PyTorch definition)


def activation_ranges(model, images):
    """min/max of each Conv/Linear input over the calibration images, by module name."""
    ranges = {}

    def hook(name):
        def record(_module, inputs, _output):
            x = inputs[0].detach()
            lo, hi = float(x.min()), float(x.max())
            old = ranges.get(name, (lo, hi))
            ranges[name] = (min(lo, old[0]), max(hi, old[1]))
        return record

    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            module.register_forward_hook(hook(name))
    with torch.no_grad():
        for start in range(0, len(images), 500):
            model(images[start:start + 500])
    return ranges


def uint8_params(lo, hi):
    """Asymmetric uint8 over [min(lo, 0), max(hi, 0)] (zero exactly representable)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255 or 1.0
    return np.float32(scale), np.uint8(round(-lo / scale))


def quantize(proto, ranges):
    graph = proto.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    new_inits, nodes = [], []
    for node in graph.node:
        if node.op_type not in ('Conv', 'Gemm'):
            nodes.append(node)
            continue
        x, w_name, b_name = node.input
        module = w_name.rsplit('.', 1)[0]
        if node.op_type == 'Gemm' and not any(a.name == 'transB' and a.i == 1 for a in node.attribute):
            raise SystemExit(f'{node.name}: expected a Gemm with transB = 1 (PyTorch Linear)')
        x_scale, x_zero = uint8_params(*ranges[module])
        w = inits.pop(w_name)
        w_scale = (np.abs(w.reshape(w.shape[0], -1)).max(axis=1) / 127).astype(np.float32)
        w_scale[w_scale == 0] = 1
        w_q = np.clip(np.round(w / w_scale.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
        b_scale = (x_scale * w_scale).astype(np.float32)
        b_q = np.round(inits.pop(b_name) / b_scale).astype(np.int32)
        p = module
        new_inits += [numpy_helper.from_array(a, name=n) for n, a in [
            (f'{p}.input_scale', np.array(x_scale)), (f'{p}.input_zero_point', np.array(x_zero)),
            (f'{p}.weight_quantized', w_q), (f'{p}.weight_scale', w_scale), (f'{p}.weight_zero_point', np.zeros(w.shape[0], np.int8)),
            (f'{p}.bias_quantized', b_q), (f'{p}.bias_scale', b_scale)]]
        nodes += [
            helper.make_node('QuantizeLinear', [x, f'{p}.input_scale', f'{p}.input_zero_point'], [f'{p}.input_q'], name=f'{p}/input/QuantizeLinear'),
            helper.make_node('DequantizeLinear', [f'{p}.input_q', f'{p}.input_scale', f'{p}.input_zero_point'], [f'{p}.input_dq'], name=f'{p}/input/DequantizeLinear'),
            helper.make_node('DequantizeLinear', [f'{p}.weight_quantized', f'{p}.weight_scale', f'{p}.weight_zero_point'], [f'{p}.weight_dq'], name=f'{p}/weight/DequantizeLinear', axis=0),
            helper.make_node('DequantizeLinear', [f'{p}.bias_quantized', f'{p}.bias_scale'], [f'{p}.bias_dq'], name=f'{p}/bias/DequantizeLinear', axis=0),
        ]
        node.input[:] = [f'{p}.input_dq', f'{p}.weight_dq', f'{p}.bias_dq']
        nodes.append(node)
    if inits:
        raise SystemExit(f'initializers left unquantized: {sorted(inits)}')
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    del graph.node[:]
    graph.node.extend(nodes)
    proto.producer_name = 'edgerun models/make_qdq.py'
    return proto


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--calibration', type=int, default=2000, help='training images used to calibrate activation ranges')
    ap.add_argument('--out', default=os.path.join(HERE, 'cnn-qdq.onnx'))
    args = ap.parse_args()
    proto = onnx.load(os.path.join(HERE, 'cnn.onnx'))
    model = CNN().eval()
    model.load_state_dict({t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer})
    images = torch.from_numpy(read_idx('train-images-idx3-ubyte.gz')[:args.calibration].astype(np.float32) / 255).unsqueeze(1)
    ranges = activation_ranges(model, images)
    proto = quantize(proto, ranges)
    onnx.checker.check_model(proto)
    onnx.save(proto, args.out)
    for name, (lo, hi) in sorted(ranges.items()):
        print(f'{name}: input range [{lo:.4g}, {hi:.4g}]')
    print(f'{args.out}: {len(proto.graph.node)} nodes, {os.path.getsize(args.out)} bytes')


if __name__ == '__main__':
    main()
