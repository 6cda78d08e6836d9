/**
 * A fleet worker thread: hosts its share of the fleet's emulated devices (apps/edgerun/fleet/host.ts
 * sends the share). Every device is a whole edgerun device (apps/edgerun/device/running-device.ts):
 * its own config (id, group, profile, seed), crossbar emulator instance aged to its device age,
 * simulated battery, stream pipeline, durable outbox in <stateDir>/<device>/, MQTT connection with
 * birth and will, signing key when it signs. What the thread shares between its devices: the
 * loaded models, the data set, and one onnxruntime session per distinct model (runtime/shared-backend.ts).
 *
 * Messages: host → worker `stop`, `query` (a load generator's, to one device: input.queries);
 * worker → host `online`, `failed`, `exited`, `stats` (every second), `fatal` (the thread could not
 * start), `query-refused` (no such device running here).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { CrossbarEmulator } from '../../../drivers/crossbar/emulator.js';
import { DigitalBackend } from '../../../drivers/digital/ort-backend.js';
import { DatasetSource } from '../../../drivers/sensors/dataset-source.js';
import { SimulatedBattery } from '../../../drivers/power/simulated-battery.js';
import { Random } from '../../../drivers/crossbar/random.js';
import { serviceTimeDraw } from '../../../runtime/service-time.js';
import { resolveConfig, type Config } from '../../../runtime/config.js';
import type { DeviceSpec } from '../../../runtime/fleet/fleet-file.js';
import type { LoadedModel } from '../../../runtime/model/load.js';
import { systemClock } from '../../../runtime/power/clock.js';
import { SharedBackend } from '../../../runtime/shared-backend.js';
import { createRegistry, readModel } from '../context.js';
import { modelIdOf } from '../device/device.js';
import { runDevice, type RunningDevice } from '../device/running-device.js';
import type { DeviceStats, FromWorker, ThreadStats, ToWorker, WorkerInput } from './protocol.js';

const input = workerData as WorkerInput;
const port = parentPort!;
const send = (m: FromWorker): void => port.postMessage(m);

const shared = new SharedBackend(new DigitalBackend(input.config.digital));
const models = new Map<string, Promise<LoadedModel>>();
const running = new Map<string, RunningDevice>();
let stopping = false;

function model(path: string): Promise<LoadedModel> {
  let m = models.get(path);
  if (!m) models.set(path, (m = readModel(path, input.config, () => undefined)));
  return m;
}

/** The device's own configuration: the fleet's, with its identity, profile, seed and signing. */
function deviceConfig(spec: DeviceSpec): Config {
  const base = input.config;
  return resolveConfig({
    flags: {
      ...base,
      device: { ...base.device, id: spec.id, fleet: input.fleet, group: spec.group },
      // Hundreds of emulated devices in one thread: each keeps only what its inferences read.
      analog: { ...base.analog, profile: spec.profile, seed: spec.seed, lean: true },
      mqtt: { ...base.mqtt, prefix: input.prefix ?? base.mqtt.prefix },
      // Each device its own key, in its state dir (a configured keyDir would give them all one).
      security: { ...base.security, sign: spec.sign, keyDir: undefined },
      // The simulated battery stands for the device; the host's own sensors are not the device's.
      power: { ...base.power, sensor: 'none' },
    },
  });
}

async function startOne(spec: DeviceSpec, source: DatasetSource): Promise<void> {
  const config = deviceConfig(spec);
  const loaded = new Map<string, LoadedModel>();
  for (const path of spec.models) loaded.set(modelIdOf(path), await model(path));
  const battery = spec.battery ? new SimulatedBattery({ clock: systemClock, capacityWh: spec.battery.capacityWh, initialPct: spec.battery.initialPct, idleW: spec.battery.idleW, name: `${spec.id} battery` }) : undefined;
  const stateDir = join(input.stateDir, spec.id);
  const device = await runDevice({
    config, registry: createRegistry(config, {}, () => shared.user()), models: loaded, source, sensor: battery, battery,
    rateHz: spec.rateHz, stateDir, url: input.url, protocolVersion: input.protocolVersion,
    drive: input.queries ? 'queries' : 'streams', ...(spec.serviceTime ? { serviceTimeMs: serviceTimeOf(spec) } : {}),
    // Hundreds of outboxes in one thread: appends on the thread cost a fraction of thread-pool round trips.
    appends: 'sync',
    birth: { seed: spec.seed, ageS: spec.ageS },
    beforeStart: async (d) => {
      // Programmed now; the device runs at its age (drift from the fleet file), compensation refreshed.
      if (spec.ageS > 0) await d.pipeline.ageAccelerator(spec.ageS);
    },
  });
  running.set(spec.id, device);
  if (stopping) await stopOne(spec.id);
  else send({ type: 'online', id: spec.id });
}

/** The device's modelled service time, drawn from its own seed. */
function serviceTimeOf(spec: DeviceSpec): () => number {
  const rng = new Random((spec.seed ^ 0x5e7c1ce) >>> 0);
  return serviceTimeDraw(spec.serviceTime!, () => rng.uniform());
}

function statsOf(id: string, d: RunningDevice): DeviceStats {
  return { id, results: d.device.produced, pending: d.reporter.counters.pending };
}

async function stopOne(id: string, drainMs = input.drainMs): Promise<void> {
  const device = running.get(id);
  if (!device) return;
  running.delete(id);
  await device.stop({ drainMs }).catch(() => undefined);
  send({ type: 'exited', id, reason: 'stopped', stats: statsOf(id, device) });
}

/** This thread's event-loop delay and GC pauses, period by period (reported with the stats). */
function threadMonitor(): { take(): ThreadStats; close(): void } {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let gcMs = 0;
  let gcMaxMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) { gcMs += e.duration; gcMaxMs = Math.max(gcMaxMs, e.duration); }
  });
  gc.observe({ entryTypes: ['gc'] });
  let since = performance.now();
  return {
    take() {
      const now = performance.now();
      const s: ThreadStats = { loopDelayP99Ms: delay.percentile(99) / 1e6, loopDelayMaxMs: delay.max / 1e6, gcMs, gcMaxMs, periodMs: now - since };
      delay.reset();
      gcMs = 0;
      gcMaxMs = 0;
      since = now;
      return s;
    },
    close() { delay.disable(); gc.disconnect(); },
  };
}

async function main(): Promise<void> {
  const source = await DatasetSource.open(input.data);
  // A few devices at a time: their start is mostly waiting on the broker and the disk.
  const queue = [...input.devices];
  const starters = Array.from({ length: Math.min(8, queue.length) }, async () => {
    for (let spec = queue.shift(); spec && !stopping; spec = queue.shift()) {
      await startOne(spec, source).catch((e: Error) => send({ type: 'failed', id: spec!.id, error: e.message.split('\n')[0]! }));
    }
  });
  // Failpoint for crash tests: FAILPOINT_EDGERUN_FLEET_THREAD=<worker>:<ms> crashes that thread (an uncaught error) <ms> after its devices started, in its first life only.
  const [crashWorker, crashMs] = (process.env.FAILPOINT_EDGERUN_FLEET_THREAD ?? '').split(':');
  if (crashMs !== undefined && Number(crashWorker) === input.worker && input.restart === 0) {
    void Promise.all(starters).then(() => setTimeout(() => { throw new Error('failpoint: fleet thread crash'); }, Number(crashMs)));
  }
  const monitor = threadMonitor();
  const stats = setInterval(() => {
    send({ type: 'stats', devices: [...running].map(([id, d]) => statsOf(id, d)), thread: monitor.take() });
  }, 1000);
  port.on('message', (m: ToWorker) => {
    if (m.type === 'query') {
      const device = stopping ? undefined : running.get(m.device);
      if (device) void device.device.query(m.query);
      else send({ type: 'query-refused', device: m.device, run: m.query.run, id: m.query.id, error: `device ${m.device} is not running in this thread` });
      return;
    }
    stopping = true;
    void Promise.all(starters).then(async () => {
      await Promise.all([...running.keys()].map((id) => stopOne(id, m.drainMs)));
      clearInterval(stats);
      monitor.close();
      await shared.dispose();
      port.close();
    });
  });
}

void main().catch((e: Error) => {
  send({ type: 'fatal', error: e.message.split('\n')[0]! });
  port.close();
});
