/**
 * The Downloader of runtime/deploy/agent.ts on Node's fetch: GET with `Range: bytes=<from>-` when
 * resuming. A server that answers 206 sends the rest; one that ignores Range (200) sends it all,
 * and the bytes already held are skipped. Anything else is an error naming the status; a 4xx that
 * asking again will not cure (not 408, 425 or 429) is a DeployError, which ends the transfer at once.
 */
import type { Downloader } from '../../runtime/deploy/agent.js';
import { DeployError } from '../../runtime/deploy/errors.js';

const RETRYABLE_4XX = new Set([408, 425, 429]);

export const httpDownload: Downloader = async (url, from, onData, signal) => {
  const res = await fetch(url, { headers: from > 0 ? { range: `bytes=${from}-` } : {}, signal, redirect: 'follow' });
  if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel().catch(() => undefined);
    const message = `GET ${url}: HTTP ${res.status} ${res.statusText}`;
    throw res.status >= 400 && res.status < 500 && !RETRYABLE_4XX.has(res.status) ? new DeployError('transfer', message) : new Error(message);
  }
  if (res.status === 206 && !(res.headers.get('content-range') ?? '').startsWith(`bytes ${from}-`)) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`GET ${url}: the server resumed at ${res.headers.get('content-range')}, not at byte ${from}`);
  }
  let skip = res.status === 200 ? from : 0;
  if (!res.body) return;
  for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
    let data = piece;
    if (skip > 0) {
      const n = Math.min(skip, data.byteLength);
      skip -= n;
      data = data.subarray(n);
      if (data.byteLength === 0) continue;
    }
    await onData(data);
  }
};
