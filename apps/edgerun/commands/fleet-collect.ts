/**
 * `edgerun fleet collect`: the fleet's figures from its MQTT messages only — subscribe (optionally
 * as one of a shared-subscription group), feed every message to the metrics collector (which checks
 * and de-duplicates through the telemetry Listener), stop after N results or S seconds, write the
 * JSON result and report. Its own CPU share is measured: a consumer must not be the bottleneck.
 */
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { nativeVerify } from '../../../drivers/crypto/ed25519.js';
import { FleetMetricsCollector } from '../../../runtime/fleet/metrics.js';
import { fleetReport, type FleetReport } from '../../../runtime/fleet/report.js';
import { Listener } from '../../../runtime/telemetry/listener.js';
import { fleetFilter } from '../../../runtime/telemetry/topics.js';
import { loadConfig, type GlobalOptions } from '../context.js';
import { DEFAULT_URL, toolClient } from './listen.js';
import { writeReport } from './fleet-files.js';

export interface CollectOptions {
  url?: string;
  fleet: string;
  share?: string;
  results?: number;
  seconds?: number;
  /** Seconds after subscribing whose results are counted but not timed. */
  warmup?: number;
  out: string;
  html?: string;
  prefix?: string;
  /** Also write what this consumer saw in the mergeable form (one of a --share group: `fleet bench` merges them). */
  partial?: string;
  /** Stop when a message arrives on this topic (subscribed on its own, after the fleet's: what the broker queued before it arrives first). */
  stopOn?: string;
  /** MQTT protocol version (4 for an Aedes broker); a shared subscription needs 5. */
  protocol?: 4 | 5;
}

export async function fleetCollectCommand(opts: CollectOptions, global: GlobalOptions): Promise<FleetReport> {
  if (opts.results === undefined && opts.seconds === undefined && opts.stopOn === undefined) throw new Error('say when to stop: --results N, --seconds S and/or --stop-on topic');
  if (opts.share && opts.protocol === 4) throw new Error('--share needs MQTT 5 (shared subscriptions): drop --protocol 4');
  const config = await loadConfig(global);
  const prefix = opts.prefix ?? config.mqtt.prefix;
  const url = opts.url ?? config.mqtt.url ?? DEFAULT_URL;
  // devices stamp messages with wall-clock ms: arrivals are stamped on the same scale
  const collector = new FleetMetricsCollector(new Listener({ prefix, verify: nativeVerify }), { now: () => Date.now() });
  let results = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => { finish = resolve; });
  let refused: string | undefined;
  const mqtt = toolClient(config, {
    url, clientId: `edgerun-collect-${randomBytes(6).toString('hex')}`, clean: true, protocol: opts.share ? 5 : opts.protocol,
    onRefused: (reason) => { refused = reason; finish(); },
  });
  mqtt.onMessage((m) => {
    if (m.topic === opts.stopOn) return finish();
    const o = collector.offer(m.topic, m.payload, { retained: m.retain });
    if (o.status === 'new' && o.message.kind === 'results' && opts.results !== undefined && ++results >= opts.results) finish();
  });
  const filter = fleetFilter(prefix, opts.fleet, '+', opts.share);
  mqtt.onConnect(() => {
    void mqtt.subscribe(filter, 1).then(() => (opts.stopOn === undefined ? undefined : mqtt.subscribe(opts.stopOn, 1)))
      .then(() => {
        console.error(`collecting on ${redactUrl(url)} from ${filter}`);
        // The warm-up starts at the first subscription only (a reconnect must not move the window).
        if (!opts.warmup || warmingUp) return;
        warmingUp = true;
        collector.timeFrom(Date.now() + opts.warmup * 1000);
        // The window is timed: it starts after the warm-up.
        if (opts.seconds !== undefined) timer = setTimeout(finish, (opts.warmup + opts.seconds) * 1000);
      }, (e: Error) => console.error(`edgerun: subscribe failed: ${e.message}`));
  });
  let warmingUp = false;
  let timer = opts.seconds !== undefined && !opts.warmup ? setTimeout(finish, opts.seconds * 1000) : undefined;
  process.once('SIGINT', finish);
  const cpu0 = process.cpuUsage(), wall0 = performance.now();
  mqtt.connect();
  await finished;
  const cpu = process.cpuUsage(cpu0);
  const share = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
  clearTimeout(timer);
  process.off('SIGINT', finish);
  await mqtt.end();
  if (refused !== undefined) throw new Error(`the broker at ${redactUrl(url)} refused the connection: ${refused}`);
  const metrics = collector.summary({ loadGeneratorCpuShare: share });
  const report: FleetReport = { kind: 'edgerun-fleet-report', created: new Date().toISOString(), scenarios: [], metrics };
  await writeReport(opts.out, report, opts.html, fleetReport(report));
  if (opts.partial) await writeFile(opts.partial, JSON.stringify(collector.partial({ cpuShare: share })));
  const f = metrics.fleet;
  console.log(`${Object.keys(metrics.devices).length} device(s), ${f.results} results, end-to-end p50 ${f.latency.p50Ms} ms p99 ${f.latency.p99Ms} ms, `
    + `lost ${f.lost}, duplicated ${f.duplicated}, rejected ${metrics.rejected}${f.accuracy !== undefined ? `, accuracy ${(f.accuracy * 100).toFixed(1)} %` : ''}, consumer CPU ${(share * 100).toFixed(1)} %`);
  if (opts.results !== undefined && f.results < opts.results) {
    console.error(`edgerun: stopped after ${opts.seconds} s with ${f.results} of ${opts.results} results`);
    process.exitCode = 1;
  }
  return report;
}
