#!/usr/bin/python3
"""Train edgerun's Fashion-MNIST models and export them to ONNX.

Run from the repository root with Debian's Python (python3-torch, python3-onnx,
dataset-fashion-mnist; nothing is downloaded):

    /usr/bin/python3 models/train.py

Writes models/mlp.onnx, models/cnn.onnx, the evaluation subset and canary set in models/data/,
ONNX conformance directories in models/conformance/{mlp,cnn}/ and models/metrics.json.

Training is hardware-aware (noise injection + weight clipping, as in Joshi et al., Nat. Commun.
2020, and IBM aihwkit's hardware-aware training), because the models run on noisy analog
crossbars where every weight is off by a few percent of the layer's largest weight.
"""
import argparse
import gzip
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = '/usr/share/datasets/fashion-mnist'
HERE = os.path.dirname(os.path.abspath(__file__))


def read_idx(name):
    with gzip.open(os.path.join(DATA, name), 'rb') as f:
        magic, = struct.unpack('>I', f.read(4))
        ndim = magic & 0xFF
        dims = struct.unpack('>' + 'I' * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def output_noise(y, x_absmax, w, out_noise):
    """Additive MVM output noise as an analog tile adds it: out_noise relative to the output range
    of one tile read, i.e. scaled by the input's abs-max (noise management) and each output
    column's weight abs-max (column-wise weight scaling)."""
    w_col = w.detach().abs().flatten(1).amax(1)  # one per output channel
    shape = (1, -1) + (1,) * (y.dim() - 2)
    return y + torch.randn_like(y) * out_noise * x_absmax * w_col.view(shape)


def noisy_weight(w, noise, training):
    """Training-time Gaussian weight noise, std = noise × max|W| of the layer (none at evaluation)."""
    if training and noise > 0:
        return w + torch.randn_like(w) * noise * w.detach().abs().max()
    return w


class NoisyLinear(nn.Linear):
    """Linear layer that, while training, adds Gaussian weight noise (std = noise × max|W|) and
    analog output noise."""
    noise = 0.0
    out_noise = 0.0

    def forward(self, x):
        w = noisy_weight(self.weight, self.noise, self.training)
        if not (self.training and self.out_noise > 0):
            return F.linear(x, w, self.bias)  # exports as one Gemm with its bias
        y = output_noise(F.linear(x, w, None), x.detach().abs().amax(-1, keepdim=True), w, self.out_noise)
        return y if self.bias is None else y + self.bias


class NoisyConv2d(nn.Conv2d):
    noise = 0.0
    out_noise = 0.0

    def forward(self, x):
        w = noisy_weight(self.weight, self.noise, self.training)
        if not (self.training and self.out_noise > 0):
            return self._conv_forward(x, w, self.bias)  # exports as one Conv with its bias
        # abs-max of each input patch, as the DAC normalises every im2col row
        patch_max = F.max_pool2d(x.detach().abs().amax(1, keepdim=True), self.kernel_size, self.stride, self.padding)
        y = output_noise(self._conv_forward(x, w, None), patch_max, w, self.out_noise)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


def scaled(n, width):
    """Layer width n scaled by the width multiplier (at least 2 units)."""
    return max(2, round(n * width))


class MLP(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        h1, h2 = scaled(256, width), scaled(128, width)
        self.fc1 = NoisyLinear(784, h1)
        self.fc2 = NoisyLinear(h1, h2)
        self.fc3 = NoisyLinear(h2, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class CNN(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        c1, c2, h = scaled(16, width), scaled(32, width), scaled(64, width)
        self.conv1 = NoisyConv2d(1, c1, 3)   # 28 → 26 → pool 13
        self.conv2 = NoisyConv2d(c1, c2, 3)  # 13 → 11 → pool 5
        self.fc1 = NoisyLinear(c2 * 5 * 5, h)
        self.fc2 = NoisyLinear(h, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def analog_layers(model):
    return [m for m in model.modules() if isinstance(m, (NoisyLinear, NoisyConv2d))]


def clip_weights(model, k):
    """Clip each layer's weights to ±k standard deviations: outliers waste conductance range."""
    with torch.no_grad():
        for m in analog_layers(model):
            bound = k * m.weight.std()
            m.weight.clamp_(-bound, bound)


def accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def noisy_accuracy(model, x, y, rel, draws, seed):
    """Accuracy with Gaussian weight noise of std rel × max|W| per layer (a quick robustness check)."""
    gen = torch.Generator().manual_seed(seed)
    results = []
    for _ in range(draws):
        saved = [m.weight.detach().clone() for m in analog_layers(model)]
        with torch.no_grad():
            for m in analog_layers(model):
                m.weight.add_(torch.randn(m.weight.shape, generator=gen) * rel * m.weight.abs().max())
        results.append(accuracy(model, x, y))
        with torch.no_grad():
            for m, w in zip(analog_layers(model), saved):
                m.weight.copy_(w)
    return float(np.mean(results))


def train(model, x, y, epochs, noise, out_noise, clip, seed):
    torch.manual_seed(seed)
    for m in analog_layers(model):
        m.noise = noise
        m.out_noise = out_noise
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            clip_weights(model, clip)
            total += loss.item() * len(idx)
        sched.step()
        print(f'  epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}', flush=True)
    model.eval()


def export(model, path):
    model.eval()
    torch.onnx.export(
        model, torch.zeros(1, 1, 28, 28), path, opset_version=17,
        input_names=['input'], output_names=['logits'],
        dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, do_constant_folding=True)


def write_edgd(path, images, labels):
    """EDGD: 'EDGD', u32 version=1, count, channels, height, width (LE); labels u8; pixels u8 NCHW."""
    n, h, w = images.shape
    with open(path, 'wb') as f:
        f.write(b'EDGD' + struct.pack('<5I', 1, n, 1, h, w))
        f.write(labels.astype(np.uint8).tobytes())
        f.write(images.astype(np.uint8).tobytes())


def write_conformance(model, name, images, out_root):
    """ONNX test-data layout: model.onnx + test_data_set_N/{input_0,output_0}.pb; outputs from PyTorch."""
    from onnx import numpy_helper
    d = os.path.join(out_root, name)
    os.makedirs(d, exist_ok=True)
    export(model, os.path.join(d, 'model.onnx'))
    start = 0
    for i, n in enumerate([1, 4, 16]):
        x = (images[start:start + n].astype(np.float32) / 255.0)[:, None]
        start += n
        with torch.no_grad():
            y = model(torch.from_numpy(x)).numpy()
        s = os.path.join(d, f'test_data_set_{i}')
        os.makedirs(s, exist_ok=True)
        with open(os.path.join(s, 'input_0.pb'), 'wb') as f:
            f.write(numpy_helper.from_array(x, 'input').SerializeToString())
        with open(os.path.join(s, 'output_0.pb'), 'wb') as f:
            f.write(numpy_helper.from_array(y, 'logits').SerializeToString())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=12)
    ap.add_argument('--weight-noise', type=float, default=0.03, help='training weight noise, × max|W| per layer')
    ap.add_argument('--out-noise', type=float, default=None,
                    help='training MVM output noise, relative to the tile output range (aihwkit out_noise); '
                         'default 0.06 for the MLP (aihwkit\'s value) and 0.1 for the CNN, whose 9-input first layer needs the margin')
    ap.add_argument('--clip', type=float, default=2.5, help='clip weights to ±clip × std per layer')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--models', default='mlp,cnn', help='which models to train (comma-separated); others keep their files and metrics')
    ap.add_argument('--width', type=float, default=1.0,
                    help='layer-width multiplier; other than 1 writes family/<model>-w<width>.onnx (a model size for '
                         '`edgerun fleet dse`) and its metrics under that name, leaving the default models, data and conformance alone')
    ap.add_argument('--threads', type=int, default=2, help='torch threads (1 on a shared machine)')
    ap.add_argument('--out', default=HERE)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    np.random.seed(args.seed)

    x_train = torch.from_numpy(read_idx('train-images-idx3-ubyte.gz').astype(np.float32) / 255.0)[:, None]
    y_train = torch.from_numpy(read_idx('train-labels-idx1-ubyte.gz').astype(np.int64))
    test_images = read_idx('t10k-images-idx3-ubyte.gz')
    test_labels = read_idx('t10k-labels-idx1-ubyte.gz')
    x_test = torch.from_numpy(test_images.astype(np.float32) / 255.0)[:, None]
    y_test = torch.from_numpy(test_labels.astype(np.int64))

    # Evaluation subset: the first 200 test images of each class; canary set: the next 6-7 per class.
    subset, canary = [], []
    for c in range(10):
        idx = np.nonzero(test_labels == c)[0]
        subset.extend(idx[:200])
        canary.extend(idx[200:200 + (7 if c < 4 else 6)])
    subset, canary = np.sort(np.array(subset)), np.sort(np.array(canary))
    os.makedirs(os.path.join(args.out, 'data'), exist_ok=True)
    write_edgd(os.path.join(args.out, 'data', 'fashion-mnist-test-2000.bin'), test_images[subset], test_labels[subset])
    write_edgd(os.path.join(args.out, 'data', 'canary-64.bin'), test_images[canary], test_labels[canary])

    metrics_path = os.path.join(args.out, 'metrics.json')
    metrics = json.load(open(metrics_path)) if os.path.exists(metrics_path) else {}
    metrics.pop('recipe', None)
    wanted = args.models.split(',')
    family = args.width != 1.0
    for base, model in [('mlp', MLP(args.width)), ('cnn', CNN(args.width))]:
        if base not in wanted:
            continue
        name = f'{base}-w{args.width:g}' if family else base
        torch.manual_seed(args.seed)
        for m in model.modules():
            if hasattr(m, 'reset_parameters'):
                m.reset_parameters()
        out_noise = args.out_noise if args.out_noise is not None else {'mlp': 0.06, 'cnn': 0.1}[base]
        recipe = {'width': args.width, 'epochs': args.epochs, 'weight_noise': args.weight_noise, 'out_noise': out_noise, 'clip_std': args.clip, 'seed': args.seed}
        print(f'training {name} ({sum(p.numel() for p in model.parameters())} parameters)', flush=True)
        train(model, x_train, y_train, args.epochs, args.weight_noise, out_noise, args.clip, args.seed)
        if family:
            os.makedirs(os.path.join(args.out, 'family'), exist_ok=True)
            export(model, os.path.join(args.out, 'family', f'{name}.onnx'))
        else:
            export(model, os.path.join(args.out, f'{name}.onnx'))
            write_conformance(model, name, test_images[canary], os.path.join(args.out, 'conformance'))
        metrics[name] = {
            'recipe': recipe,
            'params': sum(p.numel() for p in model.parameters()),
            'test_accuracy': accuracy(model, x_test, y_test),
            'subset_accuracy': accuracy(model, x_test[subset], y_test[subset]),
            'test_accuracy_3pct_weight_noise': noisy_accuracy(model, x_test, y_test, 0.03, 3, args.seed),
        }
        print(f'  {name}: {json.dumps(metrics[name])}', flush=True)
    with open(metrics_path, 'w') as f:
        json.dump(metrics, f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    main()
