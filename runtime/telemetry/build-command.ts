/**
 * The sender's side of signed commands (commands.ts checks them): the message
 * `{device, seq, ts, kind: 'cmd', body: {name, args, nonce}}` in a signed envelope (envelope.ts).
 * Free of Node APIs: `edgerun cmd`, the demo and the dashboard's page all sign with this code.
 */
import nacl from 'tweetnacl';
import { encodeMessage, toHex, type Encoding, type SigningKey } from './envelope.js';
import { commandTopic } from './topics.js';

export interface BuildCommandOptions {
  device: string;
  name: string;
  args?: unknown;
  signer: SigningKey;
  /** Wall-clock ms (default Date.now()). */
  ts?: number;
  /** Default: 16 random bytes, hex. */
  nonce?: string;
  /** The sender's sequence number (default: ts). */
  seq?: number;
  encoding?: Encoding;
}

export interface CommandBody {
  name: string;
  args: unknown;
  nonce: string;
}

/** A fresh command nonce: 16 random bytes, hex. */
export const newNonce = (): string => toHex(nacl.randomBytes(16));

/** The signed payload of a command; publish it to commandTopic(address, name) with QoS 1. */
export function buildCommand(o: BuildCommandOptions): Uint8Array {
  const ts = o.ts ?? Date.now();
  const body: CommandBody = { name: o.name, args: o.args ?? {}, nonce: o.nonce ?? newNonce() };
  return encodeMessage({ device: o.device, seq: o.seq ?? ts, ts, kind: 'cmd', body }, { signer: o.signer, encoding: o.encoding });
}

export { commandTopic };
