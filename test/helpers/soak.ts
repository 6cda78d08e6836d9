/**
 * The soak (issue 12, Harden 4), shared by the bounded CI test (test/soak/soak.test.ts) and the
 * long run in bench/soak.ts: a real `edgerun serve` device process streams `rateHz` results (the
 * mlp placed on the analog accelerator, a real `edgerun accel-emulator` process on a Unix socket)
 * through a real Mosquitto for `durationMs`, while the broker is SIGKILLed or stopped and restarted
 * and the accelerator is SIGKILLed (then restarted) or SIGSTOPped (then continued), at evenly spaced
 * moments of the run. A listener with a persistent QoS 1 session holds every result number.
 *
 * Every `sampleMs`, from the first result received until the last, it samples the device
 * process: VmRSS from /proc/<pid>/status, open descriptors from /proc/<pid>/fd, and the bytes of its
 * outbox journal on disk. The report has the figures; the callers decide what is flat enough.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import mqtt from 'mqtt';
import { decodeMessage } from '../../runtime/telemetry/envelope.js';
import { DeviceProcess, tempSocketPath } from '../remote/device-process.js';
import { startEdgerun, type EdgerunProcess } from './cli.js';
import { Mosquitto } from './mosquitto.js';
import { until } from './until.js';

export type FaultKind = 'broker SIGKILL' | 'broker SIGTERM' | 'accelerator SIGKILL' | 'accelerator SIGSTOP';

export interface SoakOptions {
  durationMs: number;
  rateHz: number;
  /** The faults, in this order, spread evenly over the middle of the run. */
  faults: FaultKind[];
  /** Outbox limit given to the device (mqtt.outbox.maxBytes); segments are a sixteenth of it. */
  outboxMaxBytes?: number;
  sampleMs?: number;
  /** How long a stopped broker or accelerator stays away. */
  outageMs?: number;
  log?: (line: string) => void;
}

export interface Sample { t: number; rssKiB: number; fds: number; outboxBytes: number; received: number }

export interface SoakReport {
  seconds: number;
  results: number;
  distinct: number;
  lost: number;
  duplicates: number;
  /** slopePerHour: the least-squares trend of RSS over the run, MiB per hour. */
  rssMiB: { start: number; end: number; max: number; firstHalfMedian: number; secondHalfMedian: number; slopePerHour: number };
  fds: { start: number; end: number; max: number; firstHalfMax: number; secondHalfMax: number };
  outbox: { limitBytes: number; maxBytes: number; endBytes: number };
  faults: { atSeconds: number; kind: FaultKind }[];
  backends: Record<string, number>;
  deviceExit: { code: number | null; signal: NodeJS.Signals | null };
  samples: Sample[];
}

const DEVICE = 'soak-1';
const FLEET = 'soak';
const PREFIX = 'edgerun';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => undefined);
  const total = Math.round((o.rateHz * o.durationMs) / 1000);
  const limitBytes = o.outboxMaxBytes ?? 4 * 2 ** 20;
  const sampleMs = o.sampleMs ?? 1000;
  const outageMs = o.outageMs ?? 3000;
  const stateDir = mkdtempSync(join(tmpdir(), 'edgerun-soak-'));
  const cleanup: (() => Promise<unknown>)[] = [() => Promise.resolve(rmSync(stateDir, { recursive: true, force: true }))];
  try {
    // Run as root, mosquitto would drop to a user who cannot save its DB in the 0700 temp dir.
    const broker = await Mosquitto.start({ persistence: true, config: [...(process.getuid?.() === 0 ? ['user root'] : []), 'autosave_interval 1'] });
    cleanup.push(() => broker.dispose());
    const accel = new DeviceProcess(tempSocketPath(), ['--profile', 'ideal', '--seed', '1']);
    cleanup.push(() => Promise.resolve(rmSync(dirname(accel.socket), { recursive: true, force: true })));
    await accel.start();
    cleanup.push(() => accel.kill());

    const numbers = new Map<number, number>();
    const backends: Record<string, number> = {};
    let messages = 0;
    const listener = mqtt.connect(broker.url, { clientId: 'soak-listener', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 100 });
    cleanup.push(() => listener.endAsync(true));
    listener.on('error', () => undefined);
    listener.on('message', (_topic, payload) => {
      const { message } = decodeMessage<{ n: number; backend: string }>(payload);
      messages++;
      numbers.set(message.body.n, (numbers.get(message.body.n) ?? 0) + 1);
      backends[message.body.backend] = (backends[message.body.backend] ?? 0) + 1;
    });
    await until('the listener to connect', () => listener.connected, 30_000);
    await listener.subscribeAsync(`${PREFIX}/${FLEET}/${DEVICE}/results`, { qos: 1 });
    await until('mosquitto to save the listener\'s session', () => existsSync(join(broker.dir, 'mosquitto.db')), 30_000);

    const device = startDevice(broker.url, accel.socket, stateDir, total, o.rateHz, limitBytes);
    cleanup.push(async () => { device.proc.kill('SIGKILL'); await device.exit; });
    const pid = device.proc.pid!;
    const t0 = Date.now();
    const samples: Sample[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const s = await sampleProcess(pid, join(stateDir, 'outbox')).catch(() => undefined);
        // While streaming: before the first result the process is still starting (compiling,
        // loading), after the last one it is shutting down.
        if (s && numbers.size > 0 && numbers.size < total) samples.push({ t: (Date.now() - t0) / 1000, ...s, received: numbers.size });
        await sleep(sampleMs);
      }
    })();

    // Faults over the middle of the run (15 % to 80 %), by the clock: the device streams regardless.
    const faults: SoakReport['faults'] = [];
    const span = 0.65 * o.durationMs;
    for (const [i, kind] of o.faults.entries()) {
      const at = 0.15 * o.durationMs + (o.faults.length > 1 ? (i * span) / (o.faults.length - 1) : span / 2);
      const wait = t0 + at - Date.now();
      if (wait > 0) await Promise.race([sleep(wait), device.exit]);
      if (device.proc.exitCode !== null || device.proc.signalCode !== null) break;
      faults.push({ atSeconds: (Date.now() - t0) / 1000, kind });
      log(`soak: ${kind} at ${faults.at(-1)!.atSeconds.toFixed(0)} s (${numbers.size} results received)`);
      await inject(kind, broker, accel, outageMs);
    }
    let timer: NodeJS.Timeout | undefined;
    const deviceExit = await Promise.race([
      device.exit,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the device did not finish ${total} results\n${device.log()}`)), o.durationMs + 180_000);
      }),
    ]).finally(() => clearTimeout(timer));
    await until(`all ${total} result numbers at the listener`, () => numbers.size >= total, 120_000, () => `${numbers.size} of ${total}\n${device.log()}`);
    sampling = false;
    await sampler;

    const missing = [...Array(total).keys()].filter((n) => !numbers.has(n)).length;
    const half = Math.floor(samples.length / 2);
    const [first, second] = [samples.slice(0, half), samples.slice(half)];
    const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;
    return {
      seconds: (Date.now() - t0) / 1000,
      results: total,
      distinct: numbers.size,
      lost: missing,
      duplicates: messages - numbers.size,
      rssMiB: {
        start: mib(samples[0]!.rssKiB), end: mib(samples.at(-1)!.rssKiB), max: mib(Math.max(...samples.map((s) => s.rssKiB))),
        firstHalfMedian: mib(median(first.map((s) => s.rssKiB))), secondHalfMedian: mib(median(second.map((s) => s.rssKiB))),
        slopePerHour: mib(slope(samples.map((s) => [s.t, s.rssKiB])) * 3600),
      },
      fds: {
        start: samples[0]!.fds, end: samples.at(-1)!.fds, max: Math.max(...samples.map((s) => s.fds)),
        firstHalfMax: Math.max(...first.map((s) => s.fds)), secondHalfMax: Math.max(...second.map((s) => s.fds)),
      },
      outbox: { limitBytes, maxBytes: Math.max(...samples.map((s) => s.outboxBytes)), endBytes: samples.at(-1)!.outboxBytes },
      faults,
      backends,
      deviceExit,
      samples,
    };
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  }
}

async function inject(kind: FaultKind, broker: Mosquitto, accel: DeviceProcess, outageMs: number): Promise<void> {
  switch (kind) {
    case 'broker SIGKILL': await broker.kill(); await sleep(outageMs); await broker.restart(); return;
    case 'broker SIGTERM': await broker.stop(); await sleep(outageMs); await broker.restart(); return;
    case 'accelerator SIGKILL': await accel.kill(); await sleep(outageMs); await accel.start(); return;
    case 'accelerator SIGSTOP': accel.signal('SIGSTOP'); await sleep(outageMs); accel.signal('SIGCONT'); return;
  }
}

function startDevice(url: string, socket: string, stateDir: string, count: number, rateHz: number, outboxMaxBytes: number): EdgerunProcess {
  return startEdgerun(['serve', '--model', 'models/mlp.onnx', '--rate', String(rateHz), '--count', String(count), '--state-dir', stateDir, '--quiet'], {
    EDGERUN_MQTT__URL: url,
    EDGERUN_MQTT__PREFIX: PREFIX,
    EDGERUN_DEVICE__ID: DEVICE,
    EDGERUN_DEVICE__FLEET: FLEET,
    EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '2000',
    EDGERUN_MQTT__OUTBOX__MAX_BYTES: String(outboxMaxBytes),
    EDGERUN_MQTT__OUTBOX__SEGMENT_BYTES: String(Math.max(1024, Math.floor(outboxMaxBytes / 16))),
    EDGERUN_PLACEMENT__DEFAULT: 'analog',
    EDGERUN_REMOTE__SOCKET: socket,
    EDGERUN_REMOTE__TIMEOUT_MS: '500',
    EDGERUN_FALLBACK__RUN_TIMEOUT_MS: '1000',
    EDGERUN_FALLBACK__HEALTH_INTERVAL_MS: '250',
    EDGERUN_FALLBACK__PROBE_MAX_MS: '1000',
    EDGERUN_POWER__SENSOR: 'none',
  });
}

async function sampleProcess(pid: number, outboxDir: string): Promise<Omit<Sample, 't' | 'received'>> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!rss) throw new Error(`no VmRSS in /proc/${pid}/status`);
  const fds = (await readdir(`/proc/${pid}/fd`)).length;
  let outboxBytes = 0;
  for (const f of await readdir(outboxDir).catch(() => [] as string[])) outboxBytes += await stat(join(outboxDir, f)).then((s) => (s.isFile() ? s.size : 0), () => 0);
  return { rssKiB: Number(rss[1]), fds, outboxBytes };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 0;
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx > 0 ? points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx : 0;
}
