import { inspectModel, macShare } from '../../../runtime/model/inspect.js';
import { observeValues, type ValueFacts } from '../../../runtime/model/observe.js';
import { foldConstants } from '../../../runtime/model/fold.js';
import { compact, formatTable, shapeText } from '../table.js';
import { createRegistry, loadConfig, readModel, type DeviceOptions, type GlobalOptions } from '../context.js';
import type { LoadedModel } from '../../../runtime/model/load.js';
import { ModelError } from '../../../runtime/model/errors.js';
import type { Config } from '../../../runtime/config.js';
import type { AnalogBackend } from '../../../runtime/hybrid/analog-backend.js';

export interface InspectOptions { json?: boolean; batch: number; plan?: boolean }

export async function inspectCommand(path: string, opts: InspectOptions, global: GlobalOptions & DeviceOptions): Promise<void> {
  const config = await loadConfig(global);
  const model = await readModel(path, config);
  if (opts.plan) return printPlan(path, model, config, opts);
  const registry = createRegistry(config);
  const digital = await registry.get('digital');
  const { folded, observed } = await foldConstants(digital, model)
    .then(async (folded) => ({ folded, observed: await observeValues(digital, folded, opts.batch).catch((e: unknown) => unobserved(path, e)) }))
    .finally(() => registry.dispose());
  const summary = inspectModel(folded, observedDims(observed));
  if (opts.json) {
    console.log(JSON.stringify({ model: path, opset: model.opset, inputs: model.inputs, outputs: model.outputs, ...summary }));
    return;
  }
  const io = (specs: typeof model.inputs): string => specs.map((s) => `${s.name} ${s.type}${shapeText(s.dims)}`).join(', ');
  console.log(`${path}: opset ${model.opset}, ${summary.nodes.length} nodes, ${compact(summary.params)} params, ${compact(summary.macs)} MACs at batch ${opts.batch}`);
  console.log(`inputs: ${io(model.inputs)}\noutputs: ${io(model.outputs)}\n`);
  const rows = summary.nodes.map((n) => [
    n.index, n.name, n.op, shapeText(n.inputShapes[0]), shapeText(n.outputShapes[0]), compact(n.params), compact(n.macs),
    n.mvm ? 'yes' : 'no', n.reason,
  ]);
  console.log(formatTable(['#', 'name', 'op', 'input', 'output', 'params', 'MACs', 'analog', 'why'], rows, [true, false, false, false, false, true, true]));
  console.log(`\n${summary.mvmNodes} analog-eligible node(s) holding ${(summary.mvmMacShare * 100).toFixed(1)}% of the MACs`);
}

/**
 * A model that zeros cannot run (a shape, size or count read from an input) is still inspected, with
 * the shapes it declares; an input too large to make zeros for stays an error.
 */
function unobserved(path: string, e: unknown): Map<string, ValueFacts> {
  if (e instanceof ModelError) throw e;
  process.stderr.write(`edgerun: warning: ${path}: shapes not observed, running the model on zeros failed (${String((e as Error)?.message ?? e).split('\n')[0]}); only the shapes the model declares are shown\n`);
  return new Map();
}

/** The hybrid execution plan on a device profile: where each node runs, why, tiles and conversions. */
async function printPlan(path: string, model: LoadedModel, config: Config, opts: InspectOptions): Promise<void> {
  const registry = createRegistry(config);
  try {
    const backend = (await registry.get('analog')) as AnalogBackend;
    const hybrid = await backend.load(model);
    const rows = hybrid.planRows();
    const info = backend.driver.info();
    const analog = rows.filter((r) => r.target === 'analog');
    const { perNode: macs, total: totalMacs, share } = macShare(model, observedDims(hybrid.facts), analog.map((r) => r.index));
    const total = { tiles: analog.reduce((s, r) => s + r.tiles, 0), dac: analog.reduce((s, r) => s + r.dacPerInference, 0), adc: analog.reduce((s, r) => s + r.adcPerInference, 0) };
    const segments = hybrid.plan.steps.filter((s) => s.kind === 'digital').length;
    if (opts.json) {
      console.log(JSON.stringify({ model: path, profile: info.profile, device: info, nodes: rows.map((r) => ({ ...r, macsPerInference: macs[r.index] })), tiles: total.tiles, macsPerInference: totalMacs, analogMacShare: share, dacPerInference: total.dac, adcPerInference: total.adc, digitalSegments: segments }));
    } else {
      console.log(`${path} on profile ${info.profile} (${info.tiles} tiles of ${info.tileRows}×${info.tileCols}, DAC ${info.dacBits} bit, ADC ${info.adcBits} bit)\n`);
      console.log(formatTable(['#', 'name', 'op', 'runs on', 'MACs', 'tiles', 'MVMs', 'DAC conv.', 'ADC conv.', 'why'],
        rows.map((r) => [r.index, r.name, r.op, r.target, macs[r.index] ? compact(macs[r.index]) : '', r.tiles || '', r.mvmsPerInference ? compact(r.mvmsPerInference) : '', r.dacPerInference ? compact(r.dacPerInference) : '', r.adcPerInference ? compact(r.adcPerInference) : '', r.reason]),
        [true, false, false, false, true, true, true, true, true]));
      const periphery = rows.filter((r) => r.target === 'analog periphery').length;
      console.log(`\n${analog.length} node(s) on ${total.tiles} of ${info.tiles} tiles holding ${(share * 100).toFixed(1)}% of the ${compact(totalMacs)} MACs, ${periphery} in their digital periphery, ${segments} digital segment(s); per inference at batch 1: ${compact(total.dac)} DAC and ${compact(total.adc)} ADC conversions`);
    }
    await hybrid.dispose();
  } finally {
    await registry.dispose();
  }
}

function observedDims(facts: ReadonlyMap<string, ValueFacts>): Map<string, readonly number[]> {
  return new Map([...facts].map(([name, v]) => [name, v.dims]));
}
