/**
 * The PowerSensor seam: drivers/power reads batteries, hwmon power monitors, RAPL counters or a
 * simulated battery; the governor and telemetry only see readings. A sensor never throws from
 * read(): a missing file or garbage content comes back as `error`, and the sensor reports itself
 * unavailable until a later read succeeds (a battery can be hot-plugged).
 */
export interface PowerChannel {
  label: string;
  watts?: number;
  volts?: number;
  amps?: number;
}

export interface PowerReading {
  /** Clock milliseconds when the reading was taken. */
  ts: number;
  /** Power drawn now (or averaged since the previous read, for energy counters). */
  watts?: number;
  /** Energy consumed since the sensor was created: a monotonic counter (RAPL, simulated battery). */
  joules?: number;
  /** State of charge, 0–100. */
  batteryPct?: number;
  /** Energy left in the battery and when full, in watt-hours. */
  energyWh?: number;
  energyFullWh?: number;
  volts?: number;
  /** Current; the sign is what the driver reports (many report discharge as negative). */
  amps?: number;
  /** Supply status as the kernel spells it: Charging, Discharging, Full, Not charging, Unknown. */
  status?: string;
  /** An external supply (mains adapter, USB-C port) is connected and delivering. */
  online?: boolean;
  /** Die or board temperature, for a thermal limit. */
  celsius?: number;
  /** Per-rail figures of multi-channel monitors (INA3221), per-domain figures of RAPL. */
  channels?: PowerChannel[];
  /** Why this reading has no values; set exactly when the sensor is unavailable. */
  error?: string;
}

/**
 * battery: a battery or UPS (its power is the device's draw while it discharges); supply: an
 * external supply (mains adapter, USB-C port), whose figures are not the device's draw; hwmon and
 * iio: board power monitors (hwmon class, or the IIO interface of L4T r32's ina3221x driver).
 */
export type SensorKind = 'battery' | 'supply' | 'hwmon' | 'iio' | 'rapl' | 'thermal' | 'simulated';

export interface SensorDescription {
  /** Stable across reboots, e.g. "power_supply:BAT0", "hwmon:ina3221@1-0040", "rapl:intel-rapl:0". */
  id: string;
  kind: SensorKind;
  /** Where it reads from: a sysfs directory, or "simulation". */
  source: string;
  /** One line for people: chip, rails, capacity. */
  detail: string;
  available: boolean;
  /** The last error, while unavailable. */
  error?: string;
}

export interface PowerSensor {
  read(): Promise<PowerReading>;
  describe(): SensorDescription;
}
