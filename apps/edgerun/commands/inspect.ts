import { inspectModel } from '../../../runtime/model/inspect.js';
import { observeValues } from '../../../runtime/model/observe.js';
import { compact, formatTable, shapeText } from '../table.js';
import { createRegistry, loadConfig, readModel, type GlobalOptions } from '../context.js';

export interface InspectOptions { json?: boolean; batch: number }

export async function inspectCommand(path: string, opts: InspectOptions, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const model = await readModel(path, config);
  const registry = createRegistry(config);
  const observed = await observeValues(await registry.get('digital'), model, opts.batch).finally(() => registry.dispose());
  const summary = inspectModel(model, new Map([...observed].map(([name, v]) => [name, v.dims])));
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
