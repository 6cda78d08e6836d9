/**
 * Batteries and supplies under class/power_supply/<name>/ (Linux power_supply ABI):
 * power_now µW, energy_now/energy_full µWh, voltage_now µV, current_now µA, charge_now/charge_full
 * µAh, capacity %, status text. Power comes from power_now, or voltage × current where the fuel
 * gauge reports only those (many ARM boards' gauges).
 */
import { basename, join } from 'node:path';
import type { PowerReading } from '../../runtime/power/sensor.js';
import { readInteger, readOptional, SysfsError } from './sysfs.js';
import { SysfsSensor, type SysfsSensorOptions } from './sysfs-sensor.js';

export class PowerSupplySensor extends SysfsSensor {
  constructor(dir: string, options: SysfsSensorOptions = {}) {
    super(`power_supply:${basename(dir)}`, 'battery', dir, options);
  }

  protected async sample(): Promise<Omit<PowerReading, 'ts'>> {
    await this.requireDir();
    const f = (name: string): string => join(this.dir, name);
    const [type, status, model, powerUw, voltageUv, currentUa, energyUwh, energyFullUwh, chargeUah, chargeFullUah, capacity] = await Promise.all([
      readOptional(f('type')), readOptional(f('status')), readOptional(f('model_name')),
      readInteger(f('power_now'), 'µW'), readInteger(f('voltage_now'), 'µV'), readInteger(f('current_now'), 'µA'),
      readInteger(f('energy_now'), 'µWh'), readInteger(f('energy_full'), 'µWh'),
      readInteger(f('charge_now'), 'µAh'), readInteger(f('charge_full'), 'µAh'), readInteger(f('capacity'), '%'),
    ]);
    if (type === undefined && status === undefined && powerUw === undefined && voltageUv === undefined && capacity === undefined) {
      throw new SysfsError(this.dir, 'not a power supply: no type, status, power_now, voltage_now or capacity');
    }
    this.detail = [type ?? 'supply', model].filter(Boolean).join(' ');
    const volts = voltageUv !== undefined ? voltageUv / 1e6 : undefined;
    const amps = currentUa !== undefined ? currentUa / 1e6 : undefined;
    const watts = powerUw !== undefined ? Math.abs(powerUw) / 1e6 : volts !== undefined && amps !== undefined ? Math.abs(volts * amps) : undefined;
    // Charge-only gauges: energy ≈ charge × present voltage (a stated approximation).
    const energyWh = energyUwh !== undefined ? energyUwh / 1e6 : chargeUah !== undefined && volts !== undefined ? (chargeUah / 1e6) * volts : undefined;
    const energyFullWh = energyFullUwh !== undefined ? energyFullUwh / 1e6 : chargeFullUah !== undefined && volts !== undefined ? (chargeFullUah / 1e6) * volts : undefined;
    const batteryPct = capacity ?? (energyUwh !== undefined && energyFullUwh ? (100 * energyUwh) / energyFullUwh
      : chargeUah !== undefined && chargeFullUah ? (100 * chargeUah) / chargeFullUah : undefined);
    if (watts === undefined && batteryPct === undefined) {
      throw new SysfsError(this.dir, 'reports neither power (power_now, or voltage_now with current_now) nor charge (capacity, energy_now, charge_now)');
    }
    const r: Omit<PowerReading, 'ts'> = {};
    if (watts !== undefined) r.watts = watts;
    if (batteryPct !== undefined) r.batteryPct = Math.min(Math.max(batteryPct, 0), 100);
    if (energyWh !== undefined) r.energyWh = energyWh;
    if (energyFullWh !== undefined) r.energyFullWh = energyFullWh;
    if (volts !== undefined) r.volts = volts;
    if (amps !== undefined) r.amps = amps;
    if (status !== undefined) r.status = status;
    return r;
  }
}

/** Supplies worth watching: batteries and UPSes, and anything reporting power or current. */
export async function isPowerSupplyWorthReading(dir: string): Promise<boolean> {
  const type = await readOptional(join(dir, 'type')).catch(() => undefined);
  if (type === 'Battery' || type === 'UPS') return true;
  const has = async (name: string): Promise<boolean> => (await readOptional(join(dir, name)).catch(() => 'unreadable')) !== undefined;
  return (await has('power_now')) || (await has('current_now'));
}
