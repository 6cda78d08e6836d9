/** `edgerun power` as a user runs it, against the fixture trees. */
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
});
