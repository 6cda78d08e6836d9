/**
 * `edgerun fleet bench`: the coordinator of a fleet benchmark over the broker. It starts consumer
 * processes (`edgerun fleet collect --share`, one shared-subscription group per run), waits for N
 * agents (`edgerun fleet agent`, on this or other machines), splits the fleet file's devices among
 * them, publishes the signed scenario, follows the agents to the end (an agent whose will fires is
 * lost, with its devices), stops the consumers and merges what they saw into one report: the whole
 * fleet, and a section per agent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { nativeSigner, nativeVerify } from '../../../drivers/crypto/ed25519.js';
import { FsStorage } from '../../../drivers/storage/fs-storage.js';
import { FILE_LIMITS } from '../../../drivers/storage/read-file.js';
import { TrustStore } from '../../../runtime/telemetry/keys.js';
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import { FleetCoordinator, type AgentOutcome } from '../../../runtime/fleet/coordinator.js';
import { mergePartials, type CollectorPartial } from '../../../runtime/fleet/metrics.js';
import { fleetReport, type AgentSection, type FleetReport } from '../../../runtime/fleet/report.js';
import { stopTopic } from '../../../runtime/fleet/fleet-protocol.js';
import { realTimeline } from '../../../runtime/fleet/timeline.js';
import { loadConfig, readKeyFile, type GlobalOptions } from '../context.js';
import { loadFleetFile } from '../fleet/load-fleet.js';
import { fleetScenarioSpec, runOrSearch, scenarioReport, type FleetLoadOutcome, type FleetLoadSpec, type ScenarioFlags } from '../fleet/fleet-loadgen.js';
import { mergeScenarioResults, type ScenarioResult, type ScenarioSettings } from '../../../runtime/fleet/loadgen.js';
import type { AgentLoadSpec } from '../../../runtime/fleet/fleet-protocol.js';
import { printScenario } from './fleet-devices.js';
import { formatTable } from '../table.js';
import { writeReport } from './fleet-files.js';
import { interruptOnSignals } from '../fleet/interrupt.js';
import { toolClient } from './listen.js';

/** With `scenario`: a LoadGen scenario each agent's load generator issues to its share instead of the devices' own streams for --duration. */
export interface FleetBenchOptions extends ScenarioFlags {
  devices: string;
  agents: number;
  url?: string;
  durationS: number;
  startTimeout: number;
  /** Inferences per second per stream for every device, instead of the fleet file's rates. */
  rate?: number;
  consumers: number;
  waitAgents: number;
  grace: number;
  key?: string;
  /** Trust store of agent keys: with keys in it, only agents signing with one of them take part. */
  agentKeys?: string;
  run?: string;
  prefix?: string;
  out: string;
  html?: string;
  progress?: boolean;
}

/** The `edgerun` CLI as this process was started (bin/edgerun.js under node), for the consumer processes. */
const cli = (): string[] => [...process.execArgv, process.argv[1]!];

interface Consumer { proc: ChildProcess; partial: string; log: () => string; exit: Promise<number | null> }

function startConsumer(o: { url: string; fleet: string; group: string; prefix: string; stopOn: string; dir: string; k: number; config?: string }): Consumer {
  const partial = join(o.dir, `consumer-${o.k}.partial.json`);
  const args = [...cli(), ...(o.config ? ['--config', o.config] : []), 'fleet', 'collect', '--url', o.url, '--fleet', o.fleet, '--share', o.group, '--prefix', o.prefix,
    '--stop-on', o.stopOn, '--out', join(o.dir, `consumer-${o.k}.json`), '--partial', partial];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout!.on('data', (b: Buffer) => { log += b.toString(); });
  proc.stderr!.on('data', (b: Buffer) => { log += b.toString(); });
  return { proc, partial, log: () => log, exit: new Promise((resolve) => proc.once('exit', (code) => resolve(code))) };
}

async function subscribed(c: Consumer, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!c.log().includes('collecting on')) {
    if (c.proc.exitCode !== null) throw new Error(`a consumer process ended before subscribing: ${c.log().trim().split('\n').pop()}`);
    if (Date.now() - t0 > timeoutMs) throw new Error('a consumer process did not subscribe in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function fleetBenchCommand(opts: FleetBenchOptions, global: GlobalOptions): Promise<FleetReport> {
  const config = await loadConfig(global);
  const prefix = opts.prefix ?? config.mqtt.prefix;
  const url = opts.url ?? config.mqtt.url ?? 'mqtt://127.0.0.1:1883';
  // Model and profile files in it are resolved by each agent, against its own working directory.
  const fleet = await loadFleetFile(opts.devices);
  const spec = opts.scenario === undefined ? undefined : fleetScenarioSpec({ ...opts, scenario: opts.scenario });
  const signer = opts.key ? nativeSigner(await readKeyFile(opts.key)) : undefined;
  const agentTrust = opts.agentKeys === undefined ? undefined : await TrustStore.open(new FsStorage(opts.agentKeys, 0o600, FILE_LIMITS.small), config.security.trustedKeysFile);
  if (agentTrust && !agentTrust.list().length) throw new Error(`--agent-keys ${opts.agentKeys}: no trusted key in it (edgerun keys trust <agent key or public key> --key-dir ${opts.agentKeys})`);
  const run = opts.run ?? `run-${new Date().toISOString().replace(/[^0-9]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
  const log = (line: string): void => console.error(`edgerun bench: ${line}`);

  const dir = await mkdtemp(join(tmpdir(), 'edgerun-bench-'));
  const consumers: Consumer[] = [];
  let refuse!: (e: Error) => void;
  const refused = new Promise<never>((_, reject) => { refuse = reject; });
  refused.catch(() => undefined);
  const mqtt = toolClient(config, { url, clientId: `edgerun-bench-${run}`, clean: true, protocol: 5, onRefused: (r) => refuse(new Error(`the broker at ${redactUrl(url)} refused the connection: ${r}`)) });
  let bar: SingleBar | undefined;
  const stop = interruptOnSignals(log);
  try {
    // Consumers first: they must hear every device from its birth on.
    for (let k = 0; k < opts.consumers; k++) consumers.push(startConsumer({ url, fleet: fleet.fleet, group: run, prefix, stopOn: stopTopic(prefix, fleet.fleet, run), dir, k, ...(global.config ? { config: global.config } : {}) }));
    await Promise.all(consumers.map((c) => subscribed(c, 60_000)));
    const coordinator = new FleetCoordinator({
      mqtt, prefix, fleet: fleet.fleet, id: `bench-${run}`, ...(signer ? { signer } : {}), timeline: realTimeline, log, verify: nativeVerify,
      ...(agentTrust ? { trust: agentTrust } : {}),
      // The coordinator logs each agent's outcome; the bar follows the run's time.
      onReport: (_agent, r) => { if (r.type === 'progress') bar?.update(Math.min(opts.durationS, r.elapsedS)); },
    });
    mqtt.connect();
    await coordinator.start();
    log(`${consumers.length} consumer(s) on ${redactUrl(url)} ($share/${run}); waiting for ${opts.agents} agent(s) of fleet ${fleet.fleet}`);
    const agents = await Promise.race([coordinator.waitForAgents(opts.agents, opts.waitAgents * 1000), refused,
      stop.came.then(() => { throw new Error(`interrupted by ${stop.by()} while waiting for agents: nothing measured`); })]);
    // Ctrl-C from here on: the agents end the run under way and report; the report says it is partial.
    void stop.came.then(() => coordinator.abort().catch(() => undefined));
    // A scenario's runs end with LoadGen's minimums, not after --duration: no time bar then.
    bar = opts.progress !== false && process.stderr.isTTY && !spec
      ? new SingleBar({ stream: process.stderr, format: `${run} [{bar}] {value}/{total} s, ${fleet.devices.length} devices on ${agents.length} agent(s)` }, Presets.shades_classic)
      : undefined;
    bar?.start(opts.durationS, 0);
    const devices = opts.rate === undefined ? fleet.devices : fleet.devices.map((d) => ({ ...d, rateHz: opts.rate! }));
    const common = { devices, agents, durationS: opts.durationS, startTimeoutS: opts.startTimeout, graceS: opts.grace };
    // The scenario's runs (a Server search's rates) are one session: the agents keep its devices running from one to the next, until the stop marker below.
    const session = { id: run, keepS: Math.max(opts.grace, opts.startTimeout) };
    const scenario = spec ? await scenarioOverAgents(spec, (step, loadgen) => coordinator.run({ ...common, run: `${run}-${step}`, loadgen, session }), log, stop.signal) : undefined;
    const outcomes = scenario ? scenario.outcomes : (await coordinator.run({ ...common, run })).outcomes;
    bar?.stop();
    bar = undefined;
    // Every device's messages reached the broker before its agent's done report: the broker queues
    // them for each consumer ahead of this marker, which ends the consumer (and the session's devices on the agents).
    await mqtt.publish(stopTopic(prefix, fleet.fleet, run), new TextEncoder().encode(run), { qos: 1 });
    const stragglers = setTimeout(() => { for (const c of consumers) c.proc.kill('SIGINT'); }, 60_000);
    const codes = await Promise.all(consumers.map((c) => c.exit));
    clearTimeout(stragglers);
    if (codes.some((code) => code !== 0)) throw new Error(`a consumer process failed: ${consumers.find((_, i) => codes[i] !== 0)!.log().trim().split('\n').pop()}`);
    const partials = await Promise.all(consumers.map(async (c) => JSON.parse(await readFile(c.partial, 'utf8')) as CollectorPartial));
    const bench = benchReport(partials, outcomes);
    const by = stop.by();
    const report: FleetReport = {
      ...(spec && scenario ? scenarioReport(spec, scenario.outcome, devices.length, bench) : bench),
      ...(by ? { interrupted: { signal: by, detail: 'the coordinator asked the agents to end the run early; figures are of what was measured until then' } } : {}),
    };
    await writeReport(opts.out, report, opts.html, fleetReport(report));
    printSummary(report);
    if (report.fleetScenario) printScenario(report);
    console.log(`result${by ? ` (partial: interrupted by ${by})` : ''}: ${opts.out}${opts.html ? `, report: ${opts.html}` : ''}`);
    if (by) process.exitCode = stop.exitCode();
    else if (outcomes.some((o) => o.state !== 'done') || (scenario && (scenario.outcome.queries.lost || scenario.outcome.queries.duplicated))) process.exitCode = 1;
    return report;
  } finally {
    stop.dispose();
    bar?.stop();
    for (const c of consumers) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    await mqtt.end();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A LoadGen scenario over the agents: each run (`run(step, loadgen)`, one coordinator run) has every
 * agent's load generator issue its share of it (rate and minimum counts in proportion to its devices)
 * and report its result; the results merge exactly (histograms added). A Server search is one such
 * run per rate tried. Resolves with the merged outcome and the last run's agent outcomes.
 */
async function scenarioOverAgents(
  spec: FleetLoadSpec,
  run: (step: number, loadgen: AgentLoadSpec) => Promise<{ outcomes: AgentOutcome[] }>,
  log: (line: string) => void,
  signal: AbortSignal,
): Promise<{ outcome: FleetLoadOutcome; outcomes: AgentOutcome[] }> {
  let step = 0;
  let last: AgentOutcome[] = [];
  const queries = { issued: 0, samples: 0, completed: 0, lost: 0, duplicated: 0, unknown: 0 };
  let busyShare = 0, received = 0;
  const once = async (settings: ScenarioSettings): Promise<ScenarioResult> => {
    const { outcomes } = await run(step++, { scenario: spec.scenario, mode: spec.mode, settings, seed: spec.seed });
    last = outcomes;
    for (const o of outcomes) {
      const q = o.loadgen?.queries;
      if (q) for (const k of Object.keys(queries) as (keyof typeof queries)[]) queries[k] += q[k];
      busyShare = Math.max(busyShare, o.loadgen?.busyShare ?? 0);
      received += o.loadgen?.received ?? 0;
    }
    const missing = outcomes.filter((o) => o.state !== 'done' || !o.loadgen?.result);
    if (missing.length) throw new Error(`agent(s) without a scenario result: ${missing.map((o) => `${o.agent} ${o.state}${o.detail ? ` (${o.detail})` : ''}`).join(', ')}`);
    return mergeScenarioResults(outcomes.map((o) => o.loadgen!.result!), settings);
  };
  const runs = await runOrSearch(spec, once, log, ' over the agents', signal);
  return { outcome: { ...runs, queries, busyShare, resultsReceived: received }, outcomes: last };
}

/** The merged report: the whole fleet from every consumer's partial, and each agent's share on its own. */
function benchReport(partials: CollectorPartial[], outcomes: AgentOutcome[]): FleetReport {
  const { metrics, groups } = mergePartials(partials, Object.fromEntries(outcomes.map((o) => [o.agent, o.devices])));
  const agents: AgentSection[] = outcomes.map((o) => {
    const received = (d: string): number => metrics.devices[d]?.results ?? 0;
    return {
      agent: o.agent, state: o.state, ...(o.detail ? { detail: o.detail } : {}), devices: o.devices,
      silent: o.devices.filter((d) => received(d) === 0), figures: groups[o.agent]!,
      ...(o.produced ? { unreceived: o.devices.reduce((n, d) => n + Math.max(0, (o.produced![d] ?? 0) - received(d)), 0) } : {}),
    };
  });
  return { kind: 'edgerun-fleet-report', created: new Date().toISOString(), scenarios: [], metrics, agents };
}

function printSummary(r: FleetReport): void {
  const rows = r.agents!.map((a) => [a.agent, a.state, a.devices.length, a.figures.results, a.figures.latency.p50Ms, a.figures.latency.p99Ms, a.figures.lost, a.unreceived ?? '-', a.figures.duplicated]);
  const f = r.metrics!.fleet;
  rows.push(['fleet', r.agents!.every((a) => a.state === 'done') ? 'done' : 'incomplete', r.agents!.reduce((n, a) => n + a.devices.length, 0), f.results, f.latency.p50Ms, f.latency.p99Ms, f.lost, '', f.duplicated]);
  console.log(formatTable(['agent', 'state', 'devices', 'results', 'p50 ms', 'p99 ms', 'lost', 'unreceived', 'duplicated'], rows, [false, false, true, true, true, true, true, true, true]));
  for (const a of r.agents!) if (a.state !== 'done') console.log(`agent ${a.agent} ${a.state}${a.detail ? ` (${a.detail})` : ''}; its devices: ${a.devices.join(', ')}`);
}
