/**
 * Loads a model on the hybrid AnalogBackend with some analog-eligible layers forced digital — the
 * guard's "demote the worst layers" step. AnalogBackend.load has no such option yet, so this
 * repeats its steps (observe → partition → plan → program tiles → load digital segments) with
 * the chosen layers moved to the digital side; it uses only the hybrid modules' public API.
 * TODO(hybrid): replace with `AnalogBackend.load(model, { digitalLayers })` once it exists.
 */
import type { Backend, PreparedModel } from '../backend.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { observeValues } from '../model/observe.js';
import { partitionModel, type Partition } from '../model/partition.js';
import { buildPlan } from '../model/segments.js';
import { AnalogMatrix } from '../analog/analog-matrix.js';
import { AnalogLayerRunner } from '../hybrid/analog-layer.js';
import { HybridModel, type AnalogBackend } from '../hybrid/analog-backend.js';

export async function loadWithDigitalLayers(backend: AnalogBackend, digital: Backend, model: LoadedModel, digitalLayers: ReadonlySet<string>): Promise<HybridModel> {
  const info = backend.driver.info();
  const facts = await observeValues(digital, model);
  const full = partitionModel(model, { tileRows: info.tileRows, tileCols: info.tileCols, availableTiles: backend.allocator.available, fallbackOversized: true, facts });
  const partition: Partition = {
    layers: full.layers.filter((l) => !digitalLayers.has(l.name)),
    placements: full.placements.map((p) => (p.target === 'analog' && digitalLayers.has(p.name) ? { ...p, target: 'digital', reason: 'demoted to digital by the accuracy guard' } : p)),
  };
  const plan = buildPlan(model, partition, facts);
  const runners: AnalogLayerRunner[] = [];
  const segments = new Map<number, PreparedModel>();
  try {
    for (const layer of partition.layers) {
      runners.push(new AnalogLayerRunner(layer, layer.groupWeights.map((w, g) => new AnalogMatrix(backend.driver, backend.allocator, w, layer.k, layer.n, `node '${layer.name}'${layer.groupWeights.length > 1 ? ` group ${g}` : ''}`))));
    }
    for (const r of runners) for (const m of r.matrices) await m.program();
    for (const [i, step] of plan.steps.entries()) {
      if (step.kind === 'digital') segments.set(i, await digital.load(loadModel(step.bytes, { source: `${model.source} segment ${i}` })));
    }
  } catch (e) {
    backend.allocator.release(runners.flatMap((r) => r.matrices.flatMap((m) => m.tiles)));
    await Promise.all([...segments.values()].map((s) => s.dispose()));
    throw e;
  }
  return new HybridModel(backend, model, partition, plan, runners, segments, facts);
}
