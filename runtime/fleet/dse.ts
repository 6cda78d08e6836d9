/**
 * Design-space exploration: the grid of configurations (model size × profile × ADC/DAC bits × tile
 * size × device age, plus each model on the digital CPU), measured one by one through an injected
 * `measure` (apps/ runs the real backends), then the Pareto front and the iso-accuracy answer.
 */
import type { EnergyBreakdown } from '../power/energy-model.js';
import { isoAccuracy, paretoFront, type DesignPoint, type IsoAccuracyRow } from './pareto.js';

export interface DseGrid {
  /** Model files (a family of sizes). */
  models: string[];
  profiles: string[];
  adcBits: number[];
  dacBits: number[];
  /** Square tile sizes (rows = cols). */
  tiles: number[];
  /** Device ages, as `edgerun eval --age` takes them (1s, 1h, 1d, 1y). */
  ages: string[];
}

export type DseConfig =
  | { placement: 'digital'; model: string }
  | { placement: 'analog'; model: string; profile: string; adcBits: number; dacBits: number; tile: number; age: string };

export interface Measured {
  accuracy: number;
  energy: EnergyBreakdown;
  /** Emulation time per inference on this machine, ms. */
  latencyMs: number;
  /** Weights of the model (its size). */
  params: number;
}

export interface DsePoint extends DesignPoint {
  config: DseConfig;
  params: number;
  energy: EnergyBreakdown;
  pareto: boolean;
}

export interface DseResult {
  kind: 'edgerun-dse';
  grid: DseGrid;
  samples: number;
  points: DsePoint[];
  isoAccuracy: IsoAccuracyRow<DsePoint>[];
}

/** Every configuration of the grid: per model, digital first, then the analog product. */
export function configurations(grid: DseGrid): DseConfig[] {
  for (const [name, list] of Object.entries(grid)) if (list.length === 0) throw new Error(`the sweep needs at least one value of ${name}`);
  return grid.models.flatMap((model): DseConfig[] => [
    { placement: 'digital', model },
    ...grid.profiles.flatMap((profile) => grid.adcBits.flatMap((adcBits) => grid.dacBits.flatMap((dacBits) =>
      grid.tiles.flatMap((tile) => grid.ages.map((age): DseConfig => ({ placement: 'analog', model, profile, adcBits, dacBits, tile, age })))))),
  ]);
}

export function describeConfig(c: DseConfig): string {
  const name = c.model.replace(/^.*\//, '').replace(/\.onnx$/, '');
  return c.placement === 'digital' ? `${name} digital` : `${name} ${c.profile} ADC${c.adcBits} DAC${c.dacBits} tile${c.tile} age ${c.age}`;
}

export async function exploreDesignSpace(
  grid: DseGrid,
  o: { samples: number; targets: number[]; measure: (c: DseConfig) => Promise<Measured>; onPoint?: (done: number, total: number, p: DsePoint) => void },
): Promise<DseResult> {
  const configs = configurations(grid);
  const measured: Omit<DsePoint, 'pareto'>[] = [];
  for (const config of configs) {
    const m = await o.measure(config);
    const point = { id: describeConfig(config), placement: config.placement, accuracy: m.accuracy, energyJ: m.energy.total, latencyMs: m.latencyMs, config, params: m.params, energy: m.energy };
    measured.push(point);
    o.onPoint?.(measured.length, configs.length, { ...point, pareto: false });
  }
  const front = new Set(paretoFront(measured));
  const points = measured.map((p) => ({ ...p, pareto: front.has(p) }));
  return { kind: 'edgerun-dse', grid, samples: o.samples, points, isoAccuracy: isoAccuracy(points, o.targets) };
}
