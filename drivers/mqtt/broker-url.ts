/**
 * Broker URLs as edgerun takes them: `mqtt://` (TCP), `mqtts://` (TLS), `ws://` and `wss://` (MQTT
 * over WebSocket), optionally with `user:password@`. Other spellings mqtt.js would take (tcp://,
 * ssl://, tls://) are refused with the edgerun one to use, so configs and logs name each transport
 * one way; `http://` and a URL without a scheme are refused rather than guessed at.
 */

export const BROKER_SCHEMES = ['mqtt', 'mqtts', 'ws', 'wss'] as const;

/** What to write instead of the schemes people bring from other clients and from the web. */
const INSTEAD: Readonly<Record<string, string>> = {
  tcp: 'mqtt://', ssl: 'mqtts://', tls: 'mqtts://',
  http: 'mqtt:// (or ws:// for MQTT over WebSocket)', https: 'mqtts:// (or wss:// for MQTT over WebSocket)',
};

/** Throws a one-line error naming what is wrong with the URL; returns it unchanged when it is usable. */
export function checkBrokerUrl(url: string): string {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  const shown = redactUrl(url);
  if (scheme === undefined) throw new Error(`broker URL '${shown}' has no scheme: write mqtt://host:port (or mqtts://, ws://, wss://)`);
  if (!(BROKER_SCHEMES as readonly string[]).includes(scheme)) {
    throw new Error(`broker URL '${shown}': '${scheme}://' is not one of edgerun's MQTT transports; use ${INSTEAD[scheme] ?? BROKER_SCHEMES.map((s) => `${s}://`).join(', ')}`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`broker URL '${shown}' is not a valid URL`);
  }
  if (!parsed.hostname) throw new Error(`broker URL '${shown}' names no host`);
  return url;
}

/** The URL with its password (if any) replaced by `***`: for logs, hints and error messages. */
export function redactUrl(url: string): string {
  // Not through URL(): it would also normalise (or fail on) what it is shown for.
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@:]*):[^/]*@/, '$1:***@');
}
