/**
 * Real brokers for tests.
 *
 *   const broker = await Mosquitto.start();          // free 127.0.0.1 port, generated config, temp dir
 *   broker.url                                       // 'mqtt://127.0.0.1:<port>' ('mqtts://…' with tls)
 *   await Mosquitto.start({ websockets: true })      // also MQTT over WebSocket: broker.wsUrl 'ws://127.0.0.1:<port>'
 *   await Mosquitto.start({ tls: { ca, cert, key, requireCertificate: true }, allowAnonymous: false,
 *     config: ['password_file …', 'acl_file …'] })   // a secured broker (test/helpers/pki.ts makes the files)
 *   await broker.stop();                             // SIGTERM (persists its DB when persistence is on)
 *   await broker.kill();                             // SIGKILL (no goodbye, no save)
 *   await broker.restart();                          // start again on the same port (after stop/kill, or stops first)
 *   await broker.dispose();                          // stop + remove the temp dir
 *
 *   describeMosquitto('name', () => { ... })         // describe, or a visible skip when the binary is missing
 *                                                    // (fails instead when process.env.CI is set)
 *   const aedes = await startAedes();                // in-process Aedes on a free port: .url, .restart(), .close()
 *                                                    // (Aedes speaks MQTT 3.1.1 only: use protocolVersion 4)
 *
 * The binary is $MOSQUITTO, else /usr/sbin/mosquitto, else `mosquitto` on PATH.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, it } from 'vitest';
import { Aedes } from 'aedes';
import * as aedesPersistence from 'aedes-persistence';

function findBinary(): string | undefined {
  const candidates = [process.env.MOSQUITTO, '/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto',
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'mosquitto'))];
  return candidates.find((c): c is string => !!c && existsSync(c));
}

export const mosquittoBinary: string | undefined = findBinary();

/** A free TCP port on 127.0.0.1 (the OS picks it; tiny race until the broker binds it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port; rejects after `timeoutMs` or when `dead()` says so. */
async function waitForPort(port: number, timeoutMs: number, dead: () => string | undefined): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const why = dead();
    if (why) throw new Error(why);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => { s.destroy(); resolve(false); });
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing accepted connections on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface MosquittoOptions {
  /** Keep sessions and queued messages in a DB file across stop()/restart() (SIGTERM saves it). Default true. */
  persistence?: boolean;
  /** Extra lines for mosquitto.conf (e.g. 'max_inflight_messages 0'). */
  config?: string[];
  /** TLS on the listener (PEM paths); with requireCertificate clients must show a certificate the CA signed. */
  tls?: { ca: string; cert: string; key: string; requireCertificate?: boolean };
  /** Let clients in without credentials (default true). */
  allowAnonymous?: boolean;
  /** A second listener, MQTT over WebSocket (plain ws://), on its own free port. */
  websockets?: boolean;
}

export class Mosquitto {
  #proc: ChildProcess | undefined;
  #exit: Promise<void> = Promise.resolve();
  #log = '';

  private constructor(readonly port: number, readonly wsPort: number | undefined, readonly dir: string, private readonly opts: MosquittoOptions) {}

  get url(): string { return `${this.opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${this.port}`; }
  /** The WebSocket listener's URL (with `websockets: true`). */
  get wsUrl(): string | undefined { return this.wsPort === undefined ? undefined : `ws://127.0.0.1:${this.wsPort}`; }
  /** The broker's log so far (for failure messages). */
  get log(): string { return this.#log; }
  get running(): boolean { return this.#proc !== undefined; }

  static async start(opts: MosquittoOptions = {}): Promise<Mosquitto> {
    if (!mosquittoBinary) throw new Error('mosquitto binary not found (apt-get install mosquitto, or set $MOSQUITTO)');
    const dir = mkdtempSync(join(tmpdir(), 'edgerun-mosquitto-'));
    const port = await freePort();
    let wsPort: number | undefined;
    while (opts.websockets && (wsPort === undefined || wsPort === port)) wsPort = await freePort();
    const m = new Mosquitto(port, wsPort, dir, opts);
    await m.#spawn();
    return m;
  }

  async #spawn(): Promise<void> {
    const persistence = this.opts.persistence ?? true;
    const conf = join(this.dir, 'mosquitto.conf');
    writeFileSync(conf, [
      `listener ${this.port} 127.0.0.1`,
      ...(this.opts.tls ? [
        `cafile ${this.opts.tls.ca}`, `certfile ${this.opts.tls.cert}`, `keyfile ${this.opts.tls.key}`,
        `require_certificate ${this.opts.tls.requireCertificate ?? false}`,
      ] : []),
      `allow_anonymous ${this.opts.allowAnonymous ?? true}`,
      // Mosquitto 2.0.11's websockets listener (libwebsockets) ignores the bind address and listens
      // on every interface (one dual-stack IPv6 socket, `ss -ltn` shows *:port) unless it is told
      // ipv4 only: then it binds 127.0.0.1.
      ...(this.wsPort === undefined ? [] : [`listener ${this.wsPort} 127.0.0.1`, 'protocol websockets', 'socket_domain ipv4']),
      // Run as root, mosquitto drops to user "mosquitto", who cannot read or write this 0700 temp dir
      // (persistence, certificates); as another user the option has no effect. A caller's own `user` wins.
      ...((this.opts.config ?? []).some((l) => /^\s*user\s/.test(l)) ? [] : [`user ${userInfo().username}`]),
      `persistence ${persistence}`,
      `persistence_location ${this.dir}/`,
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      // Tests publish bursts; the defaults (1000 queued, 20 in flight) are fine, but no byte limit.
      'max_queued_messages 100000',
      ...(this.opts.config ?? []),
      '',
    ].join('\n'));
    const proc = spawn(mosquittoBinary!, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let exited: string | undefined;
    const append = (b: Buffer) => { this.#log = (this.#log + b.toString()).slice(-20_000); };
    proc.stdout!.on('data', append);
    proc.stderr!.on('data', append);
    this.#exit = new Promise((resolve) => proc.once('exit', (code, signal) => {
      exited = `mosquitto exited (code ${code}, signal ${signal}):\n${this.#log}`;
      if (this.#proc === proc) this.#proc = undefined;
      resolve();
    }));
    proc.once('error', (e) => { exited = `mosquitto failed to start: ${e.message}`; });
    this.#proc = proc;
    try {
      await waitForPort(this.port, 10_000, () => exited);
      if (this.wsPort !== undefined) await waitForPort(this.wsPort, 10_000, () => exited);
    } catch (e) {
      proc.kill('SIGKILL');
      throw e;
    }
  }

  async #signal(sig: NodeJS.Signals): Promise<void> {
    const p = this.#proc;
    if (!p) return;
    p.kill(sig);
    await this.#exit;
  }

  /** SIGTERM: mosquitto closes connections (no will for clean ones… but the clients see the socket close) and saves its DB. */
  stop(): Promise<void> { return this.#signal('SIGTERM'); }
  /** SIGKILL: the broker vanishes mid-stream. */
  kill(): Promise<void> { return this.#signal('SIGKILL'); }

  /** Starts it again on the same port with the same config and persistence directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#spawn();
  }

  /** Stops the broker and removes its directory. */
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * `describe` for suites that need the mosquitto binary. Missing binary: skipped with a visible
 * message, unless CI is set — then the suite fails, because CI must install it.
 */
export function describeMosquitto(name: string, fn: () => void): void {
  if (mosquittoBinary) {
    describe(name, fn);
    return;
  }
  if (process.env.CI) {
    describe(name, () => {
      it('needs the mosquitto binary', () => {
        throw new Error('mosquitto not found but CI is set: .ci/run must install it (apt-get install mosquitto)');
      });
    });
    return;
  }
  console.warn(`\n*** SKIPPING "${name}": mosquitto binary not found (apt-get install mosquitto, or set $MOSQUITTO) ***\n`);
  describe.skip(name, fn);
}

export interface AedesHandle {
  readonly port: number;
  readonly url: string;
  readonly broker: Aedes;
  /** Closes the listener and every client connection abruptly (like a crash), keeping the in-memory persistence. */
  crash(): Promise<void>;
  /** crash() then a fresh Aedes on the same port that shares the old persistence (sessions, queued QoS 1 messages). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** An in-process Aedes on a free 127.0.0.1 port (MQTT 3.1.1). */
export async function startAedes(): Promise<AedesHandle> {
  const port = await freePort();
  // aedes-persistence is CommonJS (module.exports = factory); its .d.ts does not declare the call.
  const persistence = (aedesPersistence as unknown as { default: () => unknown }).default();
  let broker!: Aedes;
  let server: Server | undefined;

  async function up(): Promise<void> {
    broker = await Aedes.createBroker({ persistence } as never);
    const s = createServer((socket) => broker.handle(socket));
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    server = s;
  }
  async function down(): Promise<void> {
    const s = server;
    if (!s) return;
    server = undefined;
    const closed = new Promise<void>((r) => s.close(() => r()));
    // Drop every connection without a goodbye; aedes.close() would otherwise end sessions cleanly.
    for (const c of Object.values((broker as unknown as { clients: Record<string, { conn: { destroy(): void } }> }).clients)) c.conn.destroy();
    await closed;
    // Closing the broker leaves the shared persistence (sessions, queued messages) for the next one.
    await new Promise<void>((r) => broker.close(() => r()));
  }

  await up();
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    get broker() { return broker; },
    crash: down,
    async restart() { await down(); await up(); },
    close: down,
  };
}
