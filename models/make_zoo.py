#!/usr/bin/python3
"""The nine ONNX model-zoo architectures in the "light" form of ONNX's own backend tests.

    /usr/bin/python3 models/make_zoo.py [--only alexnet,vgg19]

ONNX's test suite ships the zoo models (AlexNet, ResNet-50, SqueezeNet, DenseNet-121, Inception v1
and v2, ShuffleNet, VGG-19, ZFNet) as onnx/backend/test/data/light/light_*.onnx: every initializer
with more than 128 elements replaced by a ConstantOfShape node of the same shape
(onnx.tools.replace_constants.replace_initializer_by_constant_of_shape), so the files are a few
kilobytes. Debian's python3-onnx (1.12) predates them and torchvision is not packaged, so this
script defines the architectures in PyTorch (batch 1, 3×224×224 input, 1000 classes), exports them
at opset 11 and applies the same rewrite, with one difference: ONNX fills every replaced tensor
with 0.5, which drives these deep networks to inf/NaN, and a uniform weight makes every output
channel (and class) equal, so two implementations that agree prove little. Here a tensor T with
M rows (first axis) is ConstantOfShape(shape(T), f) · (1 + 0.5·sin(Range(0, M))) with the gain
reshaped to [M, 1, …] (one per output channel), f = 1/fan-in for weights and 0.5 for vectors:
still a small constant subgraph from ConstantOfShape (plus Range, Sin, Mul, Add, Reshape), with
finite activations that differ between channels and classes. Expected outputs are
PyTorch's, on the same weights. Writes models/zoo/<name>/model.onnx and
test_data_set_0/{input_0,output_0}.pb.
"""
import argparse
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'zoo')
THRESHOLD = 128  # ONNX's replace_initializer_by_constant_of_shape default


def conv(cin, cout, k, stride=1, pad=0, groups=1, bn=False, relu=True):
    layers = [nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def classifier(features, hidden):
    layers, width = [nn.Flatten()], features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, 1000), nn.Softmax(dim=1))


class Net(nn.Module):
    def __init__(self, *parts):
        super().__init__()
        self.parts = nn.Sequential(*parts)

    def forward(self, x):
        return self.parts(x)


def alexnet():  # BVLC AlexNet (Caffe): LRN, grouped conv2/4/5; a 224 input leaves 5×5 before the classifier
    lrn = lambda: nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
    return Net(conv(3, 96, 11, 4), lrn(), nn.MaxPool2d(3, 2), conv(96, 256, 5, 1, 2, groups=2), lrn(), nn.MaxPool2d(3, 2),
               conv(256, 384, 3, 1, 1), conv(384, 384, 3, 1, 1, groups=2), conv(384, 256, 3, 1, 1, groups=2), nn.MaxPool2d(3, 2),
               classifier(256 * 5 * 5, [4096, 4096]))


def zfnet():  # ZFNet-512: AlexNet with a 7×7/2 first layer and no groups
    lrn = lambda: nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
    return Net(conv(3, 96, 7, 2, 1), lrn(), nn.MaxPool2d(3, 2, 1), conv(96, 256, 5, 2), lrn(), nn.MaxPool2d(3, 2, 1),
               conv(256, 384, 3, 1, 1), conv(384, 384, 3, 1, 1), conv(384, 256, 3, 1, 1), nn.MaxPool2d(3, 2),
               classifier(256 * 6 * 6, [4096, 4096]))


def vgg19():
    layers, cin = [], 3
    for v in [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M']:
        if v == 'M':
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers.append(conv(cin, v, 3, 1, 1))
            cin = v
    return Net(*layers, classifier(512 * 7 * 7, [4096, 4096]))


class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze, self.e1, self.e3 = conv(cin, squeeze, 1), conv(squeeze, expand, 1), conv(squeeze, expand, 3, 1, 1)

    def forward(self, x):
        s = self.squeeze(x)
        return torch.cat([self.e1(s), self.e3(s)], 1)


def squeezenet():  # SqueezeNet 1.0
    return Net(conv(3, 96, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True), Fire(96, 16, 64), Fire(128, 16, 64), Fire(128, 32, 128),
               nn.MaxPool2d(3, 2, ceil_mode=True), Fire(256, 32, 128), Fire(256, 48, 192), Fire(384, 48, 192), Fire(384, 64, 256),
               nn.MaxPool2d(3, 2, ceil_mode=True), Fire(512, 64, 256), nn.Dropout(), conv(512, 1000, 1),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Softmax(dim=1))


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.body = nn.Sequential(conv(cin, width, 1, bn=True), conv(width, width, 3, stride, 1, bn=True), conv(width, cout, 1, bn=True, relu=False))
        self.short = conv(cin, cout, 1, stride, bn=True, relu=False) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.body(x) + self.short(x))


def resnet50():
    layers, cin = [conv(3, 64, 7, 2, 3, bn=True), nn.MaxPool2d(3, 2, 1)], 64
    for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for b in range(blocks):
            layers.append(Bottleneck(cin, width, stride if b == 0 else 1))
            cin = width * 4
    return Net(*layers, nn.AdaptiveAvgPool2d(1), classifier(2048, []))


class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, 4 * growth, 1, bias=False),
                                  nn.BatchNorm2d(4 * growth), nn.ReLU(), nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False))

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


def densenet121():
    layers, c = [conv(3, 64, 7, 2, 3, bn=True), nn.MaxPool2d(3, 2, 1)], 64
    for i, n in enumerate([6, 12, 24, 16]):
        for _ in range(n):
            layers.append(DenseLayer(c, 32))
            c += 32
        if i < 3:
            layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2, 2)]
            c //= 2
    return Net(*layers, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), classifier(c, []))


class Inception(nn.Module):
    """GoogLeNet module: 1×1 | 1×1→3×3 | 1×1→5×5 (v2: 1×1→3×3→3×3) | pool→1×1."""

    def __init__(self, cin, c1, r3, c3, r5, c5, pool, bn=False, avg=False):
        super().__init__()
        self.b1 = conv(cin, c1, 1, bn=bn) if c1 else None
        self.b2 = nn.Sequential(conv(cin, r3, 1, bn=bn), conv(r3, c3, 3, 1, 1, bn=bn))
        self.b3 = (nn.Sequential(conv(cin, r5, 1, bn=bn), conv(r5, c5, 3, 1, 1, bn=bn), conv(c5, c5, 3, 1, 1, bn=bn)) if bn
                   else nn.Sequential(conv(cin, r5, 1), conv(r5, c5, 5, 1, 2)))
        self.b4 = nn.Sequential(nn.AvgPool2d(3, 1, 1) if avg else nn.MaxPool2d(3, 1, 1), conv(cin, pool, 1, bn=bn))

    def forward(self, x):
        return torch.cat([b(x) for b in (self.b1, self.b2, self.b3, self.b4) if b is not None], 1)


def inception_v1():  # GoogLeNet (BVLC), without the auxiliary heads
    lrn = lambda: nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
    return Net(conv(3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, ceil_mode=True), lrn(), conv(64, 64, 1), conv(64, 192, 3, 1, 1), lrn(),
               nn.MaxPool2d(3, 2, ceil_mode=True), Inception(192, 64, 96, 128, 16, 32, 32), Inception(256, 128, 128, 192, 32, 96, 64),
               nn.MaxPool2d(3, 2, ceil_mode=True), Inception(480, 192, 96, 208, 16, 48, 64), Inception(512, 160, 112, 224, 24, 64, 64),
               Inception(512, 128, 128, 256, 24, 64, 64), Inception(512, 112, 144, 288, 32, 64, 64), Inception(528, 256, 160, 320, 32, 128, 128),
               nn.MaxPool2d(3, 2, ceil_mode=True), Inception(832, 256, 160, 320, 32, 128, 128), Inception(832, 384, 192, 384, 48, 128, 128),
               nn.AdaptiveAvgPool2d(1), nn.Dropout(0.4), classifier(1024, []))


def inception_v2():  # BN-Inception (Ioffe & Szegedy 2015); the stride-2 modules simplified to a pool + module
    return Net(conv(3, 64, 7, 2, 3, bn=True), nn.MaxPool2d(3, 2, 1), conv(64, 64, 1, bn=True), conv(64, 192, 3, 1, 1, bn=True), nn.MaxPool2d(3, 2, 1),
               Inception(192, 64, 64, 64, 64, 96, 32, bn=True, avg=True), Inception(256, 64, 64, 96, 64, 96, 64, bn=True, avg=True),
               nn.MaxPool2d(3, 2, 1), Inception(320, 224, 64, 96, 96, 128, 128, bn=True, avg=True), Inception(576, 192, 96, 128, 96, 128, 128, bn=True, avg=True),
               Inception(576, 160, 128, 160, 128, 160, 96, bn=True, avg=True), Inception(576, 96, 128, 192, 160, 192, 96, bn=True, avg=True),
               nn.MaxPool2d(3, 2, 1), Inception(576, 352, 192, 320, 160, 224, 128, bn=True, avg=True), Inception(1024, 352, 192, 320, 192, 224, 128, bn=True),
               nn.AdaptiveAvgPool2d(1), classifier(1024, []))


class ShuffleUnit(nn.Module):
    """ShuffleNet v1 unit, g = 3: grouped 1×1, channel shuffle, depthwise 3×3, grouped 1×1."""

    def __init__(self, cin, cout, stride, groups=3):
        super().__init__()
        mid, self.stride, self.groups = cout // 4, stride, groups
        out = cout - cin if stride == 2 else cout
        self.g1 = conv(cin, mid, 1, groups=1 if cin == 24 else groups, bn=True)
        self.dw = conv(mid, mid, 3, stride, 1, groups=mid, bn=True, relu=False)
        self.g2 = conv(mid, out, 1, groups=groups, bn=True, relu=False)

    def forward(self, x):
        y = self.g1(x)
        n, c, h, w = y.shape
        y = y.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)
        y = self.g2(self.dw(y))
        if self.stride == 2:
            return F.relu(torch.cat([F.avg_pool2d(x, 3, 2, 1), y], 1))
        return F.relu(x + y)


def shufflenet():
    layers, cin = [conv(3, 24, 3, 2, 1, bn=True), nn.MaxPool2d(3, 2, 1)], 24
    for cout, repeat in [(240, 4), (480, 8), (960, 4)]:
        for i in range(repeat):
            layers.append(ShuffleUnit(cin, cout, 2 if i == 0 else 1))
            cin = cout
    return Net(*layers, nn.AdaptiveAvgPool2d(1), classifier(960, []))


MODELS = {'alexnet': alexnet, 'densenet121': densenet121, 'inception_v1': inception_v1, 'inception_v2': inception_v2,
          'resnet50': resnet50, 'shufflenet': shufflenet, 'squeezenet': squeezenet, 'vgg19': vgg19, 'zfnet512': zfnet}


def pattern(shape, f):
    """What the constant subgraph of light() computes, in float32 as onnxruntime does."""
    wave = np.sin(np.arange(shape[0], dtype=np.float32)).astype(np.float32)
    gain = (wave * np.float32(0.5) + np.float32(1)).reshape((shape[0],) + (1,) * (len(shape) - 1))
    return (np.full(shape, f, dtype=np.float32) * gain).astype(np.float32)


def fill(model):
    """Every tensor of more than THRESHOLD elements gets pattern(): f = 1/fan-in for weights, 0.5 for vectors."""
    with torch.no_grad():
        for t in list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]:
            if t.numel() > THRESHOLD:
                f = 1.0 / (t.numel() // t.shape[0]) if t.dim() > 1 else 0.5
                t.copy_(torch.from_numpy(pattern(tuple(t.shape), f)))


def light(proto):
    """ONNX's replace_initializer_by_constant_of_shape, with the varied fill of pattern()."""
    graph = proto.graph
    scalars = [numpy_helper.from_array(np.array(v, dtype=np.float32), name=n) for n, v in [('light__zero', 0), ('light__one', 1), ('light__half', 0.5)]]
    keep, nodes = list(scalars), []
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        if value.size <= THRESHOLD:
            keep.append(init)
            continue
        flat = value.reshape(-1)
        if value.dtype != np.float32 or not np.array_equal(value, pattern(value.shape, flat[0])):
            raise SystemExit(f'initializer {init.name} ({value.shape}) does not follow the fill pattern')
        t = init.name
        keep += [numpy_helper.from_array(np.array(value.shape, dtype=np.int64), name=f'{t}__SHAPE'),
                 numpy_helper.from_array(np.array(value.shape[0], dtype=np.float32), name=f'{t}__ROWS'),
                 numpy_helper.from_array(np.array((value.shape[0],) + (1,) * (value.ndim - 1), dtype=np.int64), name=f'{t}__GAIN_SHAPE')]
        nodes += [
            helper.make_node('ConstantOfShape', [f'{t}__SHAPE'], [f'{t}__FILL'], value=numpy_helper.from_array(flat[:1].copy())),
            helper.make_node('Range', ['light__zero', f'{t}__ROWS', 'light__one'], [f'{t}__RANGE']),
            helper.make_node('Sin', [f'{t}__RANGE'], [f'{t}__SIN']),
            helper.make_node('Mul', [f'{t}__SIN', 'light__half'], [f'{t}__WAVE']),
            helper.make_node('Add', [f'{t}__WAVE', 'light__one'], [f'{t}__GAIN']),
            helper.make_node('Reshape', [f'{t}__GAIN', f'{t}__GAIN_SHAPE'], [f'{t}__GAINS']),
            helper.make_node('Mul', [f'{t}__FILL', f'{t}__GAINS'], [t]),
        ]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + rest)
    return proto


def tensor_file(path, array, name):
    with open(path, 'wb') as f:
        f.write(numpy_helper.from_array(array, name=name).SerializeToString())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--only', default=','.join(MODELS))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    for name in args.only.split(','):
        model = MODELS[name]().eval()
        fill(model)
        x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 3, 224, 224)).astype(np.float32) / 255)
        with torch.no_grad():
            y = model(x)
        path = os.path.join(OUT, name)
        os.makedirs(os.path.join(path, 'test_data_set_0'), exist_ok=True)
        onnx_path = os.path.join(path, 'model.onnx')
        torch.onnx.export(model, x, onnx_path, opset_version=11, input_names=['data'], output_names=['prob'],
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)
        proto = light(onnx.load(onnx_path))
        onnx.checker.check_model(proto)
        onnx.save(proto, onnx_path)
        tensor_file(os.path.join(path, 'test_data_set_0', 'input_0.pb'), x.numpy(), 'data')
        tensor_file(os.path.join(path, 'test_data_set_0', 'output_0.pb'), y.numpy(), 'prob')
        print(f'{name}: {len(proto.graph.node)} nodes, {os.path.getsize(onnx_path)} bytes, output range {y.min():.4g}..{y.max():.4g}')


if __name__ == '__main__':
    main()
