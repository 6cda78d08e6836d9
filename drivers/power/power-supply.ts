/**
 * Batteries and supplies under class/power_supply/<name>/ (Linux power_supply ABI,
 * Documentation/ABI/testing/sysfs-class-power): power_now µW, energy_now/energy_full µWh,
 * voltage_now µV, current_now µA, charge_now/charge_full µAh, capacity %, status text. Power comes
 * from power_now, or voltage × current where the fuel gauge reports only those (many ARM boards'
 * gauges). A battery's power is the device's draw only while it discharges (as powertop counts
 * it): charging, full or held at a threshold, it is charge power or nothing.
 *
 * External supplies (type Mains, USB, Wireless: AC adapters, USB-C/UCSI ports) are not batteries:
 * a UCSI port's voltage and current are the negotiated contract, not what this device draws. They
 * are listed as supplies with whether they are online, never as the device's power sensor.
 */
import { basename, join } from 'node:path';
import type { PowerReading } from '../../runtime/power/sensor.js';
import { readInteger, readOptional, readRequired, readRequiredInteger, SysfsError } from './sysfs.js';
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
    // Only a discharging battery's power is what the device draws (a gauge without status is assumed to).
    const discharging = status === undefined || status === 'Discharging';
    this.detail = [type ?? 'supply', model, discharging ? undefined : `(${status}: not a draw reading)`].filter(Boolean).join(' ');
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
    if (watts !== undefined && discharging) r.watts = watts;
    if (batteryPct !== undefined) r.batteryPct = Math.min(Math.max(batteryPct, 0), 100);
    if (energyWh !== undefined) r.energyWh = energyWh;
    if (energyFullWh !== undefined) r.energyFullWh = energyFullWh;
    if (volts !== undefined) r.volts = volts;
    if (amps !== undefined) r.amps = amps;
    if (status !== undefined) r.status = status;
    return r;
  }
}

const EXTERNAL_TYPES = new Set(['Mains', 'USB', 'Wireless']);

/** A mains adapter, USB(-C) port or wireless charger: online or not; its figures are not the device's draw. */
export class ExternalSupplySensor extends SysfsSensor {
  constructor(dir: string, options: SysfsSensorOptions = {}) {
    super(`power_supply:${basename(dir)}`, 'supply', dir, options);
  }

  protected async sample(): Promise<Omit<PowerReading, 'ts'>> {
    await this.requireDir();
    const f = (name: string): string => join(this.dir, name);
    const [type, online, usbType, model] = await Promise.all([
      readRequired(f('type')), readRequiredInteger(f('online'), '(0 or 1)'), readOptional(f('usb_type')), readOptional(f('model_name')),
    ]);
    // usb_type lists the types the port can be with the active one in brackets: "C [PD] PD_PPS".
    const active = usbType !== undefined ? /\[([^\]]+)\]/.exec(usbType)?.[1] : undefined;
    this.detail = [type, active, model, online ? 'online' : 'offline', type === 'USB' ? '(a port: its figures are the negotiated contract, not this device\'s draw)' : undefined].filter(Boolean).join(' ');
    return { online: online !== 0 };
  }
}

/** The sensor for a class/power_supply entry, by its type; undefined for entries that report nothing of use. */
export async function powerSupplySensor(dir: string, options: SysfsSensorOptions = {}): Promise<SysfsSensor | undefined> {
  const type = await readOptional(join(dir, 'type')).catch(() => undefined);
  if (type !== undefined && EXTERNAL_TYPES.has(type)) return new ExternalSupplySensor(dir, options);
  if (type === 'Battery' || type === 'UPS') return new PowerSupplySensor(dir, options);
  const has = async (name: string): Promise<boolean> => (await readOptional(join(dir, name)).catch(() => 'unreadable')) !== undefined;
  return (await has('power_now')) || (await has('current_now')) ? new PowerSupplySensor(dir, options) : undefined;
}
