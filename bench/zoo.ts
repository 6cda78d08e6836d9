/**
 * The nine zoo architectures of models/zoo (ONNX's light form: weights from ConstantOfShape
 * subgraphs) on the `ideal` profile, batch 1: share of MACs on tiles (goal ≥ 90 %), agreement with
 * PyTorch's expected output within `check`'s default tolerance, load time (fold + observe + program
 * + segments), and hybrid / digital time per inference measured side by side in this run.
 * `npm run bench -- zoo` (about 15–25 minutes on 2 cores); ZOO=alexnet,resnet50 picks models.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../runtime/model/load.js';
import { macShare } from '../runtime/model/inspect.js';
import { parseTensorFile } from '../runtime/model/tensor.js';
import { compareTensors } from '../runtime/compare.js';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { CrossbarEmulator } from '../drivers/crossbar/emulator.js';
import { AnalogBackend } from '../runtime/hybrid/analog-backend.js';
import { compare, fmt, report } from './measure.js';

const ZOO = fileURLToPath(new URL('../models/zoo', import.meta.url));

export async function main(): Promise<void> {
  console.log('\n# zoo architectures (light form) on the ideal profile, batch 1');
  const names = process.env.ZOO?.split(',') ?? (await readdir(ZOO)).sort();
  const digital = new DigitalBackend();
  for (const name of names) {
    const dir = join(ZOO, name);
    const model = loadModel(await readFile(join(dir, 'model.onnx')), { source: name });
    const input = parseTensorFile(await readFile(join(dir, 'test_data_set_0', 'input_0.pb')), 'input_0.pb');
    const expected = parseTensorFile(await readFile(join(dir, 'test_data_set_0', 'output_0.pb')), 'output_0.pb');
    const feeds = { [model.inputs[0]!.name]: input };
    const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator('ideal') });
    const t0 = performance.now();
    const hybrid = await analog.load(model);
    const loadS = (performance.now() - t0) / 1000;
    const onTiles = hybrid.planRows().filter((r) => r.target === 'analog').map((r) => r.index);
    const { share } = macShare(model, new Map([...hybrid.facts].map(([n, v]) => [n, v.dims])), onTiles);
    const out = await hybrid.run(feeds);
    const c = compareTensors(expected, out[model.outputs[0]!.name]!, 1e-3, 1e-5);
    const d = await digital.load(model);
    const r = await compare({ baseline: () => d.run(feeds), candidate: () => hybrid.run(feeds) }, 3, 1, 1);
    report(`${name}: MACs on tiles`, `${fmt(share * 100, 1)} % (${onTiles.length} nodes)`, { text: '≥ 90 %', met: share >= 0.9 });
    report(`${name}: vs PyTorch (rtol 1e-3, atol 1e-5)`, c.mismatches === 0 ? `pass, max abs error ${c.maxAbsError.toExponential(1)}` : `${c.mismatches} mismatches`, { text: 'pass', met: c.mismatches === 0 });
    report(`${name}: load s / hybrid ms / digital ms`, `${fmt(loadS, 1)} / ${fmt(r.candidateUs / 1000, 0)} / ${fmt(r.baselineUs / 1000, 0)} (${fmt(r.ratio)}×); RSS ${fmt(process.memoryUsage().rss / 2 ** 20, 0)} MiB`);
    await d.dispose();
    await analog.dispose();
  }
  await digital.dispose();
}
