/**
 * The device's end of a deployment: a signed `deploy` command names the bundle (sha256, size) and
 * how it comes — chunks over MQTT (./transfer.ts) or an http(s) URL fetched with resume — the
 * bytes go into one Storage file as they arrive, and the complete, checked bundle goes to the
 * Deployer (verify → stage → self-test → switch). A transfer that stalls longer than `stallMs` is
 * abandoned (reported as `transfer`: truncated); one a restart interrupted continues from its bytes.
 *
 * Chunks can be lost without either end restarting: a broker that lost the device's session, a
 * pusher whose connection dropped (its publishes in flight fail), a damaged chunk refused on
 * arrival. So the device asks again (`transfer.resend` on deploy/status) for the window from the
 * chunk it needs: at once when it reconnects or sees a gap or a damaged chunk, and every
 * `stallMs / 4` (at most 5 s) while nothing arrives, until the stall timer gives up.
 */
import type { Clock, Storage } from '../ports.js';
import { monotonicClock } from '../ports.js';
import type { DeployArgs } from '../telemetry/commands.js';
import type { MqttPort } from '../telemetry/mqtt-port.js';
import { deployChunkTopic, type DeviceAddress } from '../telemetry/topics.js';
import { DeployError } from './errors.js';
import type { Deployer, DeployStatus, TransferSpec } from './installer.js';
import { CHUNK_WINDOW, chunkCount, decodeChunk, IncomingFile } from './transfer.js';

/**
 * Fetches `url` from byte `from` on (HTTP Range), handing each piece of data to `onData` in order;
 * resolves at the end of the body. drivers/http/download.ts implements it.
 */
export type Downloader = (url: string, from: number, onData: (data: Uint8Array) => Promise<void>, signal: AbortSignal) => Promise<void>;

export interface DeployAgentOptions {
  deployer: Deployer;
  mqtt: MqttPort;
  address: DeviceAddress;
  /** Holds the file being received. */
  storage: Storage;
  download?: Downloader;
  /** A transfer with no progress for this long is abandoned. */
  stallMs: number;
  clock?: Clock;
  log?: (line: string) => void;
}

const INCOMING = 'incoming.bundle';

interface Active {
  id: string;
  spec: TransferSpec;
  file: IncomingFile;
  started: number;
  stall?: ReturnType<typeof setTimeout>;
  /** Asks for the missing window again while no chunk arrives (MQTT chunks only). */
  ask?: ReturnType<typeof setInterval>;
  /** Why the last download attempt broke off (named when the transfer is given up). */
  lastError?: string;
  /** Set when the stall timer gave up on the transfer. */
  stalled?: DeployError;
  /** The chunk a gap or a damaged chunk already made the device ask for (asked once per chunk). */
  askedFor?: number;
  abort: AbortController;
  /** Chunks are appended one at a time, in order. */
  chain: Promise<void>;
  done: boolean;
  settle: (status: DeployStatus | undefined) => void;
}

export class DeployAgent {
  #active: Active | undefined;
  #off: (() => void) | undefined;
  #offConnect: (() => void) | undefined;
  #closed = false;
  readonly #clock: Clock;
  /** Settles when the current deployment has finished (tests, shutdown). */
  #finished: Promise<DeployStatus | undefined> = Promise.resolve(undefined);

  constructor(private readonly o: DeployAgentOptions) {
    this.#clock = o.clock ?? monotonicClock;
  }

  /** Subscribes to this device's chunk topics and resumes a transfer a restart interrupted. */
  async attach(): Promise<void> {
    const filter = deployChunkTopic(this.o.address, 'x').replace(/x$/, '+');
    this.#off = this.o.mqtt.onMessage((m) => {
      if (m.topic.startsWith(filter.slice(0, -1))) this.#chunk(m.topic.slice(filter.length - 1), m.payload);
    });
    await this.o.mqtt.subscribe(filter, 1).catch(() => undefined); // re-subscribed by the port on reconnect
    // Back on the broker (whose session may be gone with the chunks it held): ask where we stand.
    this.#offConnect = this.o.mqtt.onConnect(() => {
      if (this.#active) this.#resend(this.#active);
    });
    const pending = this.o.deployer.pendingTransfer();
    if (pending) await this.#begin(pending.id, pending.transfer, true);
  }

  /** The `deploy` command: starts receiving (resolves once the transfer is under way), or refuses a bundle too large to hold. */
  async start(args: DeployArgs): Promise<{ id: string; state: 'receiving' | 'failed' }> {
    const max = this.o.deployer.maxBundleBytes;
    if (args.size > max) {
      await this.o.deployer.refuse(args.id, 'too-large', `the deploy command announces ${args.size} bytes, more than the ${max} this device accepts (deploy.maxBundleMiB)`);
      return { id: args.id, state: 'failed' };
    }
    const spec: TransferSpec = {
      sha256: args.sha256, size: args.size,
      ...(args.url !== undefined ? { url: args.url } : { chunkSize: args.chunkSize! }),
      ...(args.allowDowngrade ? { allowDowngrade: true } : {}),
    };
    await this.#begin(args.id, spec, false);
    return { id: args.id, state: 'receiving' };
  }

  /** The outcome of the deployment under way (undefined when none is). */
  get finished(): Promise<DeployStatus | undefined> {
    return this.#finished;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#off?.();
    this.#offConnect?.();
    const a = this.#active;
    if (a) {
      clearTimeout(a.stall);
      clearInterval(a.ask);
      a.abort.abort();
      await a.chain.catch(() => undefined);
    }
  }

  async #begin(id: string, spec: TransferSpec, resume: boolean): Promise<void> {
    await this.o.deployer.receiving(id, spec, resume);
    const file = await IncomingFile.open(this.o.storage, INCOMING, spec, !resume);
    if (spec.chunkSize !== undefined) await file.truncate(Math.floor(file.length / spec.chunkSize) * spec.chunkSize);
    let settle!: (s: DeployStatus | undefined) => void;
    this.#finished = new Promise((r) => { settle = r; });
    const a: Active = { id, spec, file, started: this.#clock.now(), abort: new AbortController(), chain: Promise.resolve(), done: false, settle };
    this.#active = a;
    a.chain = a.chain.then(async () => {
      await this.#progress(a, resume ? { resumed: true } : {});
      if (file.complete) return this.#install(a);
      if (spec.url !== undefined) return this.#download(a);
    }).catch((e: unknown) => this.#fail(a, e));
    this.#armStall(a);
  }

  #end(a: Active, status: DeployStatus | undefined): void {
    a.done = true;
    clearTimeout(a.stall);
    clearInterval(a.ask);
    if (this.#active === a) this.#active = undefined;
    a.settle(status);
  }

  #armStall(a: Active): void {
    clearTimeout(a.stall);
    if (a.done) return;
    a.stall = setTimeout(() => {
      a.stalled = new DeployError('transfer', `truncated transfer: ${a.file.length} of ${a.spec.size} bytes, nothing more for ${Math.round(this.o.stallMs / 1000)} s${a.lastError ? ` (last error: ${a.lastError})` : ''}`);
      // Ends a download in progress too (it then fails with this error, not the abort's).
      a.abort.abort();
      a.chain = a.chain.then(() => {
        if (!a.done) throw a.stalled;
      }).catch((e: unknown) => this.#fail(a, e));
    }, this.o.stallMs);
    a.stall.unref?.();
    if (a.spec.chunkSize === undefined) return;
    clearInterval(a.ask);
    a.ask = setInterval(() => this.#resend(a), Math.max(50, Math.min(5_000, this.o.stallMs / 4)));
    a.ask.unref?.();
  }

  /** Asks the pusher for the window from the next chunk needed (once a status is out, the pusher resends it). */
  #resend(a: Active): void {
    if (a.spec.chunkSize === undefined) return;
    a.chain = a.chain.then(async () => {
      if (!a.done) await this.#progress(a, { resend: true });
    }).catch((e: unknown) => this.#fail(a, e));
  }

  #chunk(id: string, payload: Uint8Array): void {
    const a = this.#active;
    if (!a || a.id !== id || a.done || a.spec.chunkSize === undefined) return;
    const chunkSize = a.spec.chunkSize;
    a.chain = a.chain.then(async () => {
      if (a.done) return;
      const next = a.file.length / chunkSize;
      let chunk: { index: number; data: Uint8Array };
      try {
        chunk = decodeChunk(payload);
      } catch (e) {
        // Damaged on its way: refused; the pusher sends it again when asked.
        this.o.log?.(`deployment ${a.id}: ${(e as Error).message}; asking for chunk ${next} again`);
        return this.#askOnce(a, next);
      }
      const { index, data } = chunk;
      if (index < next) return; // a duplicate (QoS 1 redelivery, a window sent twice)
      if (index > next) return this.#askOnce(a, next); // a chunk before it was lost
      const last = index === chunkCount(a.spec.size, chunkSize) - 1;
      if (data.byteLength !== (last ? a.spec.size - index * chunkSize : chunkSize)) throw new DeployError('transfer', `chunk ${index} has ${data.byteLength} bytes, expected ${last ? a.spec.size - index * chunkSize : chunkSize}`);
      await a.file.append(data);
      this.#armStall(a);
      if (a.file.complete) return this.#install(a);
      if ((index + 1) % CHUNK_WINDOW === 0) await this.#progress(a, {});
    }).catch((e: unknown) => this.#fail(a, e));
  }

  /** One resend request per missing chunk for gaps and damage (the rest of a window would repeat it). */
  async #askOnce(a: Active, next: number): Promise<void> {
    if (a.askedFor === next) return;
    a.askedFor = next;
    await this.#progress(a, { resend: true });
  }

  async #download(a: Active): Promise<void> {
    const download = this.o.download;
    if (!download) throw new DeployError('transfer', 'this device cannot download bundles by URL');
    let reported = a.file.length;
    // A broken connection resumes from the bytes held (HTTP Range) until the stall timer gives up.
    for (let delayMs = 250; !a.file.complete; delayMs = Math.min(delayMs * 2, 5_000)) {
      if (a.abort.signal.aborted) throw a.stalled ?? new DeployError('transfer', `truncated transfer: ${a.file.length} of ${a.spec.size} bytes`);
      try {
        await download(a.spec.url!, a.file.length, async (data) => {
          await a.file.append(data);
          this.#armStall(a);
          if (a.file.length - reported >= 1 << 20) {
            reported = a.file.length;
            await this.#progress(a, {});
          }
        }, a.abort.signal);
      } catch (e) {
        if (a.abort.signal.aborted) throw a.stalled ?? e;
        if (e instanceof DeployError) throw e;
        a.lastError = (e as Error).message;
        this.o.log?.(`deployment ${a.id}: download interrupted at ${a.file.length} of ${a.spec.size} bytes (${(e as Error).message}); resuming`);
      }
      if (!a.file.complete) await new Promise((r) => setTimeout(r, delayMs));
    }
    await this.#install(a);
  }

  #progress(a: Active, flags: { resumed?: true; resend?: true }): Promise<DeployStatus> {
    const next = a.spec.chunkSize !== undefined ? a.file.length / a.spec.chunkSize : undefined;
    return this.o.deployer.progress(a.id, { received: a.file.length, size: a.spec.size, ...(next !== undefined ? { next } : {}), ...flags });
  }

  async #install(a: Active): Promise<void> {
    clearTimeout(a.stall);
    clearInterval(a.ask);
    const bytes = await a.file.bytes();
    // Held in memory from here: a restart before `verifying` is persisted asks for the bytes again.
    await a.file.remove();
    const status = await this.o.deployer.install(bytes, { id: a.id, allowDowngrade: a.spec.allowDowngrade, transferMs: this.#clock.now() - a.started });
    this.#end(a, status);
  }

  async #fail(a: Active, e: unknown): Promise<void> {
    if (a.done) return;
    if (this.#closed) {
      // Shutting down: the transfer resumes at the next start.
      this.#end(a, undefined);
      return;
    }
    a.abort.abort();
    const err = e instanceof DeployError ? e : new DeployError('transfer', (e as Error).message);
    this.o.log?.(`deployment ${a.id}: ${err.message}`);
    await a.file.remove().catch(() => undefined);
    const status = await this.o.deployer.abandon(a.id, err.reason, err.message);
    this.#end(a, status);
  }
}
