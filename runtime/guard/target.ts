/**
 * What the accuracy guard needs from a model on an accelerator: run the canary on both paths and
 * the four escalation steps. Kept small so any accelerator backend can be guarded; the hybrid
 * AnalogBackend is adapted in hybrid-target.ts.
 */
import type { Feeds } from '../model/feeds.js';
import type { TensorData } from '../model/tensor.js';

export interface LayerError {
  /** Node name of an analog layer. */
  name: string;
  /** Relative L2 error of its output on the canary, given the reference's input to it. */
  error: number;
}

export interface GuardTarget {
  readonly id: string;
  /** Whether the accelerator can be measured now (not degraded by a failure). */
  available(): boolean;
  /** The canary on the accelerator path (even while the model is demoted); undefined if unavailable. */
  runAccelerator(feeds: Feeds): Promise<Record<string, TensorData> | undefined>;
  /** The canary on the digital reference. */
  runReference(feeds: Feeds): Promise<Record<string, TensorData>>;
  /** Step 1: refresh drift compensation from a calibration read. */
  recalibrate(): Promise<void>;
  /** Step 2: write the weights again (undoes drift; re-draws programming noise). */
  reprogram(): Promise<void>;
  /** Analog layers still on the accelerator, worst first. */
  rankLayers(feeds: Feeds): Promise<LayerError[]>;
  /** Step 3: move these layers to digital (the rest stays analog). */
  demoteLayers(names: readonly string[]): Promise<void>;
  /** Step 4: serve the whole model digitally. */
  demoteModel(reason: string): void;
  /** Serve from the accelerator again after demoteModel. */
  promoteModel(): void;
  /** Layers demoted to digital so far. */
  demotedLayers(): readonly string[];
}
