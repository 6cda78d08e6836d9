/**
 * A battery, with another sensor for the device's draw while the battery does not discharge. On
 * mains (charging, full, held at a threshold) a battery gives its charge state but no draw reading
 * — its current is what charges it — so a laptop on its adapter would have no power figure at all;
 * powertop reads RAPL then, and so does this: the board's power monitor or RAPL (whichever
 * primarySensor would pick without the battery) stands in. The charge state always comes from the
 * battery.
 *
 * Both are read every time, so the stand-in's watts cover the last interval only. Energy counters
 * are not passed on: a RAPL counter keeps counting while the battery is the draw, so the power
 * meter integrates watts instead.
 */
import type { PowerReading, PowerSensor, SensorDescription } from './sensor.js';

export class BatteryDrawSensor implements PowerSensor {
  readonly parts: readonly PowerSensor[];

  constructor(readonly battery: PowerSensor, readonly draw: PowerSensor) {
    this.parts = [battery, draw];
  }

  async read(): Promise<PowerReading> {
    const [b, d] = await Promise.all([this.battery.read(), this.draw.read()]);
    const { joules: _batteryJoules, ...battery } = b;
    if (b.watts !== undefined) return battery;
    const drawWatts = d.error === undefined ? d.watts : undefined;
    // A battery that cannot be read (pulled out, driver gone) leaves the stand-in's figure.
    if (b.error !== undefined) return d.error === undefined ? { ts: d.ts, ...(drawWatts !== undefined ? { watts: drawWatts } : {}) } : { ts: b.ts, error: `${b.error}; ${d.error}` };
    return { ...battery, ts: Math.max(b.ts, d.ts), ...(drawWatts !== undefined ? { watts: drawWatts } : {}) };
  }

  describe(): SensorDescription {
    const b = this.battery.describe();
    const d = this.draw.describe();
    const available = b.available || d.available;
    return {
      id: b.id,
      kind: 'battery',
      source: `${b.source} + ${d.source}`,
      detail: `${b.available ? b.detail : `(battery unavailable: ${b.error ?? ''})`}; while it does not discharge, the draw is read from ${d.id}`,
      available,
      ...(!available ? { error: `${b.error ?? ''}; ${d.error ?? ''}` } : {}),
    };
  }
}
