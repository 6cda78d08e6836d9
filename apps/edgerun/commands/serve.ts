/**
 * `edgerun serve`: the device daemon. Loads the config and models, replays a data set as a sensor
 * at a rate, runs inference through the scheduler, and reports over MQTT: `results` (durable
 * outbox, QoS 1), periodic `telemetry`, `events`, retained `status` (birth, will "offline"), and
 * signed commands in. Without config mqtt.url it starts the embedded broker and says where it is.
 *
 * SIGINT/SIGTERM: stop producing, finish the requests in flight, wait (bounded) for the outbox to
 * be acknowledged, publish status offline, disconnect. With --count N: exactly N result numbers over
 * all runs on this state directory, then exit 0 once the broker acknowledged them.
 */
import { join, resolve } from 'node:path';
import { loadConfig, type GlobalOptions } from '../context.js';
import { redactUrl } from '../../../drivers/mqtt/broker-url.js';
import { packageRoot } from '../package-info.js';
import { startDevice } from '../device/running-device.js';

export interface ServeOptions {
  model?: string[];
  rate: number;
  count?: number;
  data?: string;
  stateDir?: string;
  /** Broker URL (overrides config mqtt.url). */
  url?: string;
  /** MQTT protocol version (overrides config mqtt.protocolVersion). */
  protocol?: 4 | 5;
  quiet?: boolean;
  source?: string;
}

export const BUNDLED_MODELS = ['models/mlp.onnx', 'models/cnn.onnx'];
export const BUNDLED_DATA = 'models/data/fashion-mnist-test-2000.bin';

export async function serveCommand(opts: ServeOptions, global: GlobalOptions): Promise<void> {
  if (opts.source !== undefined && opts.source !== 'dataset') throw new Error(`--source ${opts.source}: only 'dataset' (replay of an EDGD file) is available`);
  const config = await loadConfig(global);
  const models = opts.model?.length ? opts.model : BUNDLED_MODELS.map((m) => join(packageRoot, m));
  const data = opts.data ?? join(packageRoot, BUNDLED_DATA);
  const stateDir = resolve(opts.stateDir ?? config.mqtt.stateDir);
  // config mqtt.outbox.dir when set, unless --state-dir puts everything of this device in one place;
  // otherwise startDevice keeps it in <stateDir>/outbox.
  const outboxDir = opts.stateDir || config.mqtt.outbox.dir === undefined ? undefined : resolve(config.mqtt.outbox.dir);
  const log = opts.quiet ? undefined : (line: string): void => console.log(line);
  const running = await startDevice({
    config, models, data, rateHz: opts.rate, count: opts.count, stateDir, outboxDir, url: opts.url, log,
    ...(opts.protocol !== undefined ? { protocolVersion: opts.protocol } : {}),
  });
  if (running.broker) console.log(`embedded MQTT broker: ${running.broker.url}  ${running.broker.wsUrl ?? ''}`);
  const protocol = running.broker ? 4 : opts.protocol ?? config.mqtt.protocolVersion;
  console.log(`serving; watch with: npx edgerun listen --url ${redactUrl(running.url)}${protocol === 4 ? ' --protocol 4' : ''}`);

  const signalled = new Promise<string>((resolveSignal) => {
    const on = (sig: string) => () => resolveSignal(sig);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
  if (opts.count !== undefined) {
    const why = await Promise.race([running.device.done.then(() => 'count'), signalled]);
    if (why === 'count') {
      // Exactly N results: exit once the broker acknowledged every one of them (or on a signal:
      // what is not acknowledged stays in the outbox for the next start).
      let signal: string | undefined;
      void signalled.then((sig) => { signal = sig; });
      while (running.reporter.counters.pending > 0 && signal === undefined) {
        await Promise.race([running.reporter.drain(1_000).catch(() => undefined), signalled]);
      }
      if (signal === undefined) console.log(`${opts.count} results produced and acknowledged`);
      else console.log(`${signal}: ${running.reporter.counters.pending} messages wait in the outbox for the next start`);
    }
  } else {
    await signalled;
  }
  await running.stop();
}
