/**
 * The emulated analog accelerator: noisy crossbar tiles behind the CrossbarDriver interface. The
 * device clock (seconds since programming) and die temperature are inputs, so a year of drift can be
 * evaluated in a test; everything random comes from the seed, so a seed is one device instance.
 */
import type { AcceleratorHealth, AcceleratorInfo, ConductanceReadout, CrossbarDriver, HealthState, TileCounters } from '../../runtime/accelerator.js';
import { Arena } from './arena.js';
import { DeviceModel } from './device-model.js';
import { Periphery } from './periphery.js';
import { isDigitalExact, loadProfile, withOverrides, type DeviceProfile, type ProfileOverrides } from './profile.js';
import { paddedColumns, Tile, type TileContext } from './tile.js';
import { WorkAreas } from './work-areas.js';

export interface EmulatorOptions {
  /** Device instance: same seed → same programming noise, drift exponents, faults and read noise. */
  seed?: number;
  /** Changes to the profile, e.g. { adc: { bits: 6 } }, { gdc: 'off' }, { readNoise: { enabled: false } }. */
  overrides?: ProfileOverrides;
  /**
   * Refresh drift compensation on every setAge, as aihwkit does when it drifts the weights to the
   * inference time (default true). False leaves it to explicit calibrate() calls.
   */
  calibrateOnSetAge?: boolean;
  /** Use the WebAssembly SIMD kernels when the engine has them (default true); false: plain JS. */
  simd?: boolean;
  /**
   * Keep only what an MVM reads (default false): once a tile computes, its programmed
   * conductances and drift exponents (16 of its 24 bytes per weight) are dropped and drawn again
   * from the seed when the age or temperature changes or they are read. Outputs are bit-identical;
   * each such change costs a re-draw. For many emulated devices in one process (a fleet).
   */
  lean?: boolean;
}

export class AcceleratorFault extends Error {
  override readonly name = 'AcceleratorFault';
}

export class CrossbarEmulator implements CrossbarDriver {
  readonly #ctx: TileContext;
  readonly #seed: number;
  readonly #calibrateOnSetAge: boolean;
  readonly #tiles = new Map<number, Tile>();
  /** Device clock (s) at which each tile was last programmed. */
  readonly #programmedAt = new Map<number, number>();
  #clock = 0;
  #kelvin: number;
  #health: AcceleratorHealth = { state: 'ok' };
  #disposed = false;

  constructor(profile: DeviceProfile | string, options: EmulatorOptions = {}) {
    const overrides = options.overrides ?? {};
    const p = typeof profile === 'string' ? loadProfile(profile, overrides)
      : Object.keys(overrides).length ? withOverrides(profile, overrides) : profile;
    const arena = new Arena({ simd: options.simd ?? true });
    const work = new WorkAreas(arena, p.tile.rows, paddedColumns(p.tile.cols));
    this.#ctx = { profile: p, device: new DeviceModel(p), periphery: new Periphery(p), arena, work, exact: isDigitalExact(p), lean: options.lean ?? false };
    const seed = options.seed ?? 0;
    if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
    this.#seed = seed >>> 0;
    this.#calibrateOnSetAge = options.calibrateOnSetAge ?? true;
    this.#kelvin = p.temperature.initial;
  }

  /** The device profile in effect (setAdcBits changes its ADC resolution). */
  get profile(): DeviceProfile {
    return this.#ctx.profile;
  }

  /**
   * Changes the ADC resolution of every tile from the next MVM on: the governor's `adc-bits`
   * action (fewer bits, less energy per conversion, more quantisation error). The range
   * (adc.bound) stays; programmed weights and drift compensation are untouched.
   */
  async setAdcBits(bits: number): Promise<void> {
    this.#usable();
    if (!Number.isInteger(bits) || bits < 2 || bits > 24) throw new RangeError(`ADC resolution must be a whole number of bits in 2…24, got ${bits}`);
    const p = this.#ctx.profile;
    if (this.#ctx.exact || p.adc.bits === null) throw new Error(`profile '${p.name}' has no quantising ADC: there is no resolution to change`);
    const next: DeviceProfile = { ...p, adc: { ...p.adc, bits } };
    this.#ctx.profile = next;
    this.#ctx.periphery = new Periphery(next);
  }

  info(): AcceleratorInfo {
    const p = this.profile;
    return {
      driver: 'crossbar-emulator', profile: p.name, tileRows: p.tile.rows, tileCols: p.tile.cols, tiles: p.tile.count,
      dacBits: p.dac.bits ?? Infinity, adcBits: p.adc.bits ?? Infinity, periphery: p.periphery,
    };
  }

  async program(tileId: number, weights: Float32Array, rows: number, cols: number): Promise<void> {
    this.#usable();
    const { tile } = this.profile;
    if (!Number.isInteger(tileId) || tileId < 0 || tileId >= tile.count) throw new RangeError(`tile ${tileId} does not exist (the device has tiles 0…${tile.count - 1})`);
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1 || rows > tile.rows || cols > tile.cols) {
      throw new RangeError(`a ${rows}×${cols} block does not fit a ${tile.rows}×${tile.cols} tile`);
    }
    if (weights.length !== rows * cols) throw new RangeError(`weights hold ${weights.length} values, a ${rows}×${cols} block needs ${rows * cols}`);
    for (let i = 0; i < weights.length; i++) if (!Number.isFinite(weights[i]!)) throw new RangeError(`tile ${tileId}: weight ${i} is ${weights[i]}; weights must be finite`);
    let t = this.#tiles.get(tileId);
    if (!t) {
      t = new Tile(tileId, this.#ctx, this.#seed, this.#kelvin);
      this.#tiles.set(tileId, t);
    }
    t.program(weights, rows, cols, this.#kelvin);
    this.#programmedAt.set(tileId, this.#clock);
  }

  async mvm(tileId: number, x: Float32Array, batch: number): Promise<Float32Array> {
    this.#usable();
    const t = this.#programmed(tileId);
    if (!Number.isInteger(batch) || batch < 0) throw new RangeError(`batch must be a whole number ≥ 0, got ${batch}`);
    // Exactly batch × the programmed rows (PROTOCOL.md): a vector of another length is a caller's
    // mistake, never something to truncate.
    if (x.length !== batch * t.rows) throw new RangeError(`tile ${tileId} is programmed with ${t.rows} rows: ${batch} input vector(s) need ${batch * t.rows} values, got ${x.length}`);
    t.dropDevices();
    return t.mvm(x, batch);
  }

  async calibrate(tileId: number): Promise<void> {
    this.#usable();
    this.#programmed(tileId).calibrate();
  }

  async readConductances(tileId: number): Promise<ConductanceReadout> {
    this.#usable();
    return this.#programmed(tileId).conductances();
  }

  /** Sets the device clock; a tile's age is the clock minus the clock when it was programmed. */
  async setAge(seconds: number): Promise<void> {
    this.#usable();
    if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`device age must be a finite number of seconds ≥ 0, got ${seconds}`);
    this.#clock = seconds;
    for (const [id, t] of this.#tiles) {
      t.update(Math.max(0, seconds - (this.#programmedAt.get(id) ?? 0)), this.#kelvin);
      if (this.#calibrateOnSetAge) t.calibrate();
    }
  }

  /** The device clock (seconds). */
  get age(): number {
    return this.#clock;
  }

  async temperature(): Promise<number> {
    return this.#kelvin;
  }

  /**
   * Sets the die temperature (kelvin); conductances scale by 1 + α·(T − T_ref). Drift compensation
   * is not refreshed (a calibrate() call would absorb the change, as on a real chip).
   */
  setTemperature(kelvin: number): void {
    if (!Number.isFinite(kelvin) || kelvin <= 0) throw new RangeError(`temperature must be a positive number of kelvin, got ${kelvin}`);
    this.#kelvin = kelvin;
    for (const [id, t] of this.#tiles) t.update(Math.max(0, this.#clock - (this.#programmedAt.get(id) ?? 0)), kelvin);
  }

  /**
   * Test hook: marks the device degraded (still computes) or unhealthy (every call fails with an
   * AcceleratorFault), e.g. to exercise digital fallback; 'ok' restores it.
   */
  setHealth(state: HealthState, detail?: string): void {
    this.#health = detail === undefined ? { state } : { state, detail };
  }

  async health(): Promise<AcceleratorHealth> {
    if (this.#disposed) return { state: 'unhealthy', detail: 'disposed' };
    return { ...this.#health };
  }

  async counters(): Promise<TileCounters[]> {
    return [...this.#tiles.values()].sort((a, b) => a.id - b.id).map((t) => ({ ...t.counters }));
  }

  /** Drift-compensation factors applied on a tile, per column (1 when compensation is off). */
  gdcFactors(tileId: number): Float32Array {
    return this.#programmed(tileId).gdcFactors;
  }

  /** Whether the MVM kernels run as WebAssembly SIMD (else plain JavaScript). */
  get simd(): boolean {
    return this.#ctx.arena.kernels.simd;
  }

  async dispose(): Promise<void> {
    for (const t of this.#tiles.values()) t.release();
    this.#tiles.clear();
    this.#programmedAt.clear();
    this.#disposed = true;
  }

  #usable(): void {
    if (this.#disposed) throw new AcceleratorFault('the crossbar emulator has been disposed');
    if (this.#health.state === 'unhealthy') throw new AcceleratorFault(`accelerator unhealthy${this.#health.detail ? `: ${this.#health.detail}` : ''}`);
  }

  #programmed(tileId: number): Tile {
    const t = this.#tiles.get(tileId);
    if (!t?.programmed) throw new RangeError(`tile ${tileId} is not programmed`);
    return t;
  }
}
