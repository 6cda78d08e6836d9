/**
 * The seam between the hybrid executor and an analog in-memory-computing accelerator.
 *
 * An accelerator is a set of crossbar tiles. Each tile holds one weight block of at most
 * `tileRows × tileCols` (rows = inputs, cols = outputs) and computes y = x · W for a batch of
 * input vectors. The driver owns the weight → conductance mapping, DAC/ADC quantisation and every
 * non-ideality; callers see weights and outputs in the model's own units. Splitting a large matrix
 * over several tiles and summing partial results is the caller's job (runtime/analog).
 *
 * The in-process emulator (drivers/crossbar) and the out-of-process client (drivers/remote)
 * implement this same interface, so the executor never knows which one it has. Calls are async
 * because a real device or a remote process answers asynchronously; batch calls keep the number of
 * round trips per layer small.
 */
export interface AcceleratorInfo {
  /** Driver kind, e.g. "crossbar-emulator" or "remote". */
  driver: string;
  /** Device profile name, e.g. "ideal", "pcm", "flash". */
  profile: string;
  tileRows: number;
  tileCols: number;
  /** Number of tiles on the device. */
  tiles: number;
  /** DAC input resolution in bits (Infinity when unquantised). */
  dacBits: number;
  /** ADC output resolution in bits (Infinity when unquantised). */
  adcBits: number;
  /**
   * The digital periphery next to the arrays (runtime/hybrid/periphery.ts): the post-ADC operators
   * it applies, each with its energy in fJ per element. Absent or empty: only the per-column
   * affine (scale, bias) that every analog layer has.
   */
  periphery?: Readonly<Partial<Record<PeripheryOp, number>>>;
}

/**
 * Operators an analog core's digital periphery can apply to its ADC outputs, in the order they
 * apply: BatchNormalization folds into the column scale and bias, then elementwise activations,
 * then (Conv layers only) pooling.
 */
export const PERIPHERY_OPS = ['BatchNormalization', 'Relu', 'LeakyRelu', 'Clip', 'HardSigmoid', 'HardSwish', 'Sigmoid', 'Tanh', 'MaxPool', 'AveragePool'] as const;
export type PeripheryOp = typeof PERIPHERY_OPS[number];

export type HealthState = 'ok' | 'degraded' | 'unhealthy';

export interface AcceleratorHealth {
  state: HealthState;
  detail?: string;
}

export interface TileCounters {
  tileId: number;
  /** Matrix-vector multiplications (one per input vector). */
  mvms: number;
  /** Multiply-accumulates performed in the array (rows × cols per MVM, programmed area only). */
  macs: number;
  dacConversions: number;
  adcConversions: number;
  /** Cells (devices) written by program(); a differential pair counts as two. */
  cellsProgrammed: number;
}

export interface ConductanceReadout {
  rows: number;
  cols: number;
  /** Positive-device conductances in µS, row-major rows × cols. */
  gPlus: Float32Array;
  /** Negative-device conductances in µS, row-major rows × cols. */
  gMinus: Float32Array;
}

export interface CrossbarDriver {
  info(): AcceleratorInfo;
  /**
   * Programs a weight block onto a tile (with programming noise, faults, ...). `weights` is
   * row-major `rows × cols`, rows ≤ tileRows, cols ≤ tileCols. Resets the tile's device age to 0
   * relative to the device clock and runs drift-compensation calibration if the profile uses it.
   */
  program(tileId: number, weights: Float32Array, rows: number, cols: number): Promise<void>;
  /**
   * y = x · W for `batch` input vectors. `x` is row-major `batch × rows`; returns `batch × cols`.
   * The returned array may be reused by the driver on the next call to the same tile: copy it if
   * you keep it.
   */
  mvm(tileId: number, x: Float32Array, batch: number): Promise<Float32Array>;
  /** Re-reads the array on a calibration batch and refreshes drift compensation. */
  calibrate(tileId: number): Promise<void>;
  readConductances(tileId: number): Promise<ConductanceReadout>;
  /**
   * Optional: changes the ADC resolution of every tile (fewer bits: less energy per conversion,
   * more quantisation error). Devices with fixed converters leave it out.
   */
  setAdcBits?(bits: number): Promise<void>;
  /** Sets the device clock: seconds since the tiles were programmed (drift is evaluated here). */
  setAge(seconds: number): Promise<void>;
  /** Die temperature in kelvin. */
  temperature(): Promise<number>;
  health(): Promise<AcceleratorHealth>;
  counters(): Promise<TileCounters[]>;
  dispose(): Promise<void>;
}
