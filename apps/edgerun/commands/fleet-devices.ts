/**
 * `edgerun fleet devices <fleet.yaml>`: the fleet file's emulated devices on this machine, packed
 * into worker threads (apps/edgerun/fleet/host.ts), each a whole edgerun device on the broker.
 * Runs until SIGINT/SIGTERM or --seconds, printing a progress line (devices online, results/s,
 * RSS); then every device stops producing, drains its outbox (bounded), publishes its offline
 * status and disconnects. A restart on the same --state-dir resumes every device (result numbers,
 * unacknowledged messages) where it stopped.
 */
import { resolve } from 'node:path';
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import { startFleetHost, type FleetHost } from '../fleet/host.js';
import { loadFleetFile } from '../fleet/load-fleet.js';
import { loadConfig, type GlobalOptions } from '../context.js';

export interface FleetDevicesOptions {
  url?: string;
  protocol?: 4 | 5;
  workers?: number;
  stateDir: string;
  seconds?: number;
  prefix?: string;
  /** Sign every device's messages, whatever the fleet file says. */
  sign?: boolean;
  data?: string;
  /** Seconds between progress lines. */
  interval: number;
  drainMs: number;
}

const MB = 1024 * 1024;

function progressLine(host: FleetHost, fleet: string, resultsPerS: number, rss0: number): string {
  const devices = host.devices();
  const count = (state: string): number => devices.filter((d) => d.state === state).length;
  const failed = count('failed');
  const lost = count('lost');
  const rss = host.rssBytes();
  return `fleet ${fleet}: ${count('online')}/${devices.length} online${failed ? `, ${failed} failed` : ''}${lost ? `, ${lost} lost` : ''}, `
    + `${resultsPerS.toFixed(1)} results/s, ${devices.reduce((n, d) => n + d.pending, 0)} unacknowledged, `
    + `RSS ${(rss / MB).toFixed(0)} MiB (${devices.length ? ((rss - rss0) / MB / devices.length).toFixed(2) : '0'} MiB/device over the host's start)`;
}

export async function fleetDevicesCommand(file: string, opts: FleetDevicesOptions, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const fleet = await loadFleetFile(file);
  const url = opts.url ?? config.mqtt.url;
  if (!url) throw new Error('say which broker: --url mqtt://host:port (or config mqtt.url)');
  const rss0 = process.memoryUsage.rss();
  const host = startFleetHost({
    devices: fleet.devices, fleet: fleet.fleet, url, protocolVersion: opts.protocol, workers: opts.workers, stateDir: resolve(opts.stateDir),
    prefix: opts.prefix, signing: opts.sign ? true : undefined, config, baseDir: fleet.baseDir, data: opts.data, drainMs: opts.drainMs,
    log: (line) => console.error(`edgerun: ${line}`),
  });
  host.on('worker-exit', ({ worker, code }) => { if (code !== 0) console.error(`edgerun: fleet worker ${worker} exited with code ${code}`); });

  const signalled = new Promise<string>((res) => {
    process.once('SIGINT', () => res('SIGINT'));
    process.once('SIGTERM', () => res('SIGTERM'));
  });
  const timer = opts.seconds !== undefined ? new Promise<string>((res) => setTimeout(() => res(`${opts.seconds} s`), opts.seconds! * 1000).unref()) : undefined;
  const until = Promise.race([signalled, ...(timer ? [timer] : [])]);

  console.log(`fleet ${fleet.fleet}: starting ${fleet.devices.length} device(s) on ${redactUrl(url)}, state in ${resolve(opts.stateDir)}`);
  let lastResults = 0;
  let lastAt = performance.now();
  const results = (): number => host.devices().reduce((n, d) => n + d.results, 0);
  const progress = setInterval(() => {
    const now = performance.now();
    const total = results();
    console.log(progressLine(host, fleet.fleet, ((total - lastResults) * 1000) / (now - lastAt), rss0));
    lastResults = total;
    lastAt = now;
  }, opts.interval * 1000);
  try {
    // A bad model or profile in the fleet file rejects here, before any device starts.
    const why = await Promise.race([host.started.then(() => undefined), until]);
    if (why === undefined) {
      const failed = host.devices().filter((d) => d.state === 'failed').length;
      console.log(`fleet ${fleet.fleet}: ${fleet.devices.length - failed} device(s) online${failed ? `, ${failed} failed to start` : ''}`);
      if (failed === fleet.devices.length) throw new Error(`no device of fleet ${fleet.fleet} started: ${host.devices()[0]?.error ?? 'unknown'}`);
    }
    const stopWhy = why ?? await until;
    console.log(`fleet ${fleet.fleet}: ${stopWhy}: stopping (outboxes drain for at most ${opts.drainMs} ms)`);
  } finally {
    clearInterval(progress);
    await host.stop();
  }
  const devices = host.devices();
  const pending = devices.reduce((n, d) => n + d.pending, 0);
  console.log(`fleet ${fleet.fleet}: stopped; ${results()} results over every run on this state dir, ${pending} message(s) left in outboxes for the next start`);
}
