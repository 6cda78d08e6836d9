/**
 * The MQTT port: the little of an MQTT client that runtime/ needs. drivers/mqtt/mqtt-client.ts
 * implements it on mqtt.js; anything else (a test double, another library) may too.
 *
 * Contract:
 * - `connect()` starts connecting and keeps reconnecting (with backoff) until `end()`; idempotent.
 * - `publish()` resolves when the broker acknowledged (QoS 1 PUBACK) or the packet was written
 *   (QoS 0); it rejects — and never resolves later — when the connection is lost first or when not
 *   connected. The client keeps no offline queue: the caller (the outbox) is the source of truth
 *   and resends after the next `onConnect`.
 * - `setWill()` applies from the next CONNECT on (each reconnect sends the current will); given a
 *   function, it is called for each CONNECT (so the will can carry that connection's time).
 * - `end()` sends DISCONNECT (no will) and stops reconnecting; `end({ force: true })` drops the
 *   socket without a goodbye (the broker then publishes the will).
 */

export type QoS = 0 | 1;

export interface PublishOptions {
  qos: QoS;
  retain?: boolean;
  /** MQTT 5 only (ignored on 3.1.1). */
  contentType?: string;
  /** MQTT 5 message expiry interval, seconds (ignored on 3.1.1). */
  messageExpirySeconds?: number;
  /** MQTT 5 user properties (ignored on 3.1.1). */
  userProperties?: Record<string, string>;
}

export interface Will extends PublishOptions {
  topic: string;
  payload: Uint8Array;
}

export interface IncomingMessage {
  topic: string;
  payload: Uint8Array;
  retain: boolean;
  /** MQTT 5 properties, when present. */
  contentType?: string;
  userProperties?: Record<string, string | string[]>;
}

export interface ConnectInfo {
  /** The broker kept our session (subscriptions) from before. */
  sessionPresent: boolean;
  protocolVersion: 4 | 5;
  /** MQTT 5 Receive Maximum of the broker: how many QoS 1 publishes it takes in flight (65535 when unsaid). */
  receiveMaximum: number;
}

/** Rejection of publish() when the broker refused the message (MQTT 5 PUBACK reason code ≥ 0x80). */
export class PublishRejectedError extends Error {
  override readonly name = 'PublishRejectedError';
  constructor(readonly reasonCode: number, message: string) {
    super(message);
  }
}

/** Rejection of publish() because the connection is down or dropped before the acknowledgement. */
export class NotConnectedError extends Error {
  override readonly name = 'NotConnectedError';
}

export interface MqttPort {
  readonly connected: boolean;
  readonly protocolVersion: 4 | 5;
  connect(): void;
  setWill(will: Will | (() => Will) | undefined): void;
  publish(topic: string, payload: Uint8Array, opts: PublishOptions): Promise<void>;
  subscribe(filter: string, qos: QoS): Promise<void>;
  unsubscribe(filter: string): Promise<void>;
  /** Each returns a function that removes the handler. */
  onMessage(handler: (m: IncomingMessage) => void): () => void;
  onConnect(handler: (info: ConnectInfo) => void): () => void;
  onClose(handler: (reason?: Error) => void): () => void;
  end(opts?: { force?: boolean }): Promise<void>;
}
