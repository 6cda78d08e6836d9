/**
 * Which figure of a multi-rail power monitor (INA3221 on Jetson boards, hwmon or IIO) stands for
 * the board. Rails often contain one another: VDD_IN / POM_5V_IN is the whole module and the other
 * rails are parts of it, so the input rail alone is the board's power. Where a monitor has no input
 * rail (Jetson AGX Xavier: GPU, CPU, SOC on one chip, CV, VDDRQ, SYS5V on another) its rails are
 * separate and their sum is the total, as jtop computes it.
 */
import type { PowerChannel } from './sensor.js';

/** Board input rails as NVIDIA's L4T documentation names them. */
export const BOARD_INPUT_RAIL = /(^|_)(VDD_IN|VIN|IN|POM_5V_IN|VDD_5V_IN|SYS_IN)$/i;

export interface IndexedChannel extends PowerChannel {
  /** The channel number in the driver's attribute names. */
  index: number;
}

export type RailChoice =
  | { label: string; watts: number; volts?: number; amps?: number; inputRail: boolean }
  | { error: string };

/**
 * The chosen channel (by label or index), else the board input rail, else the sum of all rails
 * with a power figure.
 */
export function chooseRail(channels: readonly IndexedChannel[], want?: string | number): RailChoice {
  const withPower = channels.filter((c): c is IndexedChannel & { watts: number } => c.watts !== undefined);
  const listed = withPower.map((c) => `${c.index} (${c.label})`).join(', ') || 'none';
  if (want !== undefined) {
    const found = withPower.find((c) => (typeof want === 'number' ? c.index === want : c.label === want));
    if (!found) return { error: `no channel ${JSON.stringify(want)} with a power figure; channels: ${listed}` };
    return { ...pick(found), inputRail: BOARD_INPUT_RAIL.test(found.label) };
  }
  const input = withPower.find((c) => BOARD_INPUT_RAIL.test(c.label));
  if (input) return { ...pick(input), inputRail: true };
  if (!withPower.length) return { error: 'no channel with a power figure' };
  if (withPower.length === 1) return { ...pick(withPower[0]!), inputRail: false };
  return { label: `sum of ${withPower.map((c) => c.label).join(' + ')}`, watts: withPower.reduce((a, c) => a + c.watts, 0), inputRail: false };
}

function pick(c: IndexedChannel & { watts: number }): { label: string; watts: number; volts?: number; amps?: number } {
  return { label: c.label, watts: c.watts, ...(c.volts !== undefined ? { volts: c.volts } : {}), ...(c.amps !== undefined ? { amps: c.amps } : {}) };
}

/** A channel from the driver's figures; power is V × I where the driver does not compute it. */
export function railChannel(index: number, label: string, figures: { watts?: number; volts?: number; amps?: number }): IndexedChannel {
  const ch: IndexedChannel = { index, label };
  if (figures.volts !== undefined) ch.volts = figures.volts;
  if (figures.amps !== undefined) ch.amps = figures.amps;
  if (figures.watts !== undefined) ch.watts = figures.watts;
  else if (ch.volts !== undefined && ch.amps !== undefined) ch.watts = Math.abs(ch.volts * ch.amps);
  return ch;
}

/** A monitor's reading (the chosen figure, every rail) and its one-line description. */
export function railReading(chip: string, channels: readonly IndexedChannel[], rail: Exclude<RailChoice, { error: string }>): {
  reading: { watts: number; volts?: number; amps?: number; channels: PowerChannel[] };
  detail: string;
} {
  const reading: { watts: number; volts?: number; amps?: number; channels: PowerChannel[] } = { watts: rail.watts, channels: channels.map(({ index: _i, ...c }) => c) };
  if (rail.volts !== undefined) reading.volts = rail.volts;
  if (rail.amps !== undefined) reading.amps = rail.amps;
  return { reading, detail: `${chip}: ${channels.map((c) => c.label).join(', ')} (reading ${rail.label})` };
}
