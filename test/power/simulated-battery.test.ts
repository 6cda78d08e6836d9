/** The simulated battery: drained by reported energy and idle power over device time, read like a sensor. */
import { describe, expect, it } from 'vitest';
import { LI_ION_OCV, SimulatedBattery } from '../../drivers/power/simulated-battery.js';
import { ManualClock } from '../../runtime/power/clock.js';

describe('simulated battery', () => {
  it('idle power and reported energy drain it in device time; watts are the average since the previous read', async () => {
    const clock = new ManualClock(0);
    const b = new SimulatedBattery({ clock, capacityWh: 2, idleW: 0.5 });
    const first = await b.read();
    expect(first).toMatchObject({ ts: 0, batteryPct: 100, energyWh: 2, energyFullWh: 2, joules: 0, status: 'Full' });
    clock.advance(3_600_000); // an hour at 0.5 W idle
    b.consume(360); // plus 0.1 Wh of inference
    const r = await b.read();
    expect(r.energyWh).toBeCloseTo(2 - 0.5 - 0.1, 9);
    expect(r.batteryPct).toBeCloseTo(70, 9);
    expect(r.joules).toBeCloseTo(0.6 * 3600, 6);
    expect(r.watts).toBeCloseTo(0.6, 9);
    expect(r.status).toBe('Discharging');
    expect(r.amps! * r.volts!).toBeCloseTo(0.6, 9);
  });

  it('the voltage follows the OCV curve of the cells, less the drop over the internal resistance under load', async () => {
    const clock = new ManualClock(0);
    const b = new SimulatedBattery({ clock, capacityWh: 10, cells: 2, internalOhms: 0.1, initialPct: 50 });
    expect(b.ocv(0.5)).toBeCloseTo(2 * 3.83, 9);
    expect(b.ocv(0.55)).toBeCloseTo(2 * (3.83 + 3.88) / 2, 9);
    expect(b.ocv(1)).toBeCloseTo(2 * LI_ION_OCV[LI_ION_OCV.length - 1]![1], 9);
    await b.read();
    clock.advance(1000);
    b.consume(7.66); // 7.66 W for a second
    const r = await b.read();
    // V = OCV − I·R with P = V·I
    expect(r.volts! * r.amps!).toBeCloseTo(7.66, 6);
    expect(r.volts).toBeCloseTo(b.ocv(r.batteryPct! / 100) - r.amps! * 0.1, 9);
    expect(r.volts).toBeLessThan(b.ocv(r.batteryPct! / 100));
  });

  it('an empty battery stops at 0 % and counts the energy it could not give', async () => {
    const clock = new ManualClock(0);
    const b = new SimulatedBattery({ clock, capacityWh: 0.001, idleW: 0 });
    b.consume(5);
    expect(b.pct).toBe(0);
    expect(b.consumedJ).toBeCloseTo(3.6, 9);
    expect(b.shortfallJ).toBeCloseTo(1.4, 9);
    expect(() => b.consume(-1)).toThrow(/finite number ≥ 0/);
    expect(() => new SimulatedBattery({ clock, capacityWh: 0 })).toThrow(/capacity must be positive/);
  });
});
