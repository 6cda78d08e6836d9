/**
 * The MQTT port (runtime/telemetry/mqtt-port.ts) on mqtt.js 5.
 *
 *   const mqtt = new MqttClient({ url: 'mqtts://broker:8883', clientId: 'edge-1', ca: 'ca.pem', protocolVersion: 5 });
 *   const reporter = new Reporter({ mqtt, ... });   // the reporter calls setWill() then connect()
 *   ...
 *   await mqtt.end();                               // DISCONNECT; end({ force: true }) drops the socket
 *
 * url: mqtt://, mqtts://, ws://, wss:// (checked: drivers/mqtt/broker-url.ts). username/password; TLS ca/cert/key are file PATHS (read here).
 * protocolVersion 5 (default) or 4 (MQTT 3.1.1; the embedded Aedes broker speaks only 4).
 *
 * Why one mqtt.js client per connection: mqtt.js keeps unacknowledged QoS 1 packets in its own
 * in-memory store and an offline queue, and resends them itself after a reconnect. Here the durable
 * outbox is the source of truth and resends, so every connection gets a fresh mqtt.js client
 * (reconnectPeriod 0: mqtt.js never reconnects on its own, and its period is fixed anyway) and a
 * lost connection rejects every pending publish. Reconnects back off exponentially with full jitter.
 */
import { FILE_LIMITS, readFileLimitedSync } from '../storage/read-file.js';
import mqtt, { type IClientOptions, type MqttClient as MqttJsClient } from 'mqtt';
import { checkBrokerUrl } from './broker-url.js';
import {
  NotConnectedError, PublishRejectedError,
  type ConnectInfo, type IncomingMessage, type MqttPort, type PublishOptions, type QoS, type Will,
} from '../../runtime/telemetry/mqtt-port.js';

export interface MqttClientOptions {
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  /** PEM file paths. */
  ca?: string;
  cert?: string;
  key?: string;
  /** Verify the broker's certificate (default true). */
  rejectUnauthorized?: boolean;
  protocolVersion?: 4 | 5;
  /** Start a fresh session on every connect (default false: the broker keeps our subscriptions). */
  clean?: boolean;
  /** MQTT 5 session expiry when clean is false, s (default 1 day). */
  sessionExpirySeconds?: number;
  keepaliveSeconds?: number;
  connectTimeoutMs?: number;
  /** Reconnect backoff: delay = random(0, min(maxMs, initialMs · 2^attempt)), at least minMs. */
  reconnect?: { initialMs?: number; maxMs?: number; minMs?: number };
  /** Errors that are not visible otherwise (TLS, auth refusals). */
  onError?: (e: Error) => void;
}

/**
 * CONNACK refusals that reconnecting will not cure — bad credentials, not authorised, an unsupported
 * protocol version, a client id refused, banned — as the broker's reason; undefined for other
 * errors (network, broker unavailable), which are worth retrying.
 */
export function connectRefusal(e: Error): string | undefined {
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'number') return undefined;
  // MQTT 3.1.1 return codes 1, 2, 4, 5; MQTT 5 reason codes 0x84–0x87, 0x8A, 0x8C.
  const fatal = [1, 2, 4, 5, 0x84, 0x85, 0x86, 0x87, 0x8a, 0x8c];
  return fatal.includes(code) ? `${e.message.replace(/^Connection refused: /i, '')} (code ${code})` : undefined;
}

type Handler<A extends unknown[]> = (...a: A) => void;

function addHandler<A extends unknown[]>(set: Set<Handler<A>>, h: Handler<A>): () => void {
  set.add(h);
  return () => set.delete(h);
}

export class MqttClient implements MqttPort {
  readonly protocolVersion: 4 | 5;
  #client: MqttJsClient | undefined;
  #connected = false;
  #started = false;
  #ended = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #will: Will | (() => Will) | undefined;
  /** Rejecters of this connection's unacknowledged publishes. */
  #pending = new Set<(e: Error) => void>();
  readonly #subscriptions = new Map<string, QoS>();
  /** Subscriptions this client made that the broker's session holds (SUBACKed, not since unsubscribed). */
  readonly #sessionHas = new Map<string, QoS>();
  readonly #onMessage = new Set<Handler<[IncomingMessage]>>();
  readonly #onConnect = new Set<Handler<[ConnectInfo]>>();
  readonly #onClose = new Set<Handler<[Error | undefined]>>();
  readonly #tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };

  constructor(private readonly opts: MqttClientOptions) {
    checkBrokerUrl(opts.url);
    this.protocolVersion = opts.protocolVersion ?? 5;
    if (this.protocolVersion !== 4 && this.protocolVersion !== 5) throw new Error(`MQTT protocol version must be 4 (3.1.1) or 5, got ${String(this.protocolVersion)}`);
    // Read the files up front: a wrong path is a configuration error now, not a reconnect loop later.
    this.#tls = {
      ...(opts.ca ? { ca: Buffer.from(readFileLimitedSync(opts.ca, FILE_LIMITS.small, 'TLS file')) } : {}),
      ...(opts.cert ? { cert: Buffer.from(readFileLimitedSync(opts.cert, FILE_LIMITS.small, 'TLS file')) } : {}),
      ...(opts.key ? { key: Buffer.from(readFileLimitedSync(opts.key, FILE_LIMITS.small, 'TLS file')) } : {}),
    };
  }

  get connected(): boolean { return this.#connected; }

  setWill(will: Will | (() => Will) | undefined): void { this.#will = will; }

  connect(): void {
    if (this.#started || this.#ended) return;
    this.#started = true;
    this.#open();
  }

  #options(): IClientOptions {
    const o = this.opts;
    const v5 = this.protocolVersion === 5;
    const w = typeof this.#will === 'function' ? this.#will() : this.#will;
    return {
      clientId: o.clientId,
      protocolVersion: this.protocolVersion,
      clean: o.clean ?? false,
      reconnectPeriod: 0,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      keepalive: o.keepaliveSeconds ?? 30,
      queueQoSZero: false,
      resubscribe: false,
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...this.#tls,
      rejectUnauthorized: o.rejectUnauthorized ?? true,
      ...(v5 && !(o.clean ?? false) ? { properties: { sessionExpiryInterval: o.sessionExpirySeconds ?? 86_400 } } : {}),
      ...(w ? {
        will: {
          topic: w.topic, payload: Buffer.from(w.payload.buffer, w.payload.byteOffset, w.payload.byteLength),
          qos: w.qos, retain: w.retain ?? false,
          ...(v5 ? { properties: this.#props(w) } : {}),
        },
      } : {}),
    } as IClientOptions;
  }

  /** MQTT 5 properties per options object: callers reuse one options object per kind of message. */
  readonly #propsCache = new WeakMap<PublishOptions, Record<string, unknown>>();

  #props(p: PublishOptions): Record<string, unknown> {
    const cached = this.#propsCache.get(p);
    if (cached) return cached;
    const props: Record<string, unknown> = {};
    if (p.contentType) props.contentType = p.contentType;
    if (p.messageExpirySeconds !== undefined) props.messageExpiryInterval = Math.max(1, Math.round(p.messageExpirySeconds));
    if (p.userProperties) props.userProperties = p.userProperties;
    this.#propsCache.set(p, props);
    return props;
  }

  #open(): void {
    const client = mqtt.connect(this.opts.url, this.#options());
    this.#client = client;
    const mine = () => this.#client === client;
    client.on('connect', (connack) => {
      if (!mine()) return;
      this.#connected = true;
      this.#attempt = 0;
      const serverMax = (connack.properties as { receiveMaximum?: number } | undefined)?.receiveMaximum;
      const info: ConnectInfo = { sessionPresent: connack.sessionPresent, protocolVersion: this.protocolVersion, receiveMaximum: serverMax ?? 65_535 };
      // Subscriptions are re-made on every connect unless the broker kept the ones this client made
      // in that session. A session kept from another run (the same client id, e.g. a restarted
      // daemon) may hold other subscriptions, or none: that daemon unsubscribed on its way out.
      if (!connack.sessionPresent) this.#sessionHas.clear();
      for (const [filter, qos] of this.#subscriptions) {
        if (this.#sessionHas.get(filter) === qos) continue;
        client.subscribe(filter, { qos }, (err) => { if (!err && mine()) this.#sessionHas.set(filter, qos); });
      }
      for (const h of this.#onConnect) h(info);
    });
    client.on('message', (topic, payload, packet) => {
      if (!mine()) return;
      const props = packet.properties;
      const m: IncomingMessage = {
        topic, payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), retain: packet.retain,
        ...(props?.contentType ? { contentType: props.contentType } : {}),
        ...(props?.userProperties ? { userProperties: props.userProperties as Record<string, string | string[]> } : {}),
      };
      for (const h of this.#onMessage) h(m);
    });
    client.on('error', (e) => {
      if (mine()) this.opts.onError?.(e);
    });
    client.on('close', () => {
      if (!mine()) return;
      this.#lost(new NotConnectedError('connection closed'));
    });
  }

  /** The connection is gone: fail what was in flight, drop the mqtt.js client, schedule the next one. */
  #lost(reason: Error): void {
    const client = this.#client;
    this.#client = undefined;
    const wasConnected = this.#connected;
    this.#connected = false;
    const pending = this.#pending;
    this.#pending = new Set();
    for (const reject of pending) reject(reason);
    // end(true) discards mqtt.js's own store; its late callbacks are ignored (the rejecters are gone).
    client?.removeAllListeners();
    client?.on('error', () => undefined);
    client?.end(true);
    if (wasConnected) for (const h of this.#onClose) h(reason);
    if (this.#ended) return;
    const r = this.opts.reconnect ?? {};
    const cap = Math.min(r.maxMs ?? 30_000, (r.initialMs ?? 250) * 2 ** Math.min(this.#attempt, 20));
    this.#attempt++;
    const delay = Math.max(r.minMs ?? 50, Math.random() * cap);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#ended) this.#open();
    }, delay);
  }

  publish(topic: string, payload: Uint8Array, opts: PublishOptions): Promise<void> {
    const client = this.#client;
    if (!client || !this.#connected) return Promise.reject(new NotConnectedError('not connected'));
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error) => { if (!settled) { settled = true; this.#pending.delete(fail); reject(e); } };
      this.#pending.add(fail);
      const v5 = this.protocolVersion === 5;
      client.publish(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), {
        qos: opts.qos, retain: opts.retain ?? false,
        ...(v5 ? { properties: this.#props(opts) } : {}),
      }, (err, packet) => {
        if (settled) return;
        if (err) {
          const code = (err as { code?: number }).code;
          fail(typeof code === 'number' && code >= 0x80 ? new PublishRejectedError(code, err.message) : err);
          return;
        }
        const reason = (packet as { reasonCode?: number } | undefined)?.reasonCode;
        if (reason !== undefined && reason >= 0x80) { fail(new PublishRejectedError(reason, `broker refused the message (reason code 0x${reason.toString(16)})`)); return; }
        settled = true;
        this.#pending.delete(fail);
        resolve();
      });
    });
  }

  async subscribe(filter: string, qos: QoS): Promise<void> {
    this.#subscriptions.set(filter, qos);
    const client = this.#client;
    if (client && this.#connected) {
      await client.subscribeAsync(filter, { qos });
      this.#sessionHas.set(filter, qos);
    }
  }

  async unsubscribe(filter: string): Promise<void> {
    this.#subscriptions.delete(filter);
    this.#sessionHas.delete(filter);
    const client = this.#client;
    if (client && this.#connected) await client.unsubscribeAsync(filter);
  }

  onMessage(h: (m: IncomingMessage) => void): () => void { return addHandler(this.#onMessage, h); }
  onConnect(h: (info: ConnectInfo) => void): () => void { return addHandler(this.#onConnect, h); }
  onClose(h: (reason?: Error) => void): () => void { return addHandler(this.#onClose, h); }

  async end(opts: { force?: boolean } = {}): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    const client = this.#client;
    if (!client) return;
    if (opts.force) {
      // Drop the socket without DISCONNECT: the broker publishes our will.
      (client.stream as { destroy?: () => void } | undefined)?.destroy?.();
      this.#lost(new NotConnectedError('connection dropped'));
      return;
    }
    // mqtt.js waits for in-flight acknowledgements before DISCONNECT; a dead broker must not hang us.
    let t: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => client.end(false, {}, () => resolve())),
      new Promise<void>((resolve) => { t = setTimeout(resolve, 5_000); }),
    ]);
    clearTimeout(t);
    if (this.#client === client) this.#lost(new NotConnectedError('client ended'));
  }
}
