/**
 * The emulated analog accelerator: a set of noisy crossbar tiles behind the CrossbarDriver
 * interface. The device clock (age since programming) and die temperature are inputs, so a year of
 * drift can be evaluated in a test.
 */
import type { AcceleratorHealth, AcceleratorInfo, ConductanceReadout, CrossbarDriver, TileCounters } from '../../runtime/accelerator.js';
import { loadProfile, type DeepPartial, type DeviceProfile } from './profile.js';
import { Random } from './random.js';
import { Tile } from './tile.js';

export interface EmulatorOptions {
  /** Device instance: same seed, same programming noise, drift exponents and faults. */
  seed?: number;
  /** Changes to the profile, e.g. { adc: { bits: 6 } } or { gdc: 'off' }. */
  overrides?: DeepPartial<DeviceProfile>;
}

export class CrossbarEmulator implements CrossbarDriver {
  readonly profile: DeviceProfile;
  readonly #seed: number;
  readonly #tiles = new Map<number, Tile>();
  #age = 0;
  #kelvin: number;

  constructor(profile: DeviceProfile | string, options: EmulatorOptions = {}) {
    this.profile = typeof profile === 'string' ? loadProfile(profile, options.overrides) : profile;
    this.#seed = new Random(options.seed ?? 0).nextUint32();
    this.#kelvin = this.profile.temperature.initial;
  }

  info(): AcceleratorInfo {
    const p = this.profile;
    return {
      driver: 'crossbar-emulator', profile: p.name, tileRows: p.tile.rows, tileCols: p.tile.cols, tiles: p.tile.count,
      dacBits: p.dac.bits ?? Infinity, adcBits: p.adc.bits ?? Infinity,
    };
  }

  async program(tileId: number, weights: Float32Array, rows: number, cols: number): Promise<void> {
    const { tile } = this.profile;
    if (!Number.isInteger(tileId) || tileId < 0 || tileId >= tile.count) throw new Error(`tile ${tileId} does not exist (device has ${tile.count} tiles)`);
    if (rows < 1 || cols < 1 || rows > tile.rows || cols > tile.cols) throw new Error(`a ${rows}×${cols} block does not fit a ${tile.rows}×${tile.cols} tile`);
    if (weights.length !== rows * cols) throw new Error(`weights hold ${weights.length} values, a ${rows}×${cols} block needs ${rows * cols}`);
    if (!weights.every(Number.isFinite)) throw new Error(`tile ${tileId}: weights must be finite`);
    // Tiles draw from their own streams, so a device is the same whatever order tiles are programmed in.
    const t = this.#tiles.get(tileId) ?? new Tile(tileId, this.profile, new Random(this.#tileSeed(tileId)));
    t.setTemperature(this.#kelvin);
    t.program(weights, rows, cols);
    this.#tiles.set(tileId, t);
  }

  /** Each tile's stream is derived from (seed, tile id), so programming order does not matter. */
  #tileSeed(tileId: number): number {
    return (Math.imul(tileId + 1, 0x9e3779b1) ^ this.#seed) >>> 0;
  }

  async mvm(tileId: number, x: Float32Array, batch: number): Promise<Float32Array> {
    const t = this.#programmedTile(tileId);
    if (x.length < batch * t.rows) throw new Error(`tile ${tileId}: ${batch} input vectors of ${t.rows} need ${batch * t.rows} values, got ${x.length}`);
    return t.mvm(x, batch);
  }

  async calibrate(tileId: number): Promise<void> {
    this.#programmedTile(tileId).calibrate();
  }

  async readConductances(tileId: number): Promise<ConductanceReadout> {
    const t = this.#programmedTile(tileId);
    return { rows: t.rows, cols: t.cols, ...t.conductances() };
  }

  async setAge(seconds: number): Promise<void> {
    if (!(seconds >= 0) || !Number.isFinite(seconds)) throw new Error(`device age must be a finite number of seconds ≥ 0, got ${seconds}`);
    this.#age = seconds;
    for (const t of this.#tiles.values()) t.setAge(seconds);
  }

  get age(): number {
    return this.#age;
  }

  async temperature(): Promise<number> {
    return this.#kelvin;
  }

  /** Sets the die temperature (kelvin); conductances follow the profile's temperature coefficient. */
  setTemperature(kelvin: number): void {
    this.#kelvin = kelvin;
    for (const t of this.#tiles.values()) t.setTemperature(kelvin);
  }

  async health(): Promise<AcceleratorHealth> {
    return { state: 'ok' };
  }

  async counters(): Promise<TileCounters[]> {
    return [...this.#tiles.values()].map((t) => ({ ...t.counters }));
  }

  async dispose(): Promise<void> {
    this.#tiles.clear();
  }

  #programmedTile(tileId: number): Tile {
    const t = this.#tiles.get(tileId);
    if (!t?.programmed) throw new Error(`tile ${tileId} is not programmed`);
    return t;
  }
}
