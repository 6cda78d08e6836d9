/**
 * The dashboard's HTTP server over real sockets: the page's files with their content types, the
 * browser builds straight from the npm packages, nothing else reachable (traversal, hidden files,
 * other methods), the bundled runtime module signing byte for byte as the CLI's code does, and its
 * body types.
 */
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type Dashboard } from '../../apps/dashboard/server.js';
import { buildCommand } from '../../runtime/telemetry/commands.js';
import { decodeMessage } from '../../runtime/telemetry/envelope.js';
import { encodeKeyFile, fingerprint, generateKeyPair } from '../../runtime/telemetry/keys.js';
import { edgerun, repoRoot, startEdgerun } from '../helpers/cli.js';
import { until } from '../helpers/until.js';

/** A raw request (fetch would normalise "/../" away before it reaches the server). */
function get(d: Dashboard, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; type?: string; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: d.port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard server', () => {
  let d: Dashboard;
  let dir: string;
  beforeAll(async () => {
    d = await startDashboard({ port: 0, brokerWs: 'ws://127.0.0.1:9001', prefix: 'plant' });
    dir = mkdtempSync(join(tmpdir(), 'edgerun-dash-'));
  });
  afterAll(async () => {
    await d?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page, its modules and the packages\' browser builds with their content types', async () => {
    const page = await get(d, '/');
    expect(page.status).toBe(200);
    expect(page.type).toBe('text/html; charset=utf-8');
    expect(page.body.toString()).toContain('<script type="module" src="/app.js">');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    for (const [path, type] of [['/app.js', 'text/javascript; charset=utf-8'], ['/style.css', 'text/css; charset=utf-8'], ['/edgerun.js', 'text/javascript; charset=utf-8']]) {
      const r = await get(d, path!);
      expect([path, r.status, r.type]).toEqual([path, 200, type]);
      expect(r.body.length).toBeGreaterThan(100);
    }
    const mqtt = await get(d, '/vendor/mqtt.js');
    expect(mqtt.body.equals(readFileSync(join(repoRoot, 'node_modules/mqtt/dist/mqtt.esm.js')))).toBe(true);
    const uplot = await get(d, '/vendor/uplot.css');
    expect(uplot.type).toBe('text/css; charset=utf-8');
    expect(uplot.body.equals(readFileSync(join(repoRoot, 'node_modules/uplot/dist/uPlot.min.css')))).toBe(true);
    const config = await get(d, '/config.json');
    expect(JSON.parse(config.body.toString())).toEqual({ brokerWs: 'ws://127.0.0.1:9001', prefix: 'plant' });
    // Compressed for browsers that say they take gzip, the same bytes once inflated.
    const zipped = await get(d, '/vendor/mqtt.js', 'GET', { 'accept-encoding': 'gzip, deflate, br' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.body.length).toBeLessThan(mqtt.body.length / 2);
    expect(gunzipSync(zipped.body).equals(mqtt.body)).toBe(true);
    expect(mqtt.headers['content-encoding']).toBeUndefined();
    const head = await get(d, '/app.js', 'HEAD');
    expect([head.status, head.body.length]).toEqual([200, 0]);
  });

  it('reaches nothing outside its files: traversal, encoded traversal, hidden files, unknown types, other methods', async () => {
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/.gitignore', '/app.js%00.html',
      '/server.ts', '/../server.ts', '/vendor/../../package.json', '/nope.html', '/%E0%A4%A', '/page-modules.ts']) {
      const r = await get(d, path);
      expect([path, r.status]).toEqual([path, 404]);
    }
    const post = await get(d, '/', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('serves the runtime\'s own command signing: the page\'s payload is the CLI\'s, byte for byte, and reads key files the same way', async () => {
    const file = join(dir, 'edgerun.mjs');
    writeFileSync(file, (await get(d, '/edgerun.js')).body);
    const page = await import(pathToFileURL(file).href) as typeof import('../../apps/dashboard/page-modules.js');
    const key = generateKeyPair();
    const loaded = page.parseKeyFile(encodeKeyFile(key, 'operator'), 'operator.key');
    expect(page.fingerprint(loaded.publicKey)).toBe(fingerprint(key.publicKey));
    const o = { device: 'edge-1', name: 'set-placement', args: { model: 'mlp', policy: 'digital' }, nonce: '5f0c3a9e2b7d4c1a8e6f0b2d4c6a8e0f', ts: 1_796_000_000_000 };
    const fromPage = page.buildCommand({ ...o, signer: loaded });
    expect(Buffer.from(fromPage).equals(Buffer.from(buildCommand({ ...o, signer: key })))).toBe(true);
    expect(decodeMessage(fromPage).message.body).toEqual({ name: 'set-placement', args: o.args, nonce: o.nonce });
    expect(() => page.parseKeyFile(new TextEncoder().encode('{"type":"ed25519","publicKey":"AAAA","secretKey":"AAAA"}'), 'bad.key')).toThrow(/bad.key: not an ed25519 key file/);
  });

  it('serves the body types the page reads with: fields of the wrong type left out, names kept as plain keys', async () => {
    const file = join(dir, 'edgerun-bodies.mjs');
    writeFileSync(file, (await get(d, '/edgerun.js')).body);
    const page = await import(pathToFileURL(file).href) as typeof import('../../apps/dashboard/page-modules.js');
    expect(page.readBody('telemetry', { completed: 'many', streams: { a: null, b: { depth: 2, paused: 'yes' } }, power: 5 })).toEqual({ streams: { b: { depth: 2 } }, models: {}, guards: {} });
    expect(page.readBody('status', '<b>offline</b>')).toEqual({ modelVersions: {} });
    expect(page.readBody('detections', { detections: [null, { label: 7, box: [0, 0, 1, 'x'] }] })).toEqual({ detections: [{ label: '7' }] });
    const named = page.readBody('telemetry', JSON.parse('{"streams": {"__proto__": {"depth": 1}}}'));
    expect(Object.keys(named.streams)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(named.streams)).toBe(Object.prototype);
    // Events keep their other fields (the log shows them); the ones the page reads are typed.
    expect(page.readBody('events', { type: 'deploy', state: 'active', ok: 'yes', after: 'x', extra: { a: 1 } })).toEqual({ type: 'deploy', state: 'active', extra: { a: 1 } });
  });

  it('edgerun dashboard refuses a broker URL that is not a WebSocket one with a one-line error and exit code 2', async () => {
    const ws = await edgerun(['dashboard', '--port', '0', '--broker-ws', 'http://127.0.0.1:8883']);
    expect(ws.code).toBe(2);
    expect(ws.stderr.trim()).toBe('edgerun: --broker-ws http://127.0.0.1:8883: expected a ws:// or wss:// URL');
  });
});

describe('edgerun dashboard', () => {
  it('never prints the password of a ws:// broker URL taken from config mqtt.url', { timeout: 60_000 }, async () => {
    const run = startEdgerun(['dashboard', '--port', '0'], { EDGERUN_MQTT__URL: 'ws://viewer:s3cret-pw@127.0.0.1:9001/mqtt' });
    try {
      await until('the dashboard line', () => /the page connects to/.test(run.log()), 45_000);
      expect(run.log()).toContain('the page connects to ws://viewer:***@127.0.0.1:9001/mqtt');
      expect(run.log()).not.toContain('s3cret-pw');
    } finally {
      run.proc.kill('SIGTERM');
      await run.exit;
    }
  });
});
