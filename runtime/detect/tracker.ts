/**
 * An IoU tracker (Bochinski et al., "High-Speed Tracking-by-Detection Without Using Image
 * Information", AVSS 2017): each frame's detections are matched to the live tracks of the same
 * label by overlap, greedily from the best overlap down. A match continues the track, a detection
 * left over starts a tentative track, and a track not matched for `timeoutMs` ends.
 *
 * A track is announced (`new`) once it was seen in `minHits` frames, so a one-frame false positive
 * never becomes an event; `update` follows when the box moved (its overlap with the last announced
 * box fell below `moveIou`) or the best score rose; `end` when it timed out (or at flush()).
 * Ids are stable for a track's life and unique per tracker ("<camera>-<n>").
 */
import { iou, type Box, type Detection } from './box.js';

export interface TrackerOptions {
  /** Minimum overlap of a detection with a track's last box to continue it. */
  iouThreshold: number;
  /** A track not seen for this long ends. */
  timeoutMs: number;
  /** Frames a track must be seen in before it is announced. */
  minHits: number;
  /** An announced track reports an update once its box overlaps the last reported one less than this. */
  moveIou: number;
  /** Box history kept per track (the oldest go first). */
  historyLength: number;
}

export const DEFAULT_TRACKER_OPTIONS: TrackerOptions = { iouThreshold: 0.3, timeoutMs: 1000, minHits: 2, moveIou: 0.9, historyLength: 32 };

export interface TrackPoint {
  /** Frame time, ms. */
  t: number;
  box: Box;
  score: number;
}

export interface Track {
  id: string;
  label: string;
  /** Score of the latest detection. */
  score: number;
  /** Best score seen; `bestAt` is the frame time it was seen at. */
  topScore: number;
  bestAt: number;
  box: Box;
  firstSeen: number;
  lastSeen: number;
  /** Set once the track ended: when it was last seen. */
  endedAt?: number;
  hits: number;
  announced: boolean;
  history: TrackPoint[];
}

export type TrackChangeType = 'new' | 'update' | 'end';

export interface TrackChange {
  type: TrackChangeType;
  /** The track as last announced (for `new`: as now). */
  before: Readonly<Track>;
  after: Readonly<Track>;
  /** The best score rose in this frame (a better snapshot is available). */
  improved: boolean;
}

export class IouTracker {
  readonly #o: TrackerOptions;
  readonly #prefix: string;
  #tracks: Track[] = [];
  /** Per announced track: its state when it was last reported. */
  readonly #reported = new Map<string, Track>();
  #nextId = 1;

  constructor(prefix: string, options: Partial<TrackerOptions> = {}) {
    this.#o = { ...DEFAULT_TRACKER_OPTIONS, ...options };
    this.#prefix = prefix;
  }

  /** Live tracks (announced or not yet). */
  get tracks(): readonly Readonly<Track>[] { return this.#tracks; }

  /** Feeds one frame's detections (after NMS) taken at time `t` (ms, non-decreasing). */
  update(detections: readonly Detection[], t: number): TrackChange[] {
    const changes: TrackChange[] = [];
    const pairs: { track: Track; det: Detection; overlap: number }[] = [];
    for (const track of this.#tracks) {
      for (const det of detections) {
        if (det.label !== track.label) continue;
        const overlap = iou(track.box, det.box);
        if (overlap >= this.#o.iouThreshold) pairs.push({ track, det, overlap });
      }
    }
    pairs.sort((a, b) => b.overlap - a.overlap);
    const usedTracks = new Set<Track>();
    const usedDets = new Set<Detection>();
    for (const { track, det } of pairs) {
      if (usedTracks.has(track) || usedDets.has(det)) continue;
      usedTracks.add(track);
      usedDets.add(det);
      const improved = this.#continue(track, det, t);
      const change = this.#announce(track, improved);
      if (change) changes.push(change);
    }
    for (const det of detections) {
      if (usedDets.has(det)) continue;
      const track: Track = {
        id: `${this.#prefix}-${this.#nextId++}`, label: det.label, score: det.score, topScore: det.score, bestAt: t,
        box: det.box, firstSeen: t, lastSeen: t, hits: 1, announced: false, history: [{ t, box: det.box, score: det.score }],
      };
      this.#tracks.push(track);
      const change = this.#announce(track, true);
      if (change) changes.push(change);
    }
    changes.push(...this.#expire(t));
    return changes;
  }

  /** Ends every live track (the source stopped). */
  flush(): TrackChange[] {
    return this.#expire(Infinity);
  }

  /** Returns whether the best score rose. */
  #continue(track: Track, det: Detection, t: number): boolean {
    track.box = det.box;
    track.score = det.score;
    track.lastSeen = t;
    track.hits++;
    track.history.push({ t, box: det.box, score: det.score });
    if (track.history.length > this.#o.historyLength) track.history.shift();
    if (det.score <= track.topScore) return false;
    track.topScore = det.score;
    track.bestAt = t;
    return true;
  }

  #announce(track: Track, improved: boolean): TrackChange | undefined {
    if (!track.announced) {
      if (track.hits < this.#o.minHits) return undefined;
      track.announced = true;
      const now = snapshot(track);
      this.#reported.set(track.id, now);
      return { type: 'new', before: now, after: now, improved: true };
    }
    const before = this.#reported.get(track.id)!;
    if (!improved && iou(before.box, track.box) >= this.#o.moveIou) return undefined;
    const after = snapshot(track);
    this.#reported.set(track.id, after);
    return { type: 'update', before, after, improved };
  }

  /** Ends the tracks last seen more than timeoutMs before `t`; a track ends when it was last seen. */
  #expire(t: number): TrackChange[] {
    const changes: TrackChange[] = [];
    this.#tracks = this.#tracks.filter((track) => {
      if (t - track.lastSeen <= this.#o.timeoutMs) return true;
      if (track.announced) {
        const before = this.#reported.get(track.id)!;
        track.endedAt = track.lastSeen;
        changes.push({ type: 'end', before, after: snapshot(track), improved: false });
        this.#reported.delete(track.id);
      }
      return false;
    });
    return changes;
  }
}

function snapshot(track: Track): Track {
  return { ...track, history: [...track.history] };
}
