/** Power sensors against fixture trees that mirror real sysfs (symlinked class entries, trailing newlines). */
import { cp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyOf, removeCopies, sys } from './fixture-trees.js';
import { ManualClock } from '../../runtime/power/clock.js';
import { PowerSupplySensor } from '../../drivers/power/power-supply.js';
import { HwmonSensor } from '../../drivers/power/hwmon.js';
import { RaplSensor } from '../../drivers/power/rapl.js';
import { ThermalZoneSensor } from '../../drivers/power/thermal-zone.js';
import { detectSensors, primarySensor } from '../../drivers/power/detect.js';

afterEach(removeCopies);

describe('power_supply battery', () => {
  it('reads an ACPI laptop battery: power_now µW, energy µWh, voltage µV, capacity, status', async () => {
    const s = new PowerSupplySensor(join(sys('laptop'), 'class/power_supply/BAT0'), { clock: new ManualClock(5) });
    const r = await s.read();
    expect(r.error).toBeUndefined();
    expect(r.ts).toBe(5);
    expect(r.watts).toBeCloseTo(8.456, 6);
    expect(r.volts).toBeCloseTo(11.812, 6);
    expect(r.energyWh).toBeCloseTo(34.393, 6);
    expect(r.energyFullWh).toBeCloseTo(52.11, 6);
    expect(r.batteryPct).toBe(66);
    expect(r.status).toBe('Discharging');
    expect(s.describe()).toMatchObject({ id: 'power_supply:BAT0', kind: 'battery', available: true, detail: 'Battery 5B10W13975' });
  });

  it('derives watts from voltage × current when power_now is missing (bq27441 fuel gauge, negative discharge current)', async () => {
    const s = new PowerSupplySensor(join(sys('rpi4-ina219'), 'class/power_supply/bq27441-0'));
    const r = await s.read();
    expect(r.watts).toBeCloseTo(3.812 * 0.802, 6);
    expect(r.amps).toBeCloseTo(-0.802, 6);
    expect(r.batteryPct).toBe(73);
    // charge-only gauge: energy ≈ charge × present voltage
    expect(r.energyWh).toBeCloseTo(1.76 * 3.812, 6);
  });

  it('garbage content: a clear error naming the file and what it holds; the sensor is unavailable, nothing throws', async () => {
    const s = new PowerSupplySensor(join(sys('broken'), 'class/power_supply/BAT1'));
    const r = await s.read();
    expect(r.watts).toBeUndefined();
    expect(r.error).toMatch(/BAT1\/voltage_now: expected an integer in µV, got "3.8V"/);
    expect(s.describe()).toMatchObject({ available: false, error: r.error });
  });

  it('a battery that reports neither power nor charge is unavailable with the reason', async () => {
    const r = await new PowerSupplySensor(join(sys('broken'), 'class/power_supply/BAT2')).read();
    expect(r.error).toMatch(/reports neither power .* nor charge/);
  });

  it('a battery that disappears is unavailable, and available again when it comes back', async () => {
    const root = await copyOf('laptop');
    const dir = join(root, 'devices/LNXSYSTM:00/LNXSYBUS:00/PNP0C0A:00/power_supply/BAT0');
    const s = new PowerSupplySensor(join(root, 'class/power_supply/BAT0'));
    expect((await s.read()).error).toBeUndefined();
    const saved = `${dir}.saved`;
    await cp(dir, saved, { recursive: true });
    await rm(dir, { recursive: true });
    expect((await s.read()).error).toMatch(/BAT0: missing \(device removed or driver unloaded\)/);
    expect(s.describe().available).toBe(false);
    await cp(saved, dir, { recursive: true });
    expect((await s.read()).watts).toBeCloseTo(8.456, 6);
    expect(s.describe().available).toBe(true);
  });
});

describe('hwmon power monitors', () => {
  it('INA3221 on a Jetson: rails by label, bus mV × mA, the board input rail as the reading, shunt inputs never used as volts', async () => {
    const s = new HwmonSensor(join(sys('jetson-orin-nano'), 'class/hwmon/hwmon1'));
    const r = await s.read();
    expect(r.error).toBeUndefined();
    expect(r.watts).toBeCloseTo(5.064 * 1.624, 6);
    expect(r.volts).toBeCloseTo(5.064, 6);
    const byLabel = Object.fromEntries(r.channels!.map((c) => [c.label, c]));
    expect(byLabel.VDD_CPU_GPU_CV!.watts).toBeCloseTo(5.056 * 0.472, 6);
    expect(byLabel.VDD_SOC!.watts).toBeCloseTo(5.056 * 0.688, 6);
    // curr4 is the sum of currents; in4 is channel 1's shunt voltage (µV), not a bus voltage
    expect(byLabel['sum of channels']).toEqual({ label: 'sum of channels', amps: 2.784 });
    expect(s.describe().detail).toBe('ina3221: VDD_IN, VDD_CPU_GPU_CV, VDD_SOC, sum of channels (reading VDD_IN)');
  });

  it('a chosen channel by label or index', async () => {
    const dir = join(sys('jetson-orin-nano'), 'class/hwmon/hwmon1');
    expect((await new HwmonSensor(dir, { channel: 'VDD_SOC' }).read()).watts).toBeCloseTo(5.056 * 0.688, 6);
    expect((await new HwmonSensor(dir, { channel: 2 }).read()).watts).toBeCloseTo(5.056 * 0.472, 6);
    const missing = new HwmonSensor(dir, { channel: 'VDD_GPU' });
    expect((await missing.read()).error).toMatch(/no channel "VDD_GPU" with a power figure; channels: 1 \(VDD_IN\), 2 \(VDD_CPU_GPU_CV\), 3 \(VDD_SOC\)/);
  });

  it('INA219 (ina2xx): the driver\'s power1_input µW is used as is; in0 (shunt mV) is not a bus voltage', async () => {
    const r = await new HwmonSensor(join(sys('rpi4-ina219'), 'class/hwmon/hwmon2')).read();
    expect(r.watts).toBeCloseTo(3.12, 6);
    expect(r.volts).toBeCloseTo(5.104, 6);
    expect(r.amps).toBeCloseTo(0.612, 6);
  });

  it('a disabled INA3221 channel (no data) is left out, not an error', async () => {
    const root = await copyOf('jetson-orin-nano');
    const hw = join(root, 'devices/platform/bus@0/c240000.i2c/i2c-1/1-0040/hwmon/hwmon1');
    await rm(join(hw, 'curr3_input'));
    const r = await new HwmonSensor(join(root, 'class/hwmon/hwmon1')).read();
    expect(r.channels!.map((c) => c.label)).toEqual(['VDD_IN', 'VDD_CPU_GPU_CV', 'sum of channels']);
  });

  it('an empty attribute or a missing name: clear errors, sensor unavailable', async () => {
    const empty = new HwmonSensor(join(sys('broken'), 'class/hwmon/hwmon0'));
    expect((await empty.read()).error).toMatch(/hwmon0\/power1_input: expected an integer in µW, got an empty file/);
    const nameless = new HwmonSensor(join(sys('broken'), 'class/hwmon/hwmon1'));
    expect((await nameless.read()).error).toMatch(/hwmon1\/name: missing/);
    expect(nameless.describe().available).toBe(false);
  });
});

describe('RAPL powercap', () => {
  const PKG = 'devices/virtual/powercap/intel-rapl/intel-rapl:0';

  it('joules accumulate and watts come from successive reads', async () => {
    const root = await copyOf('laptop');
    const clock = new ManualClock(0);
    const s = new RaplSensor(join(root, 'class/powercap/intel-rapl:0'), { clock });
    const first = await s.read();
    expect(first).toMatchObject({ ts: 0, joules: 0 });
    expect(first.watts).toBeUndefined();
    await writeFile(join(root, PKG, 'energy_uj'), `${27318046751 + 7_500_000}\n`);
    clock.advance(500);
    const second = await s.read();
    expect(second.joules).toBeCloseTo(7.5, 9);
    expect(second.watts).toBeCloseTo(15, 9);
    expect(s.describe().detail).toBe('package-0 + dram (core, uncore inside the package) (wraps at 262143 J)');
  });

  it('wraps around at max_energy_range_uj', async () => {
    const root = await copyOf('laptop');
    const clock = new ManualClock(0);
    const max = 262143328850;
    await writeFile(join(root, PKG, 'energy_uj'), `${max - 1_000_000}\n`);
    const s = new RaplSensor(join(root, 'class/powercap/intel-rapl:0'), { clock });
    await s.read();
    await writeFile(join(root, PKG, 'energy_uj'), '3000000\n');
    clock.advance(1000);
    const r = await s.read();
    expect(r.joules).toBeCloseTo(4, 9); // 1 J up to the wrap + 3 J after it
    expect(r.watts).toBeCloseTo(4, 9);
  });

  it('garbage counter and missing range: clear errors, unavailable, never a crash', async () => {
    const garbage = new RaplSensor(join(sys('broken'), 'class/powercap/intel-rapl:0'));
    expect((await garbage.read()).error).toMatch(/intel-rapl:0\/energy_uj: expected an integer in µJ, got "-"/);
    const noRange = new RaplSensor(join(sys('broken'), 'class/powercap/intel-rapl:1'));
    expect((await noRange.read()).error).toMatch(/intel-rapl:1\/max_energy_range_uj: missing/);
    expect(noRange.describe().available).toBe(false);
  });

  it('a counter beyond its range is refused', async () => {
    const root = await copyOf('laptop');
    await writeFile(join(root, PKG, 'energy_uj'), '262143328851\n');
    expect((await new RaplSensor(join(root, 'class/powercap/intel-rapl:0')).read()).error).toMatch(/outside 0..max_energy_range_uj/);
  });
});

describe('thermal zones', () => {
  it('reads millidegrees as °C; garbage is an error', async () => {
    expect((await new ThermalZoneSensor(join(sys('jetson-orin-nano'), 'class/thermal/thermal_zone1')).read()).celsius).toBeCloseTo(50.125, 6);
    expect((await new ThermalZoneSensor(join(sys('broken'), 'class/thermal/thermal_zone0')).read()).error).toMatch(/temp: expected an integer in m°C, got "not a number"/);
  });
});

describe('detectSensors', () => {
  const summary = async (board: string): Promise<string[]> => (await detectSensors(sys(board))).map((s) => {
    const d = s.describe();
    return `${d.id} ${d.available ? 'ok' : 'unavailable'}`;
  });

  it('laptop: battery, AC adapter and USB-C port as supplies, top-level RAPL zones only, thermal zones; the battery\'s hwmon and temperature-only hwmons skipped', async () => {
    expect(await summary('laptop')).toEqual([
      'power_supply:AC ok', 'power_supply:BAT0 ok', 'power_supply:ucsi-source-psy-USBC000:001 ok',
      'rapl:intel-rapl:0 ok', 'rapl:intel-rapl:1 ok', 'thermal:thermal_zone0 ok', 'thermal:thermal_zone1 ok',
    ]);
  });

  it('Jetson: the INA3221 (not the fan); Raspberry Pi: fuel gauge and INA219 (not cpu_thermal or rpi_volt)', async () => {
    expect(await summary('jetson-orin-nano')).toEqual([
      'power_supply:ucsi-source-psy-1-00081 ok', 'hwmon:ina3221@1-0040 ok', 'thermal:thermal_zone0 ok', 'thermal:thermal_zone1 ok', 'thermal:thermal_zone2 unavailable',
    ]);
    expect(await summary('rpi4-ina219')).toEqual(['power_supply:bq27441-0 ok', 'hwmon:ina219@1-0040 ok', 'thermal:thermal_zone0 ok']);
  });

  it('a broken board: every sensor listed as unavailable with its reason; a dangling class entry is skipped', async () => {
    const sensors = await detectSensors(sys('broken'));
    expect(sensors.map((s) => s.describe().id)).toEqual([
      'power_supply:BAT1', 'power_supply:BAT2', 'hwmon:ina219@1-0040', 'hwmon:hwmon1', 'rapl:intel-rapl:0', 'rapl:intel-rapl:1', 'thermal:thermal_zone0',
    ]);
    for (const s of sensors) expect(s.describe()).toMatchObject({ available: false, error: expect.stringContaining('/sys/') });
    expect(primarySensor(sensors)).toBeUndefined();
  });

  it('a root with nothing under it gives no sensors; the primary sensor prefers a battery, then a board monitor, then RAPL psys', async () => {
    expect(await detectSensors(sys('no-such-board'))).toEqual([]);
    expect(primarySensor(await detectSensors(sys('rpi4-ina219')))!.describe().id).toBe('power_supply:bq27441-0');
    expect(primarySensor(await detectSensors(sys('jetson-orin-nano')))!.describe().id).toBe('hwmon:ina3221@1-0040');
    const laptop = await detectSensors(sys('laptop'));
    expect(primarySensor(laptop.filter((s) => s.describe().kind !== 'battery'))!.describe().detail).toMatch(/^psys/);
  });
});
