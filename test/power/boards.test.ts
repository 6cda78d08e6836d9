/**
 * Real boards' sysfs layouts (fixture trees built from the kernel ABI documents, NVIDIA's L4T power
 * documentation and the readers of jtop and powertop) and the defects found on them: one test per
 * layout and per defect, through the library. test/power/cli.test.ts runs the same trees through
 * `edgerun power`.
 */
import { execFileSync } from 'node:child_process';
import { cp, open, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyOf, removeCopies, sys } from './fixture-trees.js';
import { ManualClock } from '../../runtime/power/clock.js';
import type { PowerSensor } from '../../runtime/power/sensor.js';
import { detectSensors, primarySensor } from '../../drivers/power/detect.js';
import { ExternalSupplySensor, PowerSupplySensor } from '../../drivers/power/power-supply.js';
import { RaplSensor, MIN_WATTS_INTERVAL_MS } from '../../drivers/power/rapl.js';
import { ThermalZoneSensor } from '../../drivers/power/thermal-zone.js';
import { MAX_ATTRIBUTE_BYTES } from '../../drivers/power/sysfs.js';

afterEach(removeCopies);

const byId = (sensors: PowerSensor[], id: string): PowerSensor => {
  const found = sensors.find((s) => s.describe().id === id);
  if (!found) throw new Error(`no ${id} among ${sensors.map((s) => s.describe().id).join(', ')}`);
  return found;
};

describe('Jetson under L4T r32: INA3221 through IIO (bus/i2c/drivers/ina3221x/*/iio:deviceN)', () => {
  it('Nano: one chip, POM_5V_IN is the board; in_power mW, in_voltage mV, in_current mA', async () => {
    const sensors = await detectSensors(sys('jetson-nano-r32'));
    const chip = byId(sensors, 'iio:ina3221x@6-0040');
    const r = await chip.read();
    expect(r.error).toBeUndefined();
    expect(r.watts).toBeCloseTo(2.964, 6); // in_power0_input 2964 mW
    expect(r.volts).toBeCloseTo(5.008, 6);
    expect(r.amps).toBeCloseTo(0.592, 6);
    expect(r.channels).toEqual([
      { label: 'POM_5V_IN', volts: 5.008, amps: 0.592, watts: 2.964 },
      { label: 'POM_5V_GPU', volts: 5.016, amps: 0.04, watts: 0.2 },
      { label: 'POM_5V_CPU', volts: 5.008, amps: 0.2, watts: 1.001 },
    ]);
    expect(chip.describe()).toMatchObject({ kind: 'iio', available: true, detail: 'ina3221x: POM_5V_IN, POM_5V_GPU, POM_5V_CPU (reading POM_5V_IN)' });
    expect(primarySensor(sensors)).toBe(chip);
  });

  it('TX1: one chip on I2C bus 1, VDD_IN is the board', async () => {
    const sensors = await detectSensors(sys('jetson-tx1-r32'));
    expect(sensors.map((s) => s.describe().id)).toEqual(['iio:ina3221x@1-0040']);
    const r = await primarySensor(sensors)!.read();
    expect(r.watts).toBeCloseTo(4.446, 6);
    expect(r.channels!.map((c) => c.label)).toEqual(['VDD_IN', 'VDD_GPU', 'VDD_CPU']);
  });

  it('TX2: two chips; the one carrying VDD_IN stands for the board, not the first found', async () => {
    const sensors = await detectSensors(sys('jetson-tx2-r32'));
    expect(sensors.filter((s) => s.describe().kind === 'iio').map((s) => s.describe().id)).toEqual(['iio:ina3221x@0-0040', 'iio:ina3221x@0-0041']);
    const primary = primarySensor(sensors)!;
    expect(primary.describe().id).toBe('iio:ina3221x@0-0041');
    expect((await primary.read()).watts).toBeCloseTo(3.055, 6);
  });

  it('AGX Xavier: no input rail, so the board is the sum of both chips\' rails (as jtop sums them)', async () => {
    const sensors = await detectSensors(sys('jetson-xavier-r32'));
    const first = await byId(sensors, 'iio:ina3221x@1-0040').read();
    expect(first.watts).toBeCloseTo(0 + 1.454 + 3.443, 6); // GPU + CPU + SOC, mW from in_power
    const primary = primarySensor(sensors)!;
    expect(primary.describe()).toMatchObject({ id: 'sum:iio:ina3221x@1-0040+iio:ina3221x@1-0041', kind: 'iio', available: true });
    const r = await primary.read();
    expect(r.watts).toBeCloseTo(1.454 + 3.443 + 0 + 0.535 + 1.726, 6);
    expect(r.channels!.map((c) => c.label)).toEqual(['iio:ina3221x@1-0040', 'iio:ina3221x@1-0041']);
  });

  it('a chip that fails makes the sum unavailable rather than a lower reading', async () => {
    const root = await copyOf('jetson-xavier-r32');
    const primary = primarySensor(await detectSensors(root))!;
    await writeFile(join(root, 'devices/3180000.i2c/i2c-1/1-0041/iio:device1/in_power2_input'), 'garbage\n');
    const r = await primary.read();
    expect(r.watts).toBeUndefined();
    expect(r.error).toMatch(/^iio:ina3221x@1-0041: .*in_power2_input: expected an integer in mW, got "garbage"/);
    expect(primary.describe().available).toBe(false);
  });

  it('a thermal zone reading -256000 (sensor powered off) is unavailable, not -256 °C', async () => {
    const cv = new ThermalZoneSensor(join(sys('jetson-xavier-r32'), 'class/thermal/thermal_zone5'));
    const r = await cv.read();
    expect(r.celsius).toBeUndefined();
    expect(r.error).toMatch(/thermal_zone5\/temp: offline/);
    expect(cv.describe()).toMatchObject({ available: false, detail: 'CV0-therm' });
  });
});

describe('RAPL sub-zones, read by name as powertop does', () => {
  const PKG = 'devices/virtual/powercap/intel-rapl/intel-rapl:0';

  it('package + dram; core and uncore are inside the package and never added', async () => {
    const root = await copyOf('laptop');
    const clock = new ManualClock(0);
    const s = new RaplSensor(join(root, 'class/powercap/intel-rapl:0'), { clock });
    await s.read();
    const bump = async (path: string, from: number, uj: number): Promise<void> => writeFile(join(root, PKG, path, 'energy_uj'), `${from + uj}\n`);
    await bump('.', 27318046751, 10_000_000);
    await bump('intel-rapl:0:0', 14511097834, 6_000_000);
    await bump('intel-rapl:0:1', 702418226, 1_000_000);
    await bump('intel-rapl:0:2', 1893302541, 2_000_000);
    clock.advance(1000);
    const r = await s.read();
    expect(r.watts).toBeCloseTo(12, 9); // package 10 W + dram 2 W
    expect(r.joules).toBeCloseTo(12, 9);
    expect(r.channels).toEqual([
      { label: 'package-0', watts: expect.closeTo(10, 9) }, { label: 'core', watts: expect.closeTo(6, 9) },
      { label: 'uncore', watts: expect.closeTo(1, 9) }, { label: 'dram', watts: expect.closeTo(2, 9) },
    ]);
  });

  it('a two-socket server: dram is each package\'s first sub-zone; the device is the sum of both packages with their DRAM', async () => {
    const root = await copyOf('server-2s');
    const clock = new ManualClock(0);
    const sensors = await detectSensors(root, { clock });
    expect(sensors.map((s) => `${s.describe().id}: ${s.describe().detail}`)).toEqual([
      'rapl:intel-rapl:0: package-0 + dram (wraps at 262143 J)', 'rapl:intel-rapl:1: package-1 + dram (wraps at 262143 J)',
    ]);
    const primary = primarySensor(sensors)!;
    expect(primary.describe().id).toBe('sum:rapl:intel-rapl:0+rapl:intel-rapl:1');
    const zone = (s: number, sub = ''): string => join(root, `devices/virtual/powercap/intel-rapl/intel-rapl:${s}`, sub, 'energy_uj');
    await writeFile(zone(0), `${120381731562 + 40_000_000}\n`);
    await writeFile(zone(0, 'intel-rapl:0:0'), `${30211889203 + 8_000_000}\n`);
    await writeFile(zone(1), `${98834120073 + 30_000_000}\n`);
    await writeFile(zone(1, 'intel-rapl:1:0'), `${28912007716 + 6_000_000}\n`);
    clock.advance(2000);
    const r = await primary.read();
    expect(r.watts).toBeCloseTo((40 + 8 + 30 + 6) / 2, 9);
    expect(r.joules).toBeCloseTo(84, 9);
  });

  it('the first reading has no watts, nor one taken right after it; the next one a real figure (never a 0 W first reading)', async () => {
    const root = await copyOf('laptop');
    const clock = new ManualClock(0);
    const s = new RaplSensor(join(root, 'class/powercap/intel-rapl:1'), { clock }); // psys
    expect((await s.read()).watts).toBeUndefined();
    clock.advance(MIN_WATTS_INTERVAL_MS - 1);
    const soon = await s.read();
    expect(soon.watts).toBeUndefined();
    expect(soon.joules).toBe(0);
    await writeFile(join(root, 'devices/virtual/powercap/intel-rapl/intel-rapl:1/energy_uj'), `${91624405273 + 250_000}\n`);
    clock.advance(1);
    expect((await s.read()).watts).toBeCloseTo(0.25 / (MIN_WATTS_INTERVAL_MS / 1000), 9);
  });
});

describe('supplies that are not the device\'s draw', () => {
  it('a USB-C (UCSI) port is a supply with its contract, never a battery nor the device\'s sensor (the board monitor is)', async () => {
    const sensors = await detectSensors(sys('jetson-orin-nano'));
    const port = byId(sensors, 'power_supply:ucsi-source-psy-1-00081');
    expect(port).toBeInstanceOf(ExternalSupplySensor);
    expect(port.describe()).toMatchObject({ kind: 'supply', available: true });
    const r = await port.read();
    expect(r).toMatchObject({ online: true });
    expect(r.watts).toBeUndefined();
    expect(primarySensor(sensors)!.describe().id).toBe('hwmon:ina3221@1-0040');
  });

  it('a laptop without its battery: the USB-C port does not become the device\'s sensor; RAPL psys does', async () => {
    const root = await copyOf('laptop');
    await rm(join(root, 'class/power_supply/BAT0'));
    const primary = primarySensor(await detectSensors(root))!;
    expect(primary.describe()).toMatchObject({ id: 'rapl:intel-rapl:1', kind: 'rapl' });
  });

  it('a mains adapter is reported online or not', async () => {
    const root = await copyOf('laptop');
    const ac = new ExternalSupplySensor(join(root, 'class/power_supply/AC'));
    expect(await ac.read()).toMatchObject({ online: false });
    expect(ac.describe()).toMatchObject({ id: 'power_supply:AC', kind: 'supply', detail: 'Mains offline' });
    await writeFile(join(root, 'devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0003:00/power_supply/AC/online'), '1\n');
    expect(await ac.read()).toMatchObject({ online: true });
  });

  it.each(['Charging', 'Full', 'Not charging'])('a battery that is %s gives its charge state but no draw reading', async (status) => {
    const root = await copyOf('laptop');
    await writeFile(join(root, 'devices/LNXSYSTM:00/LNXSYBUS:00/PNP0C0A:00/power_supply/BAT0/status'), `${status}\n`);
    const bat = new PowerSupplySensor(join(root, 'class/power_supply/BAT0'));
    const r = await bat.read();
    expect(r.error).toBeUndefined();
    expect(r.watts).toBeUndefined();
    expect(r).toMatchObject({ batteryPct: 66, status });
    expect(bat.describe().detail).toBe(`Battery 5B10W13975 (${status}: not a draw reading)`);
  });
});

describe('a laptop on its adapter: the battery has no draw reading, so RAPL stands in', () => {
  const BAT = 'devices/LNXSYSTM:00/LNXSYBUS:00/PNP0C0A:00/power_supply/BAT0';
  const PSYS = 'devices/virtual/powercap/intel-rapl/intel-rapl:1/energy_uj';

  it('discharging: the battery\'s power; charging: RAPL psys\'s, with the battery\'s charge state either way', async () => {
    const root = await copyOf('laptop');
    const clock = new ManualClock(0);
    const primary = primarySensor(await detectSensors(root, { clock }))!;
    expect(primary.describe()).toMatchObject({ id: 'power_supply:BAT0', kind: 'battery', available: true });
    expect(primary.describe().detail).toMatch(/the draw is read from rapl:intel-rapl:1$/);
    clock.advance(1000);
    expect(await primary.read()).toMatchObject({ watts: 8.456, batteryPct: 66, status: 'Discharging' });
    // Plugged in: before the fix a charging battery left the device with no power figure at all.
    await writeFile(join(root, BAT, 'status'), 'Charging\n');
    await writeFile(join(root, PSYS), `${91624405273 + 15_000_000}\n`);
    clock.advance(1000);
    const charging = await primary.read();
    expect(charging).toMatchObject({ batteryPct: 66, status: 'Charging' });
    expect(charging.watts).toBeCloseTo(15, 9);
    expect(charging.joules).toBeUndefined(); // RAPL's counter also ran while the battery was the draw
    // The battery pulled out: RAPL alone.
    await rm(join(root, 'class/power_supply/BAT0'));
    await writeFile(join(root, PSYS), `${91624405273 + 25_000_000}\n`);
    clock.advance(1000);
    const pulled = await primary.read();
    expect(pulled.error).toBeUndefined();
    expect(pulled.watts).toBeCloseTo(10, 9);
    expect(pulled.batteryPct).toBeUndefined();
  });

  it('a GPU\'s hwmon power (amdgpu power1_input) is listed but never stands for the device: RAPL does', async () => {
    const root = await copyOf('laptop');
    await rm(join(root, 'class/power_supply/BAT0'));
    const gpu = join(root, 'devices/pci0000:00/0000:00:08.1/0000:05:00.0/hwmon/hwmon5');
    await cp(join(root, 'devices/platform/coretemp.0/hwmon/hwmon2'), gpu, { recursive: true });
    await rm(join(gpu, 'device')); // the copy's link points at coretemp; the chip's device is its PCI address
    for (const [f, v] of [['name', 'amdgpu'], ['power1_input', '9000000'], ['in0_input', '775']] as const) await writeFile(join(gpu, f), `${v}\n`);
    await symlink('../../devices/pci0000:00/0000:00:08.1/0000:05:00.0/hwmon/hwmon5', join(root, 'class/hwmon/hwmon5'));
    const sensors = await detectSensors(root);
    const amdgpu = byId(sensors, 'hwmon:amdgpu@0000:05:00.0');
    expect(amdgpu.describe()).toMatchObject({ kind: 'hwmon', available: true });
    expect(amdgpu.describe().detail).toMatch(/one component's power, not the board's/);
    expect(primarySensor(sensors)!.describe().id).toBe('rapl:intel-rapl:1');
  });
});

describe('hwmon identity', () => {
  it('a battery\'s own hwmon entry is not listed (the battery is read through power_supply), let alone as broken', async () => {
    const sensors = await detectSensors(sys('laptop'));
    expect(sensors.filter((s) => s.describe().kind === 'hwmon')).toEqual([]);
    expect(sensors.every((s) => !s.describe().source.includes('hwmon1'))).toBe(true);
  });

  it('ids are the chip and its bus address, unchanged when hwmon numbers move after a reboot', async () => {
    const root = await copyOf('rpi4-ina219');
    const before = (await detectSensors(root)).map((s) => s.describe().id);
    await rename(join(root, 'class/hwmon/hwmon2'), join(root, 'class/hwmon/hwmon0-old'));
    await rename(join(root, 'class/hwmon/hwmon0'), join(root, 'class/hwmon/hwmon2'));
    await rename(join(root, 'class/hwmon/hwmon0-old'), join(root, 'class/hwmon/hwmon0'));
    const after = await detectSensors(root);
    expect(after.map((s) => s.describe().id)).toEqual(before);
    expect(byId(after, 'hwmon:ina219@1-0040').describe().source).toMatch(/class\/hwmon\/hwmon0$/);
  });
});

describe('hostile trees: bounded reads, no hangs', () => {
  const BAT = 'devices/LNXSYSTM:00/LNXSYBUS:00/PNP0C0A:00/power_supply/BAT0';

  it('a FIFO as an attribute is refused at once (no writer needed to return)', async () => {
    const root = await copyOf('laptop');
    await rm(join(root, BAT, 'power_now'));
    execFileSync('mkfifo', [join(root, BAT, 'power_now')]);
    const r = await new PowerSupplySensor(join(root, 'class/power_supply/BAT0')).read();
    expect(r.error).toMatch(/BAT0\/power_now: not a regular file \(a FIFO\)/);
    // The whole board still lists: the FIFO costs one sensor, not the command.
    expect((await detectSensors(root)).map((s) => s.describe().id)).toContain('rapl:intel-rapl:1');
  });

  it('a 1 GiB attribute is refused after one page, without reading it', async () => {
    const root = await copyOf('laptop');
    const big = await open(join(root, BAT, 'power_now'), 'w');
    await big.truncate(2 ** 30); // sparse: costs no disk
    await big.close();
    const before = process.memoryUsage().rss;
    const r = await new PowerSupplySensor(join(root, 'class/power_supply/BAT0')).read();
    expect(r.error).toMatch(new RegExp(`BAT0/power_now: larger than ${MAX_ATTRIBUTE_BYTES} bytes`));
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 2 ** 20);
  });

  it('a character device or a directory where an attribute should be is refused', async () => {
    const root = await copyOf('laptop');
    await rm(join(root, BAT, 'power_now'));
    await symlink('/dev/zero', join(root, BAT, 'power_now'));
    expect((await new PowerSupplySensor(join(root, 'class/power_supply/BAT0')).read()).error).toMatch(/power_now: not a regular file \(a character device\)/);
    await rm(join(root, BAT, 'power_now'));
    await cp(join(root, BAT, 'hwmon1'), join(root, BAT, 'power_now'), { recursive: true });
    expect((await new PowerSupplySensor(join(root, 'class/power_supply/BAT0')).read()).error).toMatch(/power_now: not a regular file \(a directory\)/);
  });

  it('exactly one page is still an attribute', async () => {
    const root = await copyOf('laptop');
    await writeFile(join(root, BAT, 'model_name'), 'M'.repeat(MAX_ATTRIBUTE_BYTES));
    const bat = new PowerSupplySensor(join(root, 'class/power_supply/BAT0'));
    expect((await bat.read()).error).toBeUndefined();
    expect(bat.describe().detail).toBe(`Battery ${'M'.repeat(MAX_ATTRIBUTE_BYTES)}`);
  });
});
