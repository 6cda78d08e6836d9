#!/usr/bin/python3
"""Train edgerun's object detector on synthetic Fashion-MNIST scenes and export it to ONNX.

Run from the repository root with Debian's Python (python3-torch, python3-onnx, python3-numpy,
dataset-fashion-mnist; nothing is downloaded):

    nice -n 10 /usr/bin/python3 models/train_detector.py

Writes models/detector.onnx, the held-out scene set models/data/scenes-300.bin (EDGS format, see
models/README.md) and the "detector" entry of models/metrics.json.

Scenes: 96x96 grey frames with a background (level, gradient), clutter (faint rectangles and
lines), 1-5 Fashion-MNIST items composited at random positions and scales (20-40 px), brightness /
contrast changes and sensor noise. Training scenes use the training set's items, the held-out
scenes the test set's. Labels are the five coarse kinds of item (see LABELS), because the fine
Fashion-MNIST classes (shirt vs T-shirt vs pullover vs coat) are not separable at these scales.

The detector is single-shot with a grid head, YOLO (v1/v2)-like: a 12x12 grid (stride 8), one box
per cell; per cell the channels are [objectness, tx, ty, tw, th, class logits...]. Decoding
(sigmoid offsets in the cell, w = anchor * exp(tw)) is done by the runtime, not in the graph, so
the graph is Conv + Relu + MaxPool only: all of it can run on analog tiles and their periphery.
Training is hardware-aware as for the classifiers (models/train.py): weight noise, analog output
noise and weight clipping; a first, noise-free stage may train with BatchNorm (--batchnorm), which
the export folds into the convs (models/README.md gives the stages of the committed model).
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from train import NoisyConv2d, analog_layers, clip_weights, read_idx

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 96
STRIDE = 8
GRID = SIZE // STRIDE
ANCHOR = 28.0  # box prior in pixels: w = ANCHOR * exp(tw)
LABELS = ['top', 'trouser', 'dress', 'footwear', 'bag']
# Fashion-MNIST class -> label index: T-shirt, pullover, coat, shirt are tops; sandal, sneaker,
# ankle boot are footwear.
COARSE = np.array([0, 1, 0, 2, 0, 3, 0, 3, 4, 3])
MIN_SCALE, MAX_SCALE = 20, 40
MASK_LEVEL = 16  # item pixels above this (of 255) are the object (its box and its mask)


def resize(img, size):
    """Bilinear resize of a square uint8 image to size x size (float32, 0-255)."""
    n = img.shape[0]
    c = (np.arange(size) + 0.5) * n / size - 0.5
    c = np.clip(c, 0, n - 1)
    i0 = np.floor(c).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    f = (c - i0).astype(np.float32)
    im = img.astype(np.float32)
    rows = im[i0] * (1 - f)[:, None] + im[i1] * f[:, None]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]


def render(rng, items, labels):
    """One scene: (uint8 [SIZE, SIZE], boxes [[x1, y1, x2, y2]] float, labels [k])."""
    bg = rng.uniform(0, 90)
    gx, gy = rng.uniform(-40, 40, 2)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE - 0.5
    frame = bg + gx * xx + gy * yy
    for _ in range(rng.integers(0, 6)):  # clutter: faint rectangles and lines
        x0, y0 = rng.integers(0, SIZE, 2)
        if rng.random() < 0.5:
            w, h = rng.integers(4, 30, 2)
            frame[y0:y0 + h, x0:x0 + w] += rng.uniform(-40, 40)
        else:
            horizontal = rng.random() < 0.5
            length, width = rng.integers(10, SIZE), rng.integers(1, 3)
            v = rng.uniform(-60, 60)
            if horizontal:
                frame[y0:y0 + width, x0:x0 + length] += v
            else:
                frame[y0:y0 + length, x0:x0 + width] += v
    boxes, kinds = [], []
    for _ in range(rng.integers(1, 6)):
        for _attempt in range(10):
            k = rng.integers(len(items))
            s = int(rng.integers(MIN_SCALE, MAX_SCALE + 1))
            sprite = resize(items[k], s)
            ys, xs = np.nonzero(sprite > MASK_LEVEL)
            if len(xs) == 0:
                continue
            ox, oy = rng.integers(-(xs.min()), SIZE - xs.max(), 1)[0], rng.integers(-(ys.min()), SIZE - ys.max(), 1)[0]
            box = [ox + xs.min(), oy + ys.min(), ox + xs.max() + 1, oy + ys.max() + 1]
            if any(iou(box, b) > 0.2 for b in boxes):
                continue
            y0, x0 = max(oy, 0), max(ox, 0)
            y1, x1 = min(oy + s, SIZE), min(ox + s, SIZE)
            patch = sprite[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
            mask = np.clip(patch / 40.0, 0, 1)
            gain = rng.uniform(0.6, 1.2)
            frame[y0:y1, x0:x1] = frame[y0:y1, x0:x1] * (1 - mask) + patch * gain * mask
            boxes.append(box)
            kinds.append(COARSE[labels[k]])
            break
    contrast = rng.uniform(0.7, 1.3)
    frame = (frame - 128) * contrast + 128 + rng.uniform(-25, 25)
    frame += rng.normal(0, rng.uniform(0, 10), frame.shape)
    return np.clip(frame, 0, 255).round().astype(np.uint8), np.array(boxes, np.float32).reshape(-1, 4), np.array(kinds, np.int64)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def targets(boxes, kinds):
    """Grid targets for one scene: obj [G, G], box [4, G, G] (tx, ty in (0,1), tw, th as log), cls [G, G]."""
    obj = np.zeros((GRID, GRID), np.float32)
    box = np.zeros((4, GRID, GRID), np.float32)
    cls = np.zeros((GRID, GRID), np.int64)
    order = np.argsort([-(b[2] - b[0]) * (b[3] - b[1]) for b in boxes])  # larger first keeps the cell
    for i in order:
        x1, y1, x2, y2 = boxes[i]
        cx, cy = (x1 + x2) / 2 / STRIDE, (y1 + y2) / 2 / STRIDE
        col, row = min(int(cx), GRID - 1), min(int(cy), GRID - 1)
        if obj[row, col]:
            continue
        obj[row, col] = 1
        box[:, row, col] = [cx - col, cy - row, np.log((x2 - x1) / ANCHOR), np.log((y2 - y1) / ANCHOR)]
        cls[row, col] = kinds[i]
    return obj, box, cls


class Detector(nn.Module):
    """Conv 1->16 stride 2 (96 -> 48) replaces a full-resolution conv + pool: the 96x96 feature
    maps cost most of the training time (element-wise ops, noise) for little gain at 20-40 px.
    With batchnorm=True each conv is followed by BatchNorm (a noise-free warm-up stage trains
    faster with it); export() folds it into the conv weights, so the graph stays Conv/Relu/MaxPool."""

    def __init__(self, classes, batchnorm=False):
        super().__init__()
        self.c1 = NoisyConv2d(1, 16, 3, stride=2, padding=1)  # 96 -> 48
        self.c2 = NoisyConv2d(16, 32, 3, padding=1)           # 48, pool -> 24
        self.c3 = NoisyConv2d(32, 64, 3, padding=1)           # 24, pool -> 12
        self.c4 = NoisyConv2d(64, 96, 3, padding=1)           # 12
        self.c5 = NoisyConv2d(96, 96, 3, padding=1)           # 12 (receptive field 59 px)
        self.head = NoisyConv2d(96, 5 + classes, 1)
        self.bn = nn.ModuleList([nn.BatchNorm2d(c.out_channels) for c in self.convs()]) if batchnorm else None

    def convs(self):
        return [self.c1, self.c2, self.c3, self.c4, self.c5]

    def forward(self, x):
        for i, conv in enumerate(self.convs()):
            x = conv(x)
            if self.bn is not None:
                x = self.bn[i](x)
            x = F.relu(x)
            if i in (1, 2):
                x = F.max_pool2d(x, 2)
        return self.head(x)

    def folded(self):
        """A copy without BatchNorm whose convs compute what conv + BatchNorm (eval mode) compute."""
        plain = Detector(self.head.out_channels - 5)
        plain.load_state_dict({k: v for k, v in self.state_dict().items() if not k.startswith('bn.')})
        if self.bn is not None:
            with torch.no_grad():
                for conv, bn in zip(plain.convs(), self.bn):
                    g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                    conv.weight.mul_(g.view(-1, 1, 1, 1))
                    conv.bias.copy_((conv.bias - bn.running_mean) * g + bn.bias)
        return plain


def loss_fn(out, obj, box, cls):
    pos = obj > 0
    l_obj = F.binary_cross_entropy_with_logits(out[:, 0], obj, reduction='sum')
    p = out.permute(0, 2, 3, 1)[pos]  # [P, 5 + C]
    t = box.permute(0, 2, 3, 1)[pos]
    l_xy = F.binary_cross_entropy_with_logits(p[:, 1:3], t[:, 0:2], reduction='sum')
    l_wh = F.smooth_l1_loss(p[:, 3:5], t[:, 2:4], reduction='sum', beta=0.1)
    l_cls = F.cross_entropy(p[:, 5:], cls[pos], reduction='sum')
    return (l_obj + 2 * l_xy + 5 * l_wh + l_cls) / out.shape[0]


def decode(out, score_threshold=0.05):
    """Same decoding as runtime/detect: per cell one box, score = sigmoid(obj) x softmax(class)."""
    results = []
    for o in out:
        obj = torch.sigmoid(o[0])
        probs = torch.softmax(o[5:], 0)
        rows, cols = torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing='ij')
        cx = (cols + torch.sigmoid(o[1])) * STRIDE
        cy = (rows + torch.sigmoid(o[2])) * STRIDE
        w, h = ANCHOR * torch.exp(o[3].clamp(max=4)), ANCHOR * torch.exp(o[4].clamp(max=4))
        dets = []
        for c in range(probs.shape[0]):
            score = (obj * probs[c]).flatten()
            keep = score >= score_threshold
            if keep.any():
                b = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).view(-1, 4)[keep]
                s = score[keep]
                k = nms(b, s, 0.45)
                dets += [(c, float(s[i]), b[i].tolist()) for i in k]
        results.append(dets)
    return results


def nms(b, s, thr):
    order = s.argsort(descending=True).tolist()
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if iou(b[i].tolist(), b[j].tolist()) <= thr]
    return keep


def mean_ap(dets, gts, classes, thr=0.5):
    """mAP@thr, VOC2010+ all-point interpolation, mean over classes with ground truth."""
    aps = []
    for c in range(classes):
        preds = [(s, i, b) for i, d in enumerate(dets) for (k, s, b) in d if k == c]
        preds.sort(key=lambda p: -p[0])
        gt = {i: [b for b, k in zip(g[0], g[1]) if k == c] for i, g in enumerate(gts)}
        npos = sum(len(v) for v in gt.values())
        if npos == 0:
            continue
        used = {i: [False] * len(v) for i, v in gt.items()}
        tp = []
        for s, i, b in preds:
            ious = [iou(b, g) for g in gt[i]]
            j = int(np.argmax(ious)) if ious else -1
            if j >= 0 and ious[j] >= thr and not used[i][j]:
                used[i][j] = True
                tp.append(1)
            else:
                tp.append(0)
        tp = np.array(tp, np.float64)
        ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
        rec = ctp / npos
        prec = ctp / np.maximum(ctp + cfp, 1e-12)
        mrec = np.concatenate([[0], rec, [1]])
        mpre = np.concatenate([[0], prec, [0]])
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
        aps.append(float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])))
    return float(np.mean(aps))


def make_scenes(rng, items, labels, n):
    frames = np.zeros((n, SIZE, SIZE), np.uint8)
    gts = []
    for i in range(n):
        frames[i], b, k = render(rng, items, labels)
        gts.append((b, k))
    return frames, gts


def write_edgs(path, frames, gts):
    """EDGS (see models/README.md): 'EDGS', u32 version=1, count, channels=1, height, width, classes,
    then the label names as one UTF-8 comma-separated string (u32 length + bytes), count u8 box
    counts, all labels u8, all boxes float32 [x1, y1, x2, y2] in pixels, then the pixels (u8, NCHW)."""
    names = ','.join(LABELS).encode()
    with open(path, 'wb') as f:
        f.write(b'EDGS' + struct.pack('<6I', 1, len(frames), 1, SIZE, SIZE, len(LABELS)))
        f.write(struct.pack('<I', len(names)) + names)
        f.write(np.array([len(k) for _, k in gts], np.uint8).tobytes())
        f.write(np.concatenate([k for _, k in gts]).astype(np.uint8).tobytes())
        f.write(np.concatenate([b for b, _ in gts]).astype('<f4').tobytes())
        f.write(frames.tobytes())


def export(model, path):
    import onnx
    model = model.folded()
    model.eval()
    torch.onnx.export(
        model, torch.zeros(1, 1, SIZE, SIZE), path, opset_version=17,
        input_names=['input'], output_names=['grid'],
        dynamic_axes={'input': {0: 'N'}, 'grid': {0: 'N'}}, do_constant_folding=True)
    m = onnx.load(path)
    # How the runtime decodes the head (runtime/detect/decode.ts reads these).
    meta = {'edgerun.task': 'detect', 'edgerun.labels': ','.join(LABELS), 'edgerun.head': 'grid-yolo',
            'edgerun.stride': str(STRIDE), 'edgerun.anchor': f'{ANCHOR:g},{ANCHOR:g}'}
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, path)


def evaluate(model, frames, gts):
    model.eval()
    dets = []
    with torch.no_grad():
        for i in range(0, len(frames), 100):
            x = torch.from_numpy(frames[i:i + 100].astype(np.float32) / 255.0)[:, None]
            dets += decode(model(x))
    return mean_ap(dets, gts, len(LABELS))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=5)
    ap.add_argument('--scenes-per-epoch', type=int, default=3000)
    ap.add_argument('--heldout', type=int, default=300)
    ap.add_argument('--heldout-seed', type=int, default=1001, help='the held-out scenes: the same for every training stage and seed')
    ap.add_argument('--weight-noise', type=float, default=0.03)
    ap.add_argument('--out-noise', type=float, default=0.1)
    ap.add_argument('--clip', type=float, default=2.5)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--max-lr', type=float, default=3e-3, help='peak learning rate of the one-cycle schedule')
    ap.add_argument('--init', help='start from the weights of a detector ONNX file exported by this script (a further training stage)')
    ap.add_argument('--batchnorm', action='store_true', help='train with BatchNorm after every conv (folded into the convs on export); for a noise-free warm-up stage')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--out', default=HERE)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    train_items, train_labels = read_idx('train-images-idx3-ubyte.gz'), read_idx('train-labels-idx1-ubyte.gz')
    test_items, test_labels = read_idx('t10k-images-idx3-ubyte.gz'), read_idx('t10k-labels-idx1-ubyte.gz')
    held_frames, held_gts = make_scenes(np.random.default_rng(args.heldout_seed), test_items, test_labels, args.heldout)
    os.makedirs(os.path.join(args.out, 'data'), exist_ok=True)
    write_edgs(os.path.join(args.out, 'data', f'scenes-{args.heldout}.bin'), held_frames, held_gts)

    model = Detector(len(LABELS), batchnorm=args.batchnorm)
    if args.init:
        import onnx
        from onnx import numpy_helper
        weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in onnx.load(args.init).graph.initializer}
        model.load_state_dict({k: weights[k] for k in model.state_dict() if not k.startswith('bn.')}, strict=not args.batchnorm)
        print(f'starting from {args.init}', flush=True)
    for m in analog_layers(model):
        m.noise, m.out_noise = args.weight_noise, args.out_noise
    params = sum(p.numel() for p in model.parameters())
    print(f'detector: {params} parameters', flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.max_lr, total_steps=args.epochs * (args.scenes_per_epoch // 64))
    start = time.time()
    epochs_run = 0
    for epoch in range(args.epochs):
        frames, gts = make_scenes(rng, train_items, train_labels, args.scenes_per_epoch)
        t = [targets(b, k) for b, k in gts]
        obj = torch.from_numpy(np.stack([a for a, _, _ in t]))
        box = torch.from_numpy(np.stack([b for _, b, _ in t]))
        cls = torch.from_numpy(np.stack([c for _, _, c in t]))
        x = torch.from_numpy(frames.astype(np.float32) / 255.0)[:, None]
        model.train()
        total = 0.0
        for i in range(0, len(x) - 63, 64):
            opt.zero_grad()
            loss = loss_fn(model(x[i:i + 64]), obj[i:i + 64], box[i:i + 64], cls[i:i + 64])
            loss.backward()
            opt.step()
            sched.step()
            clip_weights(model, args.clip)
            total += loss.item()
        epochs_run = epoch + 1
        minutes = (time.time() - start) / 60
        heldout_map = evaluate(model, held_frames, held_gts)
        print(f'  epoch {epochs_run}/{args.epochs}: loss {total / (len(x) // 64):.3f}, {minutes:.1f} min, held-out mAP@0.5 {heldout_map:.4f}', flush=True)
        export(model, os.path.join(args.out, 'detector.onnx'))  # a usable model after every epoch
    print(f'held-out mAP@0.5 (VOC all-point): {heldout_map:.4f}', flush=True)
    metrics_path = os.path.join(args.out, 'metrics.json')
    metrics = json.load(open(metrics_path)) if os.path.exists(metrics_path) else {}
    metrics['detector'] = {
        'recipe': {'epochs_run': epochs_run, 'scenes_per_epoch': args.scenes_per_epoch, 'weight_noise': args.weight_noise,
                   'out_noise': args.out_noise, 'clip_std': args.clip, 'seed': args.seed, 'max_lr': args.max_lr,
                   'init': os.path.basename(args.init) if args.init else None, 'batchnorm': args.batchnorm},
        'params': params,
        'heldout_scenes': args.heldout,
        'heldout_map50_voc': heldout_map,
    }
    with open(metrics_path, 'w') as f:
        json.dump(metrics, f, indent=2)
        f.write('\n')


if __name__ == '__main__':
    main()
