/**
 * Where a fleet device's memory goes (issue 16, ≤ 5 MB per device): N devices' analog backends
 * (crossbar emulator + MLP placed and programmed on `pcm`, as a fleet worker builds them, the
 * digital sessions shared), aged and run once, in this one thread, measured as process.memoryUsage() deltas after a
 * full GC, per device: RSS, V8 heap, ArrayBuffers (typed arrays) and the emulators' WebAssembly
 * memories. Run with --expose-gc:
 *
 *   node --expose-gc bin/run-ts.js bench/fleet-memory.ts --devices 40 [--age 86400] [--not-lean]
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../runtime/config.js';
import { SharedBackend } from '../runtime/shared-backend.js';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { createRegistry, readModel } from '../apps/edgerun/context.js';
import type { BackendRegistry } from '../runtime/backend.js';
import { AnalogBackend } from '../runtime/hybrid/analog-backend.js';
import { fmt, report } from './measure.js';

const MB = 1024 * 1024;
const root = fileURLToPath(new URL('..', import.meta.url));

function settled(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
  gc();
  return process.memoryUsage();
}

export async function main(argv: string[] = []): Promise<void> {
  const { values } = parseArgs({ args: argv, strict: true, options: { devices: { type: 'string', default: '40' }, age: { type: 'string', default: '86400' }, 'not-lean': { type: 'boolean', default: false } } });
  const n = Number(values.devices);
  const age = Number(values.age);
  if (!Number.isInteger(n) || n < 1) throw new Error('--devices: expected a whole number ≥ 1');
  if (!Number.isFinite(age) || age < 0) throw new Error('--age: expected seconds ≥ 0');
  const base = resolveConfig({});
  const shared = new SharedBackend(new DigitalBackend(base.digital));
  const model = await readModel(`${root}models/mlp.onnx`, base);
  const registries: BackendRegistry[] = [];
  const prepared: unknown[] = [];
  /** One device's analog backend: its own emulator (seed), the MLP placed, programmed and aged. */
  const device = async (seed: number): Promise<void> => {
    const config = resolveConfig({ flags: { analog: { ...base.analog, profile: 'pcm', seed, lean: !values['not-lean'] } } });
    const registry = createRegistry(config, {}, () => shared.user());
    const analog = await registry.get('analog') as AnalogBackend;
    const m = await analog.load(model);
    if (age > 0) await analog.driver.setAge(age);
    // One inference, as a serving device runs: what a lean device keeps from then on.
    const input = m.inputs[0]!;
    const dims = input.dims.map((d) => (typeof d === 'number' ? d : 1));
    await m.run({ [input.name]: { type: 'float32', dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5) } });
    prepared.push(m);
    registries.push(registry);
  };
  await device(0); // the shared sessions and the code, outside the per-device figure
  const m0 = settled();
  for (let i = 1; i <= n; i++) await device(i);
  const m1 = settled();
  const per = (k: keyof NodeJS.MemoryUsage): number => (m1[k] - m0[k]) / MB / n;
  console.log(`\nfleet-memory: ${n} pcm MLP analog backends in one thread, aged ${age} s, ${values['not-lean'] ? 'not lean' : 'lean (as fleet devices)'}`);
  report('  RSS per device, MB', fmt(per('rss')));
  report('  V8 heap used per device, MB', fmt(per('heapUsed')));
  report('  ArrayBuffers per device (incl. WebAssembly memories), MB', fmt(per('arrayBuffers')));
  report('  external per device, MB', fmt(per('external')));
  for (const r of registries) await r.dispose();
  await shared.dispose();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main(process.argv.slice(2));
