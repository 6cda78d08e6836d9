#!/usr/bin/python3
"""Where a detector exported by train_detector.py loses mAP on the held-out scenes.

    /usr/bin/python3 models/diagnose_detector.py [models/detector.onnx]

Prints mAP@0.5 and @0.3 (loose boxes), class-agnostic AP at IoU 0.3 / 0.5 / 0.7 (finding objects
and placing boxes, whatever the label), mAP@0.5 per object-size tercile (a ground truth outside the
band and the detections on it are left out), and, for the objects some detection (score >= 0.1)
overlaps at IoU >= 0.5, the confusion of the true label against the best-scoring such detection's.
"""
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

import train_detector as td
from train import read_idx


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else f'{td.HERE}/detector.onnx'
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in onnx.load(path).graph.initializer}
    model = td.Detector(len(td.LABELS))
    model.load_state_dict({k: weights[k] for k in model.state_dict()})
    model.eval()
    items, labels = read_idx('t10k-images-idx3-ubyte.gz'), read_idx('t10k-labels-idx1-ubyte.gz')
    frames, gts = td.make_scenes(np.random.default_rng(1001), items, labels, 300)  # the held-out scenes
    with torch.no_grad():
        dets = td.decode(model(torch.from_numpy(frames.astype(np.float32) / 255)[:, None]))
    classes = len(td.LABELS)
    print(f'mAP@0.5 {td.mean_ap(dets, gts, classes):.4f}, mAP@0.3 {td.mean_ap(dets, gts, classes, 0.3):.4f}')
    agnostic = [[(0, s, b) for (_, s, b) in d] for d in dets]
    one_label = [(b, np.zeros(len(k), np.int64)) for b, k in gts]
    print('class-agnostic AP ' + ', '.join(f'@{t} {td.mean_ap(agnostic, one_label, 1, t):.4f}' for t in (0.3, 0.5, 0.7)))

    size = lambda b: float(np.sqrt((b[2] - b[0]) * (b[3] - b[1])))
    edges = np.percentile([size(b) for g in gts for b in g[0]], [100 / 3, 200 / 3])
    for lo, hi in [(0, edges[0]), (edges[0], edges[1]), (edges[1], np.inf)]:
        band_gts, band_dets = [], []
        for d, (b, k) in zip(dets, gts):
            inside = np.array([lo <= size(x) < hi for x in b], bool)
            band_gts.append((b[inside], k[inside]))
            band_dets.append([x for x in d if not any(td.iou(x[2], o) >= 0.5 for o in b[~inside])])
        print(f'  objects {lo:.0f}-{hi:.0f} px (sqrt area): mAP@0.5 {td.mean_ap(band_dets, band_gts, classes):.4f}')

    confusion = np.zeros((classes, classes), int)
    missed = 0
    for d, (boxes, kinds) in zip(dets, gts):
        for b, k in zip(boxes, kinds):
            hits = [(s, c) for (c, s, x) in d if s >= 0.1 and td.iou(x, b) >= 0.5]
            if hits:
                confusion[k, max(hits)[1]] += 1
            else:
                missed += 1
    print(f'{missed} of {sum(len(k) for _, k in gts)} objects without a detection (score >= 0.1) at IoU >= 0.5; '
          f'label accuracy on the others {np.trace(confusion) / confusion.sum():.4f}')
    print('confusion (rows: truth, columns: best-scoring detection), labels', td.LABELS)
    print(confusion)


if __name__ == '__main__':
    main()
