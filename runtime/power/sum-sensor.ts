/**
 * Several sensors read as one: the board's power where no single sensor has it — two INA3221 chips
 * with separate rails and no input rail (Jetson AGX Xavier), or one RAPL package zone per socket.
 * Unavailable while any part is: a sum with a part missing would pass for a lower draw.
 */
import type { PowerReading, PowerSensor, SensorDescription } from './sensor.js';

export class SumSensor implements PowerSensor {
  #error: string | undefined;

  constructor(readonly parts: readonly PowerSensor[]) {
    if (parts.length < 2) throw new Error(`a sum needs at least two sensors, got ${parts.length}`);
  }

  async read(): Promise<PowerReading> {
    const readings = await Promise.all(this.parts.map((p) => p.read()));
    const ts = Math.max(...readings.map((r) => r.ts));
    const failed = readings.findIndex((r) => r.error !== undefined);
    if (failed >= 0) {
      this.#error = `${this.parts[failed]!.describe().id}: ${readings[failed]!.error}`;
      return { ts, error: this.#error };
    }
    this.#error = undefined;
    const r: PowerReading = { ts, channels: readings.map((x, i) => ({ label: this.parts[i]!.describe().id, ...(x.watts !== undefined ? { watts: x.watts } : {}) })) };
    if (readings.every((x) => x.watts !== undefined)) r.watts = readings.reduce((a, x) => a + x.watts!, 0);
    if (readings.every((x) => x.joules !== undefined)) r.joules = readings.reduce((a, x) => a + x.joules!, 0);
    return r;
  }

  describe(): SensorDescription {
    const parts = this.parts.map((p) => p.describe());
    return {
      id: `sum:${parts.map((p) => p.id).join('+')}`,
      kind: parts[0]!.kind,
      source: parts.map((p) => p.source).join(' + '),
      detail: `sum of ${parts.map((p) => p.id).join(' + ')}`,
      available: this.#error === undefined && parts.every((p) => p.available),
      ...(this.#error ? { error: this.#error } : {}),
    };
  }
}
