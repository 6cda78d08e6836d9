/** `edgerun power` as a user runs it, against the fixture trees. */
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { edgerun, lastJson } from '../helpers/cli.js';

const root = (board: string): string => `test/power/fixtures/${board}/sys`;

describe('edgerun power', () => {
  it('--list names each sensor, whether it works, and the one that stands for the device', async () => {
    const r = await edgerun(['power', '--list', '--root', root('jetson-orin-nano')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\* hwmon:ina3221@1-0040 +hwmon +ok +ina3221: VDD_IN, VDD_CPU_GPU_CV, VDD_SOC/);
    expect(r.stdout).toMatch(/device power is read from hwmon:ina3221@1-0040/);
    const json = lastJson((await edgerun(['power', '--json', '--root', root('rpi4-ina219')])).stdout);
    expect(json.primary).toBe('power_supply:bq27441-0');
    expect((json.sensors as { id: string }[]).map((s) => s.id)).toEqual(['power_supply:bq27441-0', 'hwmon:ina219@1-0040', 'thermal:thermal_zone0']);
  });

  it('a broken board is listed with every reason, and exits 0', async () => {
    const r = await edgerun(['power', '--list', '--root', root('broken')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/power_supply:BAT1 +battery +unavailable +.*BAT1\/voltage_now: expected an integer in µV, got "3.8V"/);
    expect(r.stdout).toMatch(/no available sensor measures the device's power/);
  });

  it('--watch prints rounds of readings (JSON: one line per round), --sensor selects', async () => {
    const r = await edgerun(['power', '--watch', '--count', '2', '--interval', '20', '--json', '--root', root('laptop'), '--sensor', 'power_supply:BAT0', 'rapl:intel-rapl:0']);
    expect(r.code).toBe(0);
    const rounds = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { round: number; readings: { id: string; watts?: number; joules?: number }[] });
    expect(rounds.map((x) => x.round)).toEqual([0, 1]);
    expect(rounds[1]!.readings.map((x) => x.id)).toEqual(['power_supply:BAT0', 'rapl:intel-rapl:0']);
    expect(rounds[1]!.readings[0]!.watts).toBeCloseTo(8.456, 6);
    // RAPL: no watts until a second sample (detection's probe was microseconds ago), never a 0 W first reading.
    expect(rounds[0]!.readings[1]!.watts).toBeUndefined();
    expect(rounds[1]!.readings[1]!.joules).toBe(0); // the counter file does not move in a fixture
  });

  it('nothing to watch, or an unknown sensor: a clear error and a failing exit code', async () => {
    const none = await edgerun(['power', '--watch', '--count', '1', '--root', 'test/power/fixtures/no-such-board']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no power sensors under test\/power\/fixtures\/no-such-board; nothing to watch/);
    const unknown = await edgerun(['power', '--watch', '--count', '1', '--root', root('laptop'), '-s', 'hwmon:hwmon9']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no sensor 'hwmon:hwmon9'; found: power_supply:AC, power_supply:BAT0, power_supply:ucsi-source-psy-USBC000:001, rapl:intel-rapl:0/);
  });

  it('real boards through --json: Jetson r32 IIO monitors, supplies that are not the draw, RAPL sub-zones, offline zones', async () => {
    const boards = ['jetson-nano-r32', 'jetson-tx2-r32', 'jetson-xavier-r32', 'laptop'] as const;
    const runs = await Promise.all(boards.map((b) => edgerun(['power', '--json', '--root', root(b)])));
    const out = Object.fromEntries(boards.map((b, i) => {
      expect(runs[i]!.code).toBe(0);
      return [b, lastJson(runs[i]!.stdout) as { primary: string | null; sensors: { id: string; kind: string; available: boolean; detail: string; error?: string }[] }];
    }));
    expect(out['jetson-nano-r32']!.primary).toBe('iio:ina3221x@6-0040');
    expect(out['jetson-tx2-r32']!.primary).toBe('iio:ina3221x@0-0041');
    expect(out['jetson-xavier-r32']!.primary).toBe('sum:iio:ina3221x@1-0040+iio:ina3221x@1-0041');
    const xavier = await edgerun(['power', '--list', '--root', root('jetson-xavier-r32')]);
    expect(xavier.stdout).toMatch(/\* iio:ina3221x@1-0040 +iio +ok +ina3221x: GPU, CPU, SOC \(reading sum of GPU \+ CPU \+ SOC\)/);
    expect(xavier.stdout).toMatch(/\* iio:ina3221x@1-0041 +iio +ok/);
    expect(xavier.stdout).toMatch(/device power is read from sum:iio:ina3221x@1-0040\+iio:ina3221x@1-0041/);
    expect(out['jetson-xavier-r32']!.sensors.find((s) => s.id === 'thermal:thermal_zone5')).toMatchObject({ available: false, error: expect.stringMatching(/offline/) });
    const laptop = out.laptop!;
    expect(laptop.primary).toBe('power_supply:BAT0');
    expect(laptop.sensors.filter((s) => s.kind === 'hwmon')).toEqual([]); // BAT0's own hwmon entry is not a sensor
    expect(laptop.sensors.filter((s) => s.kind === 'supply').map((s) => `${s.id}: ${s.detail}`)).toEqual([
      'power_supply:AC: Mains offline',
      "power_supply:ucsi-source-psy-USBC000:001: USB PD online (a port: its figures are the negotiated contract, not this device's draw)",
    ]);
    expect(laptop.sensors.find((s) => s.id === 'rapl:intel-rapl:0')!.detail).toBe('package-0 + dram (core, uncore inside the package) (wraps at 262143 J)');
  });

  it('--list and --watch on a tree with a FIFO for an attribute: no hang, the sensor unavailable with the reason', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edgerun-fifo-'));
    try {
      await cp('test/power/fixtures/laptop', dir, { recursive: true, verbatimSymlinks: true });
      const attr = join(dir, 'sys/devices/LNXSYSTM:00/LNXSYBUS:00/PNP0C0A:00/power_supply/BAT0/power_now');
      await rm(attr);
      execFileSync('mkfifo', [attr]);
      const [list, watch] = await Promise.all([
        edgerun(['power', '--list', '--root', join(dir, 'sys')]),
        edgerun(['power', '--watch', '--count', '2', '--interval', '20', '--root', join(dir, 'sys'), '-s', 'power_supply:BAT0', 'rapl:intel-rapl:1']),
      ]);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/power_supply:BAT0 +battery +unavailable +.*BAT0\/power_now: not a regular file \(a FIFO\)/);
      expect(watch.code).toBe(0);
      // The first RAPL row has no watts yet: n/a, not 0.000.
      expect(watch.stdout.split('\n')[2]).toMatch(/rapl:intel-rapl:1 +n\/a +0\.000/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
