#!/usr/bin/python3
"""ONNX conformance directories of models exported by PyTorch (random, seeded weights).

    /usr/bin/python3 models/make_conformance.py

Each models/conformance/torch-<name>/ holds model.onnx and test_data_set_{0,1}/{input_0,output_0}.pb
(the layout of ONNX's backend tests and model zoo), with expected outputs computed by PyTorch.
They exercise what the hybrid analog/digital partitioner must get right on other tools' exports:
Conv1d/2d/3d with strides, pads and dilations, grouped and depthwise convolutions, Linear layers
with and without bias (Gemm, and MatMul + Add on 3-D inputs), batched MatMul, interleaved
analog/digital nodes, and a zoo-style ResNet with hundreds of nodes whose weights partly come
from Constant nodes instead of initializers.
"""
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'conformance')


class Conv1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 8, 5, stride=2, padding=1, dilation=2)

    def forward(self, x):
        return self.conv(x)


class Conv2d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, (3, 3), stride=2, padding=(1, 2), dilation=(2, 1))
        self.conv2 = nn.Conv2d(6, 4, 1, bias=False)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv(x)))


class Conv3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3, stride=(1, 2, 2), padding=1)

    def forward(self, x):
        return self.conv(x)


class GroupedConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, groups=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class DepthwiseConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(8, 8, 3, groups=8, padding=1, stride=2)
        self.pw = nn.Conv2d(8, 12, 1)

    def forward(self, x):
        return self.pw(torch.relu(self.dw(x)))


class LinearBias(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(20, 12)
        self.seq = nn.Linear(12, 7)

    def forward(self, x):  # x: [N, T, 20] → Linear on 3-D input exports as MatMul + Add
        return self.seq(torch.tanh(self.fc(x)))


class LinearNoBias(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(30, 16, bias=False)
        self.fc2 = nn.Linear(16, 5, bias=False)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class BatchedMatMul(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 6))

    def forward(self, x):  # [N, 3, 5, 8] × [8, 6]
        return torch.matmul(x, self.w)


class Interleaved(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 32)
        self.norm = nn.LayerNorm(32)
        self.b = nn.Linear(32, 24)
        self.c = nn.Linear(24, 10)

    def forward(self, x):
        x = self.norm(self.a(x))
        x = torch.softmax(self.b(x), dim=-1)
        return self.c(x)


class Affine(nn.Module):
    """Per-channel scale and shift (an unfolded BatchNorm: exports as Mul + Add, which exporters keep)."""
    def __init__(self, c):
        super().__init__()
        self.scale = nn.Parameter(torch.empty(1, c, 1, 1).uniform_(0.5, 1.5))
        self.shift = nn.Parameter(torch.empty(1, c, 1, 1).uniform_(-0.2, 0.2))

    def forward(self, x):
        return x * self.scale + self.shift


class SqueezeExcite(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c, max(4, c // 4))
        self.fc2 = nn.Linear(max(4, c // 4), c)

    def forward(self, x):
        s = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s.reshape(s.shape[0], s.shape[1], 1, 1)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.b1 = Affine(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.b2 = Affine(cout)
        self.se = SqueezeExcite(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), Affine(cout))

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        y = self.se(self.b2(self.c2(y)))
        return torch.relu(y + (x if self.short is None else self.short(x)))


class ZooResNet(nn.Module):
    """A small SE-ResNet in the style of zoo models: 12 residual blocks, a few hundred nodes."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), Affine(16), nn.ReLU())
        blocks, cin = [], 16
        for cout, stride in [(16, 1)] * 4 + [(32, 2)] + [(32, 1)] * 3 + [(48, 2)] + [(48, 1)] * 3:
            blocks.append(Block(cin, cout, stride))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(48, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.head(x)


CASES = [
    ('torch-conv1d', Conv1d, (2, 3, 32)),
    ('torch-conv2d', Conv2d, (2, 3, 17, 15)),
    ('torch-conv3d', Conv3d, (1, 2, 6, 8, 8)),
    ('torch-grouped-conv', GroupedConv, (2, 4, 9, 9)),
    ('torch-depthwise-conv', DepthwiseConv, (2, 8, 12, 12)),
    ('torch-linear-bias', LinearBias, (2, 5, 20)),
    ('torch-linear-nobias', LinearNoBias, (3, 30)),
    ('torch-batched-matmul', BatchedMatMul, (2, 3, 5, 8)),
    ('torch-interleaved', Interleaved, (4, 16)),
    ('torch-zoo-resnet', ZooResNet, (2, 3, 32, 32)),
]


def initializers_to_constants(path, count):
    """Move the weights of the first `count` Conv/Gemm/MatMul nodes from initializers into Constant nodes."""
    model = onnx.load(path)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    moved = 0
    new_nodes = []
    for node in g.node:
        if moved < count and node.op_type in ('Conv', 'Gemm', 'MatMul') and len(node.input) > 1 and node.input[1] in inits:
            t = inits.pop(node.input[1])
            new_nodes.append(onnx.helper.make_node('Constant', [], [t.name], value=t, name=f'const_{t.name}'))
            moved += 1
        new_nodes.append(node)
    del g.node[:]
    g.node.extend(new_nodes)
    kept = [t for t in g.initializer if t.name in inits]
    del g.initializer[:]
    g.initializer.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return moved


def main():
    torch.manual_seed(7)
    for name, cls, shape in CASES:
        model = cls().eval()
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, 'model.onnx')
        zoo = name == 'torch-zoo-resnet'
        torch.onnx.export(model, torch.randn(*shape), path, opset_version=17, input_names=['input'], output_names=['output'],
                          dynamic_axes={'input': {0: 'N'}, 'output': {0: 'N'}},
                          do_constant_folding=not zoo, training=torch.onnx.TrainingMode.EVAL)
        moved = initializers_to_constants(path, 16) if zoo else 0
        m = onnx.load(path)
        onnx.checker.check_model(m)
        for i in range(2):
            x = torch.randn(*shape)
            with torch.no_grad():
                y = model(x).numpy()
            s = os.path.join(d, f'test_data_set_{i}')
            os.makedirs(s, exist_ok=True)
            with open(os.path.join(s, 'input_0.pb'), 'wb') as f:
                f.write(numpy_helper.from_array(x.numpy(), 'input').SerializeToString())
            with open(os.path.join(s, 'output_0.pb'), 'wb') as f:
                f.write(numpy_helper.from_array(y, 'output').SerializeToString())
        print(f'{name}: {len(m.graph.node)} nodes, {os.path.getsize(path)} bytes' + (f', {moved} weights in Constant nodes' if moved else ''))


if __name__ == '__main__':
    main()
