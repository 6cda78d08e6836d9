/**
 * The dashboard's HTTP server (node:http): the single-page app in public/, the browser builds of
 * mqtt.js and uPlot straight from their npm packages, the runtime modules the page shares with the
 * CLI (page-modules.ts, bundled by esbuild at start) and /config.json telling the page where the
 * broker's WebSocket listener is. GET and HEAD only; nothing outside these files is reachable.
 *
 *   const d = await startDashboard({ port: 8080, brokerWs: 'ws://127.0.0.1:8883', prefix: 'edgerun' });
 *   d.url    // http://127.0.0.1:8080/
 *   await d.close();
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

export interface DashboardOptions {
  /** HTTP port; 0 = a free port. */
  port: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** The broker's MQTT-over-WebSocket URL the page connects to (ws:// or wss://). */
  brokerWs: string;
  /** Topic root (config mqtt.prefix). */
  prefix: string;
}

export interface Dashboard {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));
const PUBLIC = join(here, 'public');
const require = createRequire(import.meta.url);
const packageDir = (name: string): string => dirname(require.resolve(`${name}/package.json`));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** Files served from packages, by URL path. */
const VENDOR: Readonly<Record<string, () => string>> = {
  '/vendor/mqtt.js': () => join(packageDir('mqtt'), 'dist/mqtt.esm.js'),
  '/vendor/uplot.js': () => join(packageDir('uplot'), 'dist/uPlot.esm.js'),
  '/vendor/uplot.css': () => join(packageDir('uplot'), 'dist/uPlot.min.css'),
};

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // The page talks to its own origin and to MQTT brokers over WebSocket, nothing else (mqtt.js runs its keep-alive timer in a blob: worker).
  'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; worker-src 'self' blob:; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
};

/** The browser bundle of page-modules.ts (from the .ts source under tsx, the .js one in dist/). */
async function bundlePageModules(): Promise<Uint8Array> {
  const entry = join(here, `page-modules${extname(fileURLToPath(import.meta.url))}`);
  const out = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true, write: false, logLevel: 'silent' });
  return out.outputFiles[0]!.contents;
}

/** The file under PUBLIC a URL path names, or undefined (traversal, hidden files, unknown types). */
function publicFile(urlPath: string): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (path === '/') path = '/index.html';
  if (path.includes('\0') || path.split('/').some((part) => part.startsWith('.'))) return undefined;
  const file = resolve(PUBLIC, `.${path}`);
  if (!file.startsWith(PUBLIC + sep) || !(extname(file) in CONTENT_TYPES)) return undefined;
  return file;
}

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  if (!/^wss?:\/\/[^/\s]+/.test(o.brokerWs)) throw new Error(`--broker-ws ${o.brokerWs}: expected a ws:// or wss:// URL`);
  const pageModules = await bundlePageModules();
  const config = JSON.stringify({ brokerWs: o.brokerWs, prefix: o.prefix });

  // ~1 MB of JavaScript (the bundle, mqtt.js, uPlot) is a quarter of that gzipped: compressed once
  // per path, as the files do not change while the server runs.
  const gzipped = new Map<string, Uint8Array>();
  const send = (req: IncomingMessage, res: ServerResponse, status: number, type: string, body: Uint8Array | string, path?: string): void => {
    const headers: Record<string, string> = { 'content-type': type, 'cache-control': 'no-cache', vary: 'accept-encoding', ...SECURITY_HEADERS };
    if (path !== undefined && body.length > 1024 && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      let zipped = gzipped.get(path);
      if (!zipped) gzipped.set(path, zipped = gzipSync(body));
      body = zipped;
      headers['content-encoding'] = 'gzip';
    }
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://dashboard').pathname;
    if (path === '/config.json') return send(req, res, 200, CONTENT_TYPES['.json']!, config);
    if (path === '/edgerun.js') return send(req, res, 200, CONTENT_TYPES['.js']!, pageModules, path);
    const file = VENDOR[path]?.() ?? publicFile(path);
    if (file === undefined) return send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
    let body: Uint8Array;
    try {
      body = await readFile(file);
    } catch {
      return send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
    send(req, res, 200, CONTENT_TYPES[extname(file)]!, body, path);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => { if (!res.headersSent) send(req, res, 500, 'text/plain; charset=utf-8', 'internal error\n'); else res.destroy(); });
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((ok, fail) => {
    server.once('error', (e) => fail(new Error(`dashboard: cannot listen on ${host}:${o.port}: ${e.message}`)));
    server.listen(o.port, host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${h}:${port}/`,
    port,
    close() {
      closing ??= new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
      return closing;
    },
  };
}
