/**
 * What power accounting and the governor cost per inference: digital inference of models/mlp.onnx
 * bare vs metered (energy estimate charged to the ledger) plus governor.tick() after every inference
 * (it re-plans once per policy.tickS = 1 s). Side by side in one run; the cost of one full re-plan
 * (tick(true)) is reported beside it.
 */
import { readFile } from 'node:fs/promises';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { SimulatedBattery } from '../drivers/power/simulated-battery.js';
import { SimulatedLoad } from '../drivers/power/simulated-load.js';
import { loadModel } from '../runtime/model/load.js';
import { ManualClock, systemClock } from '../runtime/power/clock.js';
import { EnergyModel } from '../runtime/power/energy-model.js';
import { Governor } from '../runtime/power/governor.js';
import { InferenceCostTable } from '../runtime/power/inference-costs.js';
import { EnergyLedger } from '../runtime/power/ledger.js';
import { MeteredModel } from '../runtime/power/metered-model.js';
import { observedSummary } from '../runtime/power/model-summary.js';
import { PowerMeter } from '../runtime/power/power-meter.js';
import { estimateWork } from '../runtime/power/work.js';
import { compare, fmt, report } from './measure.js';

export async function main(): Promise<void> {
  console.log('\n# power accounting + governor tick per inference vs none (digital mlp, batch 1)');
  const digital = new DigitalBackend({ threads: 1 });
  const model = loadModel(await readFile(new URL('../models/mlp.onnx', import.meta.url)), { source: 'mlp' });
  const summary = await observedSummary(digital, model);
  const energy = new EnergyModel();
  const costs = new InferenceCostTable({ energy }).add('mlp', summary);
  const ledger = new EnergyLedger(systemClock);
  const meter = new PowerMeter();
  // One session for both sides, so only the accounting differs.
  const prepared = await digital.load(model);
  const metered = new MeteredModel(prepared, { name: 'mlp', energy, ledger, work: estimateWork(summary, 'digital', energy.host) });

  // The governed system: streams on a simulated device (its own clock: the knobs are what matter here).
  const streams = [{ id: 'camera', priority: 5, rateHz: 30, model: 'mlp' }, { id: 'audio', priority: 1, rateHz: 100, model: 'mlp' }];
  const simClock = new ManualClock(0);
  const system = new SimulatedLoad({ clock: simClock, battery: new SimulatedBattery({ clock: simClock, capacityWh: 10 }), costs, streams, placements: { mlp: 'digital' } });
  // A cap that binds nothing, so every tick does the full work (limits, bias, plan) and takes no step.
  const governor = new Governor({ system, costs, clock: systemClock, streams, idleW: 1, ledger, meter, policy: { powerCapW: 100, batteryReservePct: 10, batteryCapacityWh: 10 } });
  meter.observe({ ts: systemClock.now(), watts: 1.5, batteryPct: 80 });

  const data = Float32Array.from({ length: 784 }, (_, i) => (i % 17) / 17);
  const feeds = { [model.inputs[0]!.name]: { type: 'float32' as const, data, dims: [1, 1, 28, 28] } };
  const r = await compare({
    baseline: () => prepared.run(feeds),
    candidate: async () => {
      await metered.runWithEnergy(feeds);
      await governor.tick();
    },
  }, 101, 100);
  report('mlp: bare digital µs/inference', fmt(r.baselineUs, 1));
  report('mlp: metered + governor tick µs/inference', fmt(r.candidateUs, 1));
  report('mlp: (accounting + governor) / bare', `${fmt(r.ratio, 3)}×`, { text: '≤ 1.02×', met: r.ratio <= 1.02 });
  // The same overhead without onnxruntime's noise: a model that answers at once.
  const instant = new MeteredModel({ ...prepared, run: async () => ({}) }, { name: 'instant', energy, ledger, work: estimateWork(summary, 'digital', energy.host) });
  const calls = 200_000;
  let t = performance.now();
  for (let i = 0; i < calls; i++) await instant.inner.run(feeds);
  const bare = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < calls; i++) {
    await instant.runWithEnergy(feeds);
    await governor.tick();
  }
  report('accounting + tick() overhead µs/inference (no-op model)', fmt((((performance.now() - t) - bare) * 1000) / calls, 2));
  const n = 20_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await governor.tick(true);
  report('governor: one full re-plan (tick(true)) µs', fmt(((performance.now() - t0) * 1000) / n, 2));
  const snap = ledger.snapshot();
  report('mlp: modelled energy per inference (digital)', `${fmt(snap.perInferenceJ * 1e6, 2)} µJ`);
  await metered.dispose();
  await digital.dispose();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
