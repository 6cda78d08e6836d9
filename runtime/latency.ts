/** Latency percentiles over an HDR histogram (µs resolution, 3 significant digits). */
import * as hdr from 'hdr-histogram-js';

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A LatencyRecorder as JSON: its histogram, encoded, and the sum of what it recorded (µs). */
export interface EncodedLatency {
  hdr: string;
  sumUs: number;
}

export class LatencyRecorder {
  readonly #histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  /**
   * Sum of the recorded µs: the mean without hdr-histogram-js's `mean`, which walks every bucket
   * (a device's periodic telemetry asks for it; a thousand devices in one process felt it).
   */
  #sumUs = 0;

  /** Records one duration given in milliseconds. */
  record(ms: number): void {
    const us = Math.max(1, Math.round(ms * 1000));
    this.#histogram.recordValue(us);
    this.#sumUs += us;
  }

  /** The histogram (HdrHistogram's compressed base64 form) and the sum, to be added to another recorder exactly (add()). */
  encode(): EncodedLatency {
    return { hdr: hdr.encodeIntoCompressedBase64(this.#histogram), sumUs: this.#sumUs };
  }

  /** Adds an encoded recorder (encode()): the same buckets, so percentiles and mean of the sum are exact. */
  add(encoded: EncodedLatency): void {
    this.#histogram.add(hdr.decodeFromCompressedBase64(encoded.hdr));
    this.#sumUs += encoded.sumUs;
  }

  /** Milliseconds at `percentile` (0..100). */
  at(percentile: number): number {
    return Math.round(this.#histogram.getValueAtPercentile(percentile)) / 1000;
  }

  /** The latency curve (ms at percentiles 0 … 99.9), for plots. */
  distribution(): { percentile: number; ms: number }[] {
    if (this.#histogram.totalCount === 0) return [];
    return [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.9, 100].map((percentile) => ({ percentile, ms: this.at(percentile) }));
  }

  summary(): LatencySummary {
    const h = this.#histogram;
    const ms = (us: number): number => Math.round(us) / 1000;
    return {
      count: h.totalCount,
      meanMs: h.totalCount ? ms(this.#sumUs / h.totalCount) : 0,
      p50Ms: ms(h.getValueAtPercentile(50)),
      p90Ms: ms(h.getValueAtPercentile(90)),
      p99Ms: ms(h.getValueAtPercentile(99)),
      maxMs: ms(h.maxValue),
    };
  }
}
