/** Shared by the power tests: the bundled models, their observed graph summaries, the device profiles. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { loadProfile } from '../../drivers/crossbar/profile.js';
import { loadModel, type LoadedModel } from '../../runtime/model/load.js';
import type { GraphSummary } from '../../runtime/model/inspect.js';
import { observedSummary } from '../../runtime/power/model-summary.js';
import { deviceEnergyOf } from '../../runtime/power/energy-constants.js';
import { EnergyModel } from '../../runtime/power/energy-model.js';
import { InferenceCostTable } from '../../runtime/power/inference-costs.js';

export const MODELS = ['mlp', 'cnn'] as const;
export type ModelName = (typeof MODELS)[number];

export async function readBundledModel(name: ModelName): Promise<LoadedModel> {
  const path = fileURLToPath(new URL(`../../models/${name}.onnx`, import.meta.url));
  return loadModel(await readFile(path), { source: path });
}

let summaries: Promise<Record<ModelName, GraphSummary>> | undefined;

/** Graph summaries at batch 1, observed once per test file with a real onnxruntime session. */
export function bundledSummaries(): Promise<Record<ModelName, GraphSummary>> {
  summaries ??= (async () => {
    const digital = new DigitalBackend();
    try {
      const out = {} as Record<ModelName, GraphSummary>;
      for (const m of MODELS) out[m] = await observedSummary(digital, await readBundledModel(m));
      return out;
    } finally {
      await digital.dispose();
    }
  })();
  return summaries;
}

/** The energy model and tile geometry of a crossbar profile (energy: its section, or the defaults). */
export function profileEnergy(name: string): { energy: EnergyModel; tile: { rows: number; cols: number }; adcBits: number | null; dacBits: number | null } {
  const p = loadProfile(name);
  return { energy: new EnergyModel(deviceEnergyOf(p).energy), tile: { rows: p.tile.rows, cols: p.tile.cols }, adcBits: p.adc.bits, dacBits: p.dac.bits };
}

export async function costTable(profile: string, amortiseOver = 100_000): Promise<InferenceCostTable> {
  const { energy, tile, dacBits } = profileEnergy(profile);
  const table = new InferenceCostTable({ energy, tile, dacBits, amortiseOver });
  const s = await bundledSummaries();
  for (const m of MODELS) table.add(m, s[m]);
  return table;
}
