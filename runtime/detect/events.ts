/**
 * Track changes as Frigate NVR publishes them on `frigate/events`, so consumers written for Frigate
 * (Home Assistant's Frigate integration, Node-RED flows) read edgerun's `events` unchanged:
 *
 *   { type: 'new' | 'update' | 'end', before: TrackedObject, after: TrackedObject }
 *
 * Times are seconds since the epoch (float), boxes [x1, y1, x2, y2] in frame pixels. Zones are
 * polygons in frame pixels; an object is in a zone when the bottom centre of its box is (Frigate's
 * rule: where it stands), and `entered_zones` keeps every zone it was in, in order.
 */
import { boxArea, type Box } from './box.js';
import type { Track, TrackChange, TrackChangeType } from './tracker.js';

export type Zones = Readonly<Record<string, readonly (readonly [number, number])[]>>;

export interface TrackedObject {
  id: string;
  camera: string;
  label: string;
  score: number;
  top_score: number;
  box: Box;
  area: number;
  /** Width / height of the box. */
  ratio: number;
  frame_time: number;
  start_time: number;
  end_time: number | null;
  current_zones: string[];
  entered_zones: string[];
  has_snapshot: boolean;
  false_positive: false;
  active: boolean;
}

export interface DetectionEvent {
  type: TrackChangeType;
  before: TrackedObject;
  after: TrackedObject;
}

export class DetectionEvents {
  readonly #entered = new Map<string, string[]>();

  constructor(readonly camera: string, readonly zones: Zones = {}) {}

  /** The Frigate-shaped event of a tracker change; `snapshot`: a snapshot of the track was published. */
  of(change: TrackChange, snapshot: boolean): DetectionEvent {
    const after = change.after;
    const entered = this.#entered.get(after.id) ?? [];
    const current = this.zonesOf(after.box);
    for (const z of current) if (!entered.includes(z)) entered.push(z);
    if (change.type === 'end') this.#entered.delete(after.id);
    else this.#entered.set(after.id, entered);
    const before = change.type === 'new' ? undefined : this.#object(change.before, this.zonesOf(change.before.box), entered, snapshot);
    const now = this.#object(after, current, entered, snapshot);
    return { type: change.type, before: before ?? now, after: now };
  }

  /** The zones whose polygon holds the bottom centre of the box. */
  zonesOf(box: Box): string[] {
    const x = (box[0] + box[2]) / 2;
    const y = box[3];
    return Object.entries(this.zones).filter(([, poly]) => inside(x, y, poly)).map(([name]) => name);
  }

  #object(t: Readonly<Track>, current: string[], entered: string[], snapshot: boolean): TrackedObject {
    const w = t.box[2] - t.box[0];
    const h = t.box[3] - t.box[1];
    return {
      id: t.id, camera: this.camera, label: t.label, score: round(t.score), top_score: round(t.topScore),
      box: t.box.map((v) => Math.round(v)) as Box, area: Math.round(boxArea(t.box)), ratio: h > 0 ? round(w / h) : 0,
      frame_time: t.lastSeen / 1000, start_time: t.firstSeen / 1000, end_time: t.endedAt === undefined ? null : t.endedAt / 1000,
      current_zones: t.endedAt === undefined ? current : [], entered_zones: [...entered], has_snapshot: snapshot, false_positive: false,
      active: t.endedAt === undefined,
    };
  }
}

const round = (v: number): number => Math.round(v * 1e4) / 1e4;

/** Even-odd rule point-in-polygon. */
function inside(x: number, y: number, poly: readonly (readonly [number, number])[]): boolean {
  let hit = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i]!;
    const [xj, yj] = poly[j]!;
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}
