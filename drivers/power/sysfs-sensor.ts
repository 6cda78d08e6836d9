/**
 * What every sysfs-backed sensor shares: read() never throws — a SysfsError (missing file, garbage,
 * permission) or anything unexpected becomes the reading's `error` and marks the sensor unavailable
 * until a read succeeds again.
 */
import type { Clock } from '../../runtime/power/clock.js';
import { systemClock } from '../../runtime/power/clock.js';
import type { PowerReading, PowerSensor, SensorDescription, SensorKind } from '../../runtime/power/sensor.js';
import { stat } from 'node:fs/promises';
import { SysfsError } from './sysfs.js';

export interface SysfsSensorOptions {
  clock?: Clock;
}

export abstract class SysfsSensor implements PowerSensor {
  protected readonly clock: Clock;
  #error: string | undefined;
  protected detail = '';

  constructor(readonly id: string, readonly kind: SensorKind, readonly dir: string, options: SysfsSensorOptions = {}) {
    this.clock = options.clock ?? systemClock;
  }

  /** Reads the files; throws SysfsError with the file and the problem. */
  protected abstract sample(ts: number): Promise<Omit<PowerReading, 'ts'>>;

  /** A vanished device directory (battery pulled, driver unloaded) is one clear error, not eleven. */
  protected async requireDir(): Promise<void> {
    const isDir = await stat(this.dir).then((st) => st.isDirectory(), () => false);
    if (!isDir) throw new SysfsError(this.dir, 'missing (device removed or driver unloaded)');
  }

  async read(): Promise<PowerReading> {
    const ts = this.clock.now();
    try {
      const values = await this.sample(ts);
      this.#error = undefined;
      return { ts, ...values };
    } catch (e) {
      this.#error = e instanceof SysfsError ? e.message : `${this.dir}: unexpected error: ${(e as Error).message}`;
      return { ts, error: this.#error };
    }
  }

  describe(): SensorDescription {
    return { id: this.id, kind: this.kind, source: this.dir, detail: this.detail, available: this.#error === undefined, ...(this.#error ? { error: this.#error } : {}) };
  }
}
