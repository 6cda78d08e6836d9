/** Post-processing on hand-computed cases: IoU, grid decoding, class-wise NMS, the IoU tracker, Frigate events, mAP. */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { iou, type Box, type Detection } from '../../runtime/detect/box.js';
import { decodeGrid, gridHeadOf, type GridHead } from '../../runtime/detect/grid-head.js';
import { nonMaxSuppression } from '../../runtime/detect/nms.js';
import { IouTracker } from '../../runtime/detect/tracker.js';
import { DetectionEvents } from '../../runtime/detect/events.js';
import { meanAveragePrecision } from '../../runtime/detect/mean-ap.js';
import { loadModel } from '../../runtime/model/load.js';

const det = (label: string, score: number, box: Box): Detection => ({ label, score, box });
/** Float32 logits: coordinates to 5 decimals. */
const expectBox = (actual: Box, expected: Box): void => actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));

describe('iou', () => {
  it('is intersection over union, 0 for disjoint or touching boxes', () => {
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(50 / 150, 12);
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(iou([0, 0, 10, 10], [2, 2, 4, 4])).toBeCloseTo(4 / 100, 12);
  });
});

describe('grid head', () => {
  // 16×16 input, stride 8: a 2×2 grid; labels a, b; anchor 8×8.
  const head: GridHead = { labels: ['a', 'b'], stride: 8, anchor: [8, 8], input: [1, 16, 16] };
  const plane = 4;
  const output = (): Float32Array => {
    const x = new Float32Array(7 * plane).fill(0);
    for (let cell = 0; cell < plane; cell++) x[cell] = -10; // objectness off everywhere...
    const cell = 1 * 2 + 0; // ...but at row 1, column 0
    x[cell] = 0; // sigmoid 0.5
    x[3 * plane + cell] = Math.log(2); // w = 16
    x[5 * plane + cell] = 0;
    x[6 * plane + cell] = Math.log(3); // class probabilities 0.25, 0.75
    return x;
  };

  it('decodes cell offsets, anchor scales and objectness × class probability, clipped to the frame', () => {
    // cx = (0 + 0.5)·8 = 4, cy = (1 + 0.5)·8 = 12, w = 16, h = 8 → [-4, 8, 12, 16] clipped to [0, 8, 12, 16].
    const dets = decodeGrid(head, { data: output(), dims: [1, 7, 2, 2] }, { scoreThreshold: 0.1 });
    expect(dets).toHaveLength(2);
    const [a, b] = [dets.find((d) => d.label === 'a')!, dets.find((d) => d.label === 'b')!];
    expect(a.score).toBeCloseTo(0.125, 6);
    expect(b.score).toBeCloseTo(0.375, 6);
    expectBox(b.box, [0, 8, 12, 16]);
    expect(decodeGrid(head, { data: output(), dims: [1, 7, 2, 2] }, { scoreThreshold: 0.2 }).map((d) => d.label)).toEqual(['b']);
    // Frame twice the input size: boxes scale.
    expectBox(decodeGrid(head, { data: output(), dims: [1, 7, 2, 2] }, { scoreThreshold: 0.2, scale: [2, 3] })[0]!.box, [0, 24, 24, 48]);
  });

  it('refuses an output that does not match the head', () => {
    expect(() => decodeGrid(head, { data: new Float32Array(6 * plane), dims: [1, 6, 2, 2] }, { scoreThreshold: 0.1 })).toThrow(/expected \[N, 7, 2, 2\]/);
  });

  it('reads the head from the model metadata; a classifier is refused with a clear error', async () => {
    const detector = gridHeadOf(loadModel(await readFile('models/detector.onnx'), { source: 'detector.onnx' }));
    expect(detector).toEqual({ labels: ['top', 'trouser', 'dress', 'footwear', 'bag'], stride: 8, anchor: [28, 28], input: [1, 96, 96] });
    const cnn = loadModel(await readFile('models/cnn.onnx'), { source: 'cnn.onnx' });
    expect(() => gridHeadOf(cnn)).toThrow(/cnn.onnx: not a grid-head detector/);
  });
});

describe('class-wise NMS', () => {
  it('drops overlapping boxes of the same label only, keeping the higher score', () => {
    const a = det('x', 0.9, [0, 0, 10, 10]);
    const b = det('x', 0.8, [1, 0, 11, 10]); // IoU with a = 90/110 = 0.82: suppressed
    const c = det('x', 0.7, [20, 20, 30, 30]);
    const d = det('y', 0.6, [0, 0, 10, 10]); // another label: kept
    const e = det('x', 0.5, [5, 0, 15, 10]); // IoU with a = 1/3: kept at 0.5
    expect(nonMaxSuppression([e, d, c, b, a], 0.5)).toEqual([a, c, d, e]);
    expect(nonMaxSuppression([e, d, c, b, a], 0.3)).toEqual([a, c, d]);
  });
});

describe('IoU tracker', () => {
  it('announces after minHits, updates on movement, ends after the timeout; stable ids', () => {
    const tracker = new IouTracker('cam', { iouThreshold: 0.3, timeoutMs: 1000, minHits: 2, moveIou: 0.9 });
    expect(tracker.update([det('x', 0.6, [0, 0, 10, 10])], 0)).toEqual([]); // tentative
    const [created] = tracker.update([det('x', 0.7, [1, 0, 11, 10])], 100);
    expect(created!.type).toBe('new');
    expect(created!.after).toMatchObject({ id: 'cam-1', label: 'x', score: 0.7, topScore: 0.7, firstSeen: 0, lastSeen: 100, box: [1, 0, 11, 10] });
    // Same box, lower score: nothing to report.
    expect(tracker.update([det('x', 0.65, [1, 0, 11, 10])], 200)).toEqual([]);
    // Moved: IoU with the reported box 70/130 = 0.54 < 0.9 → update; a far 'y' starts a tentative track.
    const moved = tracker.update([det('x', 0.65, [4, 0, 14, 10]), det('y', 0.9, [50, 50, 60, 60])], 300);
    expect(moved).toHaveLength(1);
    expect(moved[0]).toMatchObject({ type: 'update', improved: false, before: { id: 'cam-1', box: [1, 0, 11, 10] }, after: { id: 'cam-1', box: [4, 0, 14, 10], topScore: 0.7 } });
    expect(moved[0]!.after.history.map((p) => p.t)).toEqual([0, 100, 200, 300]);
    // A better score is an update even without movement.
    expect(tracker.update([det('x', 0.95, [4, 0, 14, 10])], 400)).toMatchObject([{ type: 'update', improved: true, after: { topScore: 0.95, bestAt: 400 } }]);
    expect(tracker.update([], 1400)).toEqual([]); // last seen 400: 1000 ms ago, not more
    const ended = tracker.update([], 1401);
    expect(ended).toHaveLength(1); // the tentative 'y' disappears silently
    expect(ended[0]).toMatchObject({ type: 'end', after: { id: 'cam-1', endedAt: 400 } });
    expect(tracker.tracks).toHaveLength(0);
  });

  it('matches by best overlap, never across labels, and gives new objects new ids', () => {
    const tracker = new IouTracker('c', { minHits: 1 });
    tracker.update([det('x', 0.9, [0, 0, 10, 10]), det('x', 0.9, [6, 0, 16, 10])], 0); // c-1, c-2
    // One detection overlapping both: it continues c-2 (IoU 0.82) rather than c-1 (IoU 0.33); a 'y' on c-1's place is new.
    const changes = tracker.update([det('x', 0.9, [7, 0, 17, 10]), det('y', 0.9, [0, 0, 10, 10])], 10);
    expect(changes.map((c) => [c.type, c.after.id, c.after.label])).toEqual([['update', 'c-2', 'x'], ['new', 'c-3', 'y']]);
    expect(tracker.flush().map((c) => [c.type, c.after.id])).toEqual([['end', 'c-1'], ['end', 'c-2'], ['end', 'c-3']]);
  });
});

describe('Frigate-shaped events', () => {
  it('carry before/after objects with seconds, zones entered and end times', () => {
    const tracker = new IouTracker('front', { minHits: 1, timeoutMs: 100 });
    const events = new DetectionEvents('front', { door: [[0, 0], [30, 0], [30, 22], [0, 22]] });
    const t0 = 1_700_000_000_000;
    const created = events.of(tracker.update([det('bag', 0.8, [0, 0, 20, 20])], t0)[0]!, true);
    expect(created.type).toBe('new');
    expect(created.before).toEqual(created.after);
    expect(created.after).toEqual({
      id: 'front-1', camera: 'front', label: 'bag', score: 0.8, top_score: 0.8, box: [0, 0, 20, 20], area: 400, ratio: 1,
      frame_time: 1_700_000_000, start_time: 1_700_000_000, end_time: null, current_zones: ['door'], entered_zones: ['door'],
      has_snapshot: true, false_positive: false, active: true,
    });
    // Moves (IoU 288/512 = 0.56) so that its bottom centre (12, 24) leaves the zone.
    const moved = events.of(tracker.update([det('bag', 0.7, [2, 4, 22, 24])], t0 + 50)[0]!, true);
    expect(moved).toMatchObject({ type: 'update', before: { box: [0, 0, 20, 20], current_zones: ['door'] }, after: { box: [2, 4, 22, 24], score: 0.7, top_score: 0.8, current_zones: [], entered_zones: ['door'], frame_time: 1_700_000_000.05 } });
    const [end] = tracker.update([], t0 + 151).map((c) => events.of(c, true));
    expect(end).toMatchObject({ type: 'end', after: { id: 'front-1', end_time: 1_700_000_000.05, active: false, current_zones: [], entered_zones: ['door'] } });
  });
});

describe('mAP@0.5 (VOC all-point)', () => {
  it('matches a hand-computed case: duplicates and misses are false positives', () => {
    const truth = [
      [{ label: 'x', box: [0, 0, 10, 10] as Box }],
      [{ label: 'x', box: [0, 0, 10, 10] as Box }, { label: 'x', box: [20, 20, 30, 30] as Box }, { label: 'y', box: [40, 40, 50, 50] as Box }],
    ];
    const detections = [
      [det('x', 0.9, [0, 0, 10, 10]), det('x', 0.6, [1, 0, 10, 10])], // TP, then a duplicate (FP)
      [det('x', 0.8, [50, 50, 60, 60]), det('x', 0.7, [21, 20, 31, 30]), det('y', 0.5, [0, 0, 10, 10])], // FP, TP (IoU 0.82), y misplaced
    ];
    // x ranked: TP (r 1/3, p 1), FP (1/3, 1/2), TP (2/3, 2/3), FP (2/3, 1/2) → AP = 1/3·1 + 1/3·2/3 = 5/9; y: AP 0.
    const r = meanAveragePrecision(detections, truth);
    expect(r.perLabel).toEqual([
      { label: 'x', ap: expect.closeTo(5 / 9, 12) as number, positives: 3, detections: 4 },
      { label: 'y', ap: 0, positives: 1, detections: 1 },
    ]);
    expect(r.map).toBeCloseTo(5 / 18, 12);
    // The whole object found once, with no false positive: AP 1.
    expect(meanAveragePrecision([[det('x', 0.3, [0, 0, 10, 10])]], [[{ label: 'x', box: [0, 0, 10, 10] }]]).map).toBe(1);
    // The 0.5 threshold is inclusive of IoU ≥ 0.5 only: IoU 1/3 misses.
    expect(meanAveragePrecision([[det('x', 0.3, [5, 0, 15, 10])]], [[{ label: 'x', box: [0, 0, 10, 10] }]]).map).toBe(0);
  });
});
