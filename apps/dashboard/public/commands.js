// Signed commands from the page: the operator loads a key file (the format `edgerun keys gen`
// writes) explicitly; it stays in this page's memory only. Signing, nonce and envelope are the
// runtime's own code (build-command.ts, bundled as /edgerun.js), so the device checks them
// exactly as it checks `edgerun cmd`.
import { buildCommand, commandTopic, fingerprint, newNonce, parseKeyFile } from '/edgerun.js';

export class CommandSender {
  signer = undefined;          // {publicKey, secretKey, name?, fingerprint}
  sent = [];                   // newest last: {nonce, key, device, name, args, ts, state, detail}
  #listeners = new Set();

  constructor(prefix) { this.prefix = prefix; }

  /** Calls f on every change; returns the function that stops it. */
  onChange(f) { this.#listeners.add(f); return () => this.#listeners.delete(f); }
  #changed() { for (const f of this.#listeners) f(); }

  /** Reads a key file's text; throws the runtime's KeyError message on anything else. */
  load(text, source) {
    const key = parseKeyFile(new TextEncoder().encode(text), source);
    this.signer = { ...key, fingerprint: fingerprint(key.publicKey) };
    this.#changed();
    return this.signer;
  }

  forget() {
    this.signer = undefined;
    this.#changed();
  }

  /** Signs and publishes one command (QoS 1); its outcome arrives as an event with the same nonce. */
  async send(mqtt, device, name, args) {
    if (!this.signer) throw new Error('load a signing key first');
    const nonce = newNonce();
    const ts = Date.now();
    const payload = buildCommand({ device: device.id, name, args, signer: this.signer, nonce, ts });
    const entry = { nonce, key: device.key, device: device.id, name, args, ts, state: 'sending', detail: '' };
    this.sent.push(entry);
    if (this.sent.length > 50) this.sent.shift();
    this.#changed();
    try {
      await mqtt.publishAsync(commandTopic({ prefix: this.prefix, fleet: device.fleet, device: device.id }, name), payload, { qos: 1 });
      entry.state = entry.state === 'sending' ? 'sent' : entry.state;
    } catch (e) {
      entry.state = 'failed';
      entry.detail = `not published: ${e.message}`;
    }
    this.#changed();
    return entry;
  }

  /** An event body from a device: the outcome of one of our commands? */
  outcome(body) {
    if (body?.type !== 'command-result' && body?.type !== 'command-rejected') return;
    const entry = this.sent.find((s) => s.nonce === body.nonce);
    if (!entry) return;
    if (body.type === 'command-rejected') {
      entry.state = 'rejected';
      entry.detail = `${body.reason}: ${body.detail}`;
    } else {
      entry.state = body.ok ? 'ok' : 'failed';
      entry.detail = body.ok ? (body.result === undefined ? '' : JSON.stringify(body.result)) : String(body.error);
    }
    this.#changed();
  }
}
