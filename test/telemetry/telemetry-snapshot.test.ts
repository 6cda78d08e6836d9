/** The telemetry body from real runtime objects: a scheduler running the bundled MLP on onnxruntime-web, a ledger, a governor, a meter. */
import { readFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { DatasetSource } from '../../drivers/sensors/dataset-source.js';
import { loadModel } from '../../runtime/model/load.js';
import { DigitalModel } from '../../runtime/scheduler/placement.js';
import { Scheduler } from '../../runtime/scheduler/scheduler.js';
import { EnergyModel } from '../../runtime/power/energy-model.js';
import { InferenceCostTable } from '../../runtime/power/inference-costs.js';
import { EnergyLedger } from '../../runtime/power/ledger.js';
import { Governor } from '../../runtime/power/governor.js';
import { PowerMeter } from '../../runtime/power/power-meter.js';
import { ManualClock } from '../../runtime/power/clock.js';
import { observedSummary } from '../../runtime/power/model-summary.js';
import { telemetrySnapshot } from '../../runtime/telemetry/telemetry-snapshot.js';
import { repoRoot } from '../helpers/cli.js';

describe('telemetrySnapshot', () => {
  const backend = new DigitalBackend();
  afterAll(() => backend.dispose());

  it('summarises queues, latencies, energy, governor and battery as plain JSON data', async () => {
    const model = await loadModel(await readFile(`${repoRoot}/models/mlp.onnx`), { source: 'mlp.onnx' });
    const scheduler = new Scheduler();
    scheduler.addModel(new DigitalModel('mlp', await backend.load(model), 'digital'));
    scheduler.addStream('cam', { model: 'mlp', capacity: 2, policy: 'drop-oldest' });
    const source = await DatasetSource.open(`${repoRoot}/models/data/fashion-mnist-test-2000.bin`);
    const feeds = (i: number) => { const s = source.sample(i); return { input: { type: 'float32', data: s.input, dims: s.shape } }; };

    const clock = new ManualClock(1_000_000);
    const costs = new InferenceCostTable({ energy: new EnergyModel() }).add('mlp', await observedSummary(backend, model));
    const ledger = new EnergyLedger(clock);
    const meter = new PowerMeter({ sensor: 'power_supply:BAT0' });
    const governor = new Governor({ system: { setAdcBits() {}, setPlacement() {}, setStreamRate() {}, shedStream() {}, restoreStream() {}, pause() {}, resume() {} }, costs, clock, streams: [{ id: 'cam', model: 'mlp', priority: 0, rateHz: 10 }], ledger, meter });

    // 5 run; a burst of 6 more into a queue of 2 sheds some (drop-oldest).
    for (let i = 0; i < 5; i++) {
      await scheduler.infer('cam', feeds(i));
      ledger.record(costs.breakdown('mlp', 'digital', 8)!, { model: 'mlp' });
    }
    const burst = await Promise.all(Array.from({ length: 6 }, (_, i) => scheduler.submit('cam', feeds(5 + i))));
    await Promise.allSettled(burst.map((t) => t.result));
    meter.observe({ ts: clock.now(), watts: 6, batteryPct: 81 });
    clock.advance(1000);
    meter.observe({ ts: clock.now(), watts: 8, batteryPct: 80.9 });

    const t = telemetrySnapshot({ scheduler: scheduler.snapshot(), uptimeMs: 12_345, deviceAgeS: 3600, governor: governor.status(), ledger, meter, idleW: 5, paused: ['cam'], reporter: { pending: 0 } });
    expect(JSON.parse(JSON.stringify(t))).toEqual(t); // plain data
    expect(t.uptimeS).toBe(12.345);
    expect(t.deviceAgeS).toBe(3600);
    const cam = t.streams.cam!;
    expect(cam.submitted).toBe(11);
    expect(cam.completed + cam.dropped).toBe(11);
    expect(cam.dropped).toBeGreaterThan(0);
    expect(t.dropped).toBe(cam.dropped);
    expect(t.completed).toBe(cam.completed);
    expect(cam.paused).toBe(true);
    expect(cam.serviceMs.count).toBe(cam.completed);
    expect(cam.serviceMs.p50Ms).toBeGreaterThan(0);
    expect(cam.serviceMs.p99Ms).toBeGreaterThanOrEqual(cam.serviceMs.p50Ms);
    expect(t.queueDepth).toBe(0);
    expect(t.backends.digital!.completed).toBeGreaterThan(0);
    expect(t.models.mlp).toMatchObject({ placement: 'digital' });
    expect(t.power.energy!.inferences).toBe(5);
    expect(t.power.energy!.perInferenceJ).toBeCloseTo(costs.joules('mlp', 'digital', 8), 12);
    expect(t.power.energy!.byModel.mlp!.inferences).toBe(5);
    expect(t.power.energy!.breakdownJ.digitalMac).toBeGreaterThan(0);
    expect(t.power.measuredW).toBeCloseTo(7, 6);
    expect(t.power.batteryPct).toBe(80.9);
    expect(t.power.sensor).toBe('power_supply:BAT0');
    expect(t.power.governor).toMatchObject({ enabled: true, allowedW: null, rates: { cam: 10 }, shed: [], paused: false });
    expect(t.reporter).toEqual({ pending: 0 });

    // Paused in the scheduler itself (not by the daemon's list): shown as paused too; running streams are not.
    expect(telemetrySnapshot({ scheduler: scheduler.snapshot(), uptimeMs: 0 }).streams.cam!.paused).toBeUndefined();
    scheduler.pauseStream('cam');
    expect(telemetrySnapshot({ scheduler: scheduler.snapshot(), uptimeMs: 0 }).streams.cam!.paused).toBe(true);
    await scheduler.close();
  });
});
