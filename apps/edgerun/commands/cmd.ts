/**
 * `edgerun cmd <device> <name> [--args json] --key <file>`: sign a command with an operator key and
 * publish it (QoS 1) to `<prefix>/<fleet>/<device>/cmd/<name>`. With --wait, waits for the device's
 * `events` report of that command (matched by nonce) and exits 1 unless it ran successfully.
 */
import { randomBytes } from 'node:crypto';
import { buildCommand } from '../../../runtime/telemetry/commands.js';
import { decodeMessage } from '../../../runtime/telemetry/envelope.js';
import { fingerprint } from '../../../runtime/telemetry/keys.js';
import { commandTopic, deviceTopic, type DeviceAddress } from '../../../runtime/telemetry/topics.js';
import { loadConfig, readKeyFile, type GlobalOptions } from '../context.js';
import { checkBrokerUrl, redactUrl } from '../../../drivers/mqtt/broker-url.js';
import { DEFAULT_URL, toolClient } from './listen.js';

export interface CmdOptions {
  args?: string;
  key: string;
  url?: string;
  fleet?: string;
  prefix?: string;
  protocol?: number;
  encoding?: 'json' | 'cbor';
  wait?: number;
  json?: boolean;
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => new Promise<T>((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`${what} (no answer within ${ms / 1000} s)`)), ms);
  p.then((v) => { clearTimeout(t); resolve(v); }, (e: unknown) => { clearTimeout(t); reject(e as Error); });
});

export async function cmdCommand(device: string, name: string, opts: CmdOptions, global: GlobalOptions): Promise<void> {
  const config = await loadConfig(global);
  const url = checkBrokerUrl(opts.url ?? config.mqtt.url ?? DEFAULT_URL);
  let args: unknown = {};
  if (opts.args !== undefined) {
    try {
      args = JSON.parse(opts.args);
    } catch (e) {
      throw new Error(`--args is not valid JSON: ${(e as Error).message}`);
    }
  }
  const signer = await readKeyFile(opts.key);
  const address: DeviceAddress = { prefix: opts.prefix ?? config.mqtt.prefix, fleet: opts.fleet ?? config.device.fleet, device };
  const topic = commandTopic(address, name);
  const nonce = randomBytes(16).toString('hex');
  const ts = Date.now();
  const payload = buildCommand({ device, name, args, signer, nonce, ts, encoding: opts.encoding ?? config.mqtt.encoding });

  let refused!: (reason: string) => void;
  let lastError: string | undefined;
  const mqtt = toolClient(config, {
    url, clientId: `edgerun-cmd-${randomBytes(6).toString('hex')}`, clean: true, protocol: opts.protocol,
    onRefused: (reason) => refused(reason),
    onError: (message) => { lastError = message; },
  });
  const connected = new Promise<void>((resolve, reject) => {
    mqtt.onConnect(() => resolve());
    refused = (reason) => reject(new Error(`the broker at ${redactUrl(url)} refused the connection: ${reason}`));
  });
  let outcome: Promise<Record<string, unknown>> | undefined;
  try {
    mqtt.connect();
    await withTimeout(connected, 10_000, `could not connect to the broker at ${redactUrl(url)}`).catch((e: Error) => {
      throw lastError && !e.message.includes('refused') ? new Error(`${e.message}: ${lastError}`) : e;
    });
    if (opts.wait !== undefined) {
      const events = deviceTopic(address, 'events');
      outcome = new Promise((resolve) => {
        mqtt.onMessage((m) => {
          if (m.topic !== events) return;
          try {
            const body = decodeMessage(m.payload).message.body as Record<string, unknown>;
            if ((body.type === 'command-result' || body.type === 'command-rejected') && body.nonce === nonce) resolve(body);
          } catch { /* not ours */ }
        });
      });
      await mqtt.subscribe(events, 1);
    }
    await withTimeout(mqtt.publish(topic, payload, { qos: 1, contentType: opts.encoding === 'cbor' ? 'application/cbor' : 'application/json' }), 10_000, 'the broker did not acknowledge the command');
    const sent = { topic, device, command: name, nonce, ts, signer: fingerprint(signer.publicKey) };
    if (opts.json) console.log(JSON.stringify(sent));
    else console.log(`sent ${name} to ${address.fleet}/${device} (nonce ${nonce}, signed by ${sent.signer})`);
    if (outcome) {
      const result = await withTimeout(outcome, opts.wait! * 1000, `device ${device} did not report on the command`);
      if (opts.json) console.log(JSON.stringify(result));
      else if (result.type === 'command-rejected') console.log(`rejected: ${String(result.reason)}: ${String(result.detail)}`);
      else console.log(result.ok ? `ok${result.result === undefined ? '' : `: ${JSON.stringify(result.result)}`}` : `failed: ${String(result.error)}`);
      if (result.type !== 'command-result' || result.ok !== true) process.exitCode = 1;
    }
  } finally {
    await mqtt.end();
  }
}
