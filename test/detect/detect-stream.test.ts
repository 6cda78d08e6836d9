/**
 * `edgerun detect`'s stream end to end through a real Mosquitto with the trained detector
 * (digital placement): a synthetic scene with known objects gives `new` events whose boxes match
 * the ground truth, `update`s as the objects move, `end`s once they left; snapshots decode as JPEGs
 * of the frame's size; counts are retained integers.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import jpeg from 'jpeg-js';
import { iou, type Box } from '../../runtime/detect/box.js';
import { describeMosquitto, Mosquitto } from '../helpers/mosquitto.js';
import { until } from '../helpers/until.js';
import { startHarness, type Body, type Harness } from './helpers.js';

/** The bundled detector's default score threshold (config detect.scoreThreshold). */
const SCORE = 0.5;

describeMosquitto('detection stream on Mosquitto', () => {
  let broker: Mosquitto;
  beforeAll(async () => { broker = await Mosquitto.start({ persistence: false }); });
  afterAll(async () => { await broker?.dispose(); });

  it('reports objects of a synthetic scene as Frigate events: new (matching the truth), update, end; snapshots and counts', { timeout: 240_000 }, async () => {
    // 192×192 frames: resampled to the detector's 96×96 and boxes scaled back to frame pixels.
    const started = performance.now();
    const h: Harness = await startHarness({ url: broker.url, device: 'cam-e2e', synthetic: { width: 192, height: 192, seed: 7, frames: 150 }, detect: { scoreThreshold: SCORE, detectionsIntervalMs: 1000, homeAssistant: { enabled: true } } });
    try {
      await h.detector.stream.ended;
      await until('every event published', () => h.detector.reporter.counters.pending === 0, 30_000);
      await until('the last end event', () => h.events('end').length >= h.events('new').length || undefined, 10_000);
    } finally {
      await h.stop();
    }
    const runSeconds = (performance.now() - started) / 1000;
    const truthAt = new Map(h.got.frames.map((f) => [f.frame.t, f.frame.truth ?? []]));
    const created = h.events('new');
    expect(created.length).toBeGreaterThan(2);
    // Each `new` box against the truth of the frame it was seen in.
    const matched = created.filter((e: Body) => (truthAt.get(Math.round(e.after.frame_time * 1000)) ?? []).some((t) => t.label === e.after.label && iou(t.box, e.after.box as Box) >= 0.5));
    expect(matched.length / created.length).toBeGreaterThanOrEqual(0.7);
    // Most objects that stayed in view for a second were announced, at IoU ≥ 0.5 (11 of 12 in runs of this
    // detector, whose held-out mAP@0.5 is 0.91).
    const seen = new Map<number, { frames: number; label: string }>();
    for (const f of h.got.frames) for (const t of f.frame.truth ?? []) seen.set(t.id, { frames: (seen.get(t.id)?.frames ?? 0) + 1, label: t.label });
    const lasting = [...seen.entries()].filter(([, s]) => s.frames >= 10).map(([id]) => id);
    const found = lasting.filter((id) => h.got.frames.some((f) => {
      const t = f.frame.truth?.find((x) => x.id === id);
      return t && created.concat(h.events('update')).some((e: Body) => Math.round(e.after.frame_time * 1000) === f.frame.t && e.after.label === t.label && iou(t.box, e.after.box as Box) >= 0.5);
    }));
    expect(lasting.length).toBeGreaterThan(2);
    expect(found.length / lasting.length, `${found.length} of ${lasting.length} objects in view ≥ 1 s announced at IoU ≥ 0.5 (${matched.length} of ${created.length} new events match)`).toBeGreaterThanOrEqual(0.75);
    // Updates as they move; ends for every announced track, with the Frigate fields.
    const updates = h.events('update');
    expect(updates.some((e: Body) => iou(e.before.box, e.after.box) < 0.9)).toBe(true);
    const ids = new Set(created.map((e: Body) => e.after.id));
    const ended = h.events('end');
    expect(new Set(ended.map((e: Body) => e.after.id))).toEqual(ids);
    for (const e of ended) {
      expect(e.after).toMatchObject({ camera: 'camera', active: false });
      expect(e.after.end_time).toBeGreaterThanOrEqual(e.after.start_time);
      expect(e.after.top_score).toBeGreaterThanOrEqual(SCORE);
    }
    // Snapshots: JPEGs of the camera's frame size; counts: retained integers, 0 once everything ended.
    const snapshots = [...h.got.raw.entries()].filter(([k]) => k.startsWith('snapshot/'));
    expect(snapshots.length).toBeGreaterThan(0);
    for (const [, bytes] of snapshots) {
      const img = jpeg.decode(bytes, { useTArray: true });
      expect([img.width, img.height]).toEqual([192, 192]);
    }
    const counts = [...h.got.raw.entries()].filter(([k]) => k.startsWith('count/'));
    expect(counts.map(([k]) => k).sort()).toEqual(['count/bag', 'count/dress', 'count/footwear', 'count/top', 'count/trouser']);
    for (const [, v] of counts) expect(v.toString()).toBe('0');
    // Home Assistant discovery: a count sensor per label reading count/<label>, and the device status.
    const ha = [...h.got.raw.entries()].filter(([k]) => k.startsWith('homeassistant/')).map(([k, v]) => [k, JSON.parse(v.toString())] as const);
    expect(ha.map(([k]) => k).sort()).toEqual(['bag', 'dress', 'footwear', 'status', 'top', 'trouser'].map((o) => `homeassistant/sensor/edgerun_test_cam-e2e/${o === 'status' ? o : `camera_${o}_count`}/config`).sort());
    expect(Object.fromEntries(ha)['homeassistant/sensor/edgerun_test_cam-e2e/camera_bag_count/config']).toMatchObject({ state_topic: 'edgerun/test/cam-e2e/count/bag', availability_topic: 'edgerun/test/cam-e2e/status', device: { identifiers: ['edgerun_test_cam-e2e'] } });
    // Per-frame detections, rate-limited to one a second: 150 frames at 10 fps take 15 s or, on a loaded
    // machine, longer; at most one message per started second of the run.
    const perFrame = h.got.messages.filter((m) => m.kind === 'detections').map((m) => m.body);
    expect(perFrame.length).toBeGreaterThan(5);
    expect(perFrame.length).toBeLessThanOrEqual(Math.floor(runSeconds) + 1);
    for (const d of perFrame) expect(d).toMatchObject({ camera: 'camera', backend: 'digital', detections: expect.any(Array) });
    // Energy per frame and the detection counters travel in telemetry.
    const telemetry = h.got.messages.filter((m) => m.kind === 'telemetry').pop()!.body;
    expect(telemetry.detection.processed).toBeGreaterThan(0);
  });
});
