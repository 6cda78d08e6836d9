/**
 * A private RabbitMQ with its MQTT plugin, for broker-portability tests (Debian rabbitmq-server).
 *
 *   const rabbit = await RabbitMq.start();          // own dirs, node name and ports (from freePort)
 *   rabbit.url                                      // 'mqtt://127.0.0.1:<port>' (MQTT 3.1.1: RabbitMQ 3.10)
 *   await rabbit.stop();  await rabbit.restart();   // SIGTERM (durable queues and sessions survive) / start again
 *   await rabbit.dispose();                         // stop, stop its epmd, remove the dirs
 *
 *   describeRabbitMq('name', () => { ... })         // describe, or a visible skip when rabbitmq-server is
 *                                                   // missing (fails instead when process.env.CI is set)
 *
 * Nothing is shared with a system RabbitMQ: HOME (the Erlang cookie), RABBITMQ_MNESIA_BASE,
 * RABBITMQ_LOG_BASE, the config and plugin files live in a temp dir; the node name, AMQP,
 * distribution and epmd ports are its own, so it runs as root on a fresh CI machine or beside other
 * instances. The server runs in a process group of its own, stopped as a group; its epmd is stopped
 * by port at dispose(). Start-up is bounded (START_TIMEOUT_MS).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'vitest';
import { freePort } from './mosquitto.js';

const SBIN = '/usr/lib/rabbitmq/bin';
/** The server script that runs the node in the foreground as the calling user ($RABBITMQ_BIN overrides the directory). */
const binDir = process.env.RABBITMQ_BIN ?? SBIN;
export const rabbitmqAvailable = existsSync(join(binDir, 'rabbitmq-server')) && existsSync(join(binDir, 'rabbitmq-plugins'));

/** RabbitMQ boots Erlang and mnesia: seconds on an idle machine, much more on a busy one. */
const START_TIMEOUT_MS = 120_000;

const run = promisify(execFile);

export class RabbitMq {
  #proc: ChildProcess | undefined;
  #exit: Promise<void> = Promise.resolve();
  #log = '';

  private constructor(readonly dir: string, readonly port: number, private readonly env: NodeJS.ProcessEnv, private readonly epmdPort: number) {}

  get url(): string { return `mqtt://127.0.0.1:${this.port}`; }
  get log(): string { return this.#log; }

  static async start(): Promise<RabbitMq> {
    if (!rabbitmqAvailable) throw new Error(`rabbitmq-server not found in ${binDir} (apt-get install rabbitmq-server, or set $RABBITMQ_BIN)`);
    const dir = mkdtempSync(join(tmpdir(), 'edgerun-rabbitmq-'));
    const [mqttPort, amqpPort, distPort, epmdPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    mkdirSync(join(dir, 'home'));
    writeFileSync(join(dir, 'rabbitmq.conf'), [
      `listeners.tcp.default = ${amqpPort}`,
      `mqtt.listeners.tcp.default = ${mqttPort}`,
      'mqtt.allow_anonymous = true',
      'mqtt.vhost = /',
      'mqtt.exchange = amq.topic',
      'log.console = false',
      'log.file.level = warning',
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: join(dir, 'home'),
      RABBITMQ_NODENAME: `edgerun-test-${mqttPort}@localhost`,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(amqpPort),
      RABBITMQ_DIST_PORT: String(distPort),
      ERL_EPMD_PORT: String(epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
      RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    };
    await run(join(binDir, 'rabbitmq-plugins'), ['--offline', 'enable', 'rabbitmq_mqtt'], { env, timeout: 60_000 });
    const r = new RabbitMq(dir, mqttPort, env, epmdPort);
    try {
      await r.#spawn();
    } catch (e) {
      await r.dispose();
      throw e;
    }
    return r;
  }

  async #spawn(): Promise<void> {
    // A process group of its own: the script's Erlang VM goes with it.
    const proc = spawn(join(binDir, 'rabbitmq-server'), [], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let exited: string | undefined;
    const append = (b: Buffer) => { this.#log = (this.#log + b.toString()).slice(-20_000); };
    proc.stdout!.on('data', append);
    proc.stderr!.on('data', append);
    this.#exit = new Promise((resolve) => proc.once('exit', (code, signal) => {
      exited = `rabbitmq-server exited (code ${code}, signal ${signal}):\n${this.#log}`;
      if (this.#proc === proc) this.#proc = undefined;
      resolve();
    }));
    proc.once('error', (e) => { exited = `rabbitmq-server failed to start: ${e.message}`; });
    this.#proc = proc;
    const until = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exited) throw new Error(exited);
      if (await accepts(this.port)) return;
      if (Date.now() > until) {
        await this.#signal('SIGKILL');
        throw new Error(`RabbitMQ's MQTT listener did not open on 127.0.0.1:${this.port} within ${START_TIMEOUT_MS} ms:\n${this.#log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async #signal(sig: NodeJS.Signals): Promise<void> {
    const p = this.#proc;
    if (!p?.pid) return;
    try {
      process.kill(-p.pid, sig);
    } catch {
      return; // already gone
    }
    await this.#exit;
  }

  /** SIGTERM: RabbitMQ shuts down cleanly (durable queues and their persistent messages kept). */
  stop(): Promise<void> { return this.#signal('SIGTERM'); }

  /** Starts it again on the same ports and data directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#spawn();
  }

  /** Stops the broker and the epmd it started, removes its directory. */
  async dispose(): Promise<void> {
    await this.#signal('SIGKILL');
    await run('epmd', ['-kill'], { env: { ...process.env, ERL_EPMD_PORT: String(this.epmdPort) }, timeout: 10_000 }).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => { s.destroy(); resolve(false); });
  });
}

/**
 * `describe` for suites that need RabbitMQ. Missing: skipped with a visible message, unless CI is
 * set — then the suite fails, because .ci/run must install it.
 */
export function describeRabbitMq(name: string, fn: () => void): void {
  if (rabbitmqAvailable) {
    describe(name, fn);
    return;
  }
  if (process.env.CI) {
    describe(name, () => {
      it('needs rabbitmq-server', () => {
        throw new Error('rabbitmq-server not found but CI is set: .ci/run must install it (apt-get install rabbitmq-server)');
      });
    });
    return;
  }
  console.warn(`\n*** SKIPPING "${name}": rabbitmq-server not found in ${binDir} (apt-get install rabbitmq-server, or set $RABBITMQ_BIN) ***\n`);
  describe.skip(name, fn);
}
