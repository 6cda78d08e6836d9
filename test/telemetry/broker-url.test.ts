/**
 * Broker URLs and the MQTT command-line options as a user gets them wrong: a URL without a scheme,
 * http:// or tcp://, --protocol 3, --out in a missing directory, a closed port. Each ends with a
 * one-line reason and a non-zero exit, and a password in a URL is never shown.
 */
import { describe, expect, it, vi } from 'vitest';
import { checkBrokerUrl, redactUrl } from '../../drivers/mqtt/broker-url.js';
import { edgerun } from '../helpers/cli.js';
import { freePort } from '../helpers/mosquitto.js';

vi.setConfig({ testTimeout: 60_000 });

describe('broker URLs', () => {
  it('accepts mqtt, mqtts, ws and wss; refuses the rest with the scheme to use', () => {
    for (const u of ['mqtt://127.0.0.1:1883', 'mqtts://broker.example:8883', 'ws://[::1]:8080/mqtt', 'wss://u:p@host/mqtt', 'MQTT://HOST']) expect(checkBrokerUrl(u)).toBe(u);
    expect(() => checkBrokerUrl('127.0.0.1:1883')).toThrow(/has no scheme: write mqtt:\/\/host:port/);
    expect(() => checkBrokerUrl('localhost')).toThrow(/has no scheme/);
    expect(() => checkBrokerUrl('http://broker:1883')).toThrow(/'http:\/\/' is not one of edgerun's MQTT transports; use mqtt:\/\/ \(or ws:\/\//);
    expect(() => checkBrokerUrl('tcp://broker:1883')).toThrow(/use mqtt:\/\/$/);
    expect(() => checkBrokerUrl('ssl://broker:8883')).toThrow(/use mqtts:\/\/$/);
    expect(() => checkBrokerUrl('ftp://broker')).toThrow(/use mqtt:\/\/, mqtts:\/\/, ws:\/\/, wss:\/\//);
    expect(() => checkBrokerUrl('mqtt://')).toThrow(/not a valid URL|names no host/);
    expect(() => checkBrokerUrl('http://user:s3cret@broker')).toThrow(/user:\*\*\*@broker/);
  });

  it('redacts the password, wherever the @ falls, and leaves URLs without one alone', () => {
    expect(redactUrl('mqtts://dev:s3cret@broker:8883')).toBe('mqtts://dev:***@broker:8883');
    expect(redactUrl('mqtt://dev:p@ss@broker')).toBe('mqtt://dev:***@broker');
    expect(redactUrl('mqtt://:token@broker/x')).toBe('mqtt://:***@broker/x');
    expect(redactUrl('mqtt://dev@broker:1883')).toBe('mqtt://dev@broker:1883');
    expect(redactUrl('ws://broker:8080/mqtt')).toBe('ws://broker:8080/mqtt');
  });
});

describe('edgerun listen, cmd and serve on bad MQTT options', () => {
  const oneLine = (stderr: string): string => {
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    return lines[0]!;
  };

  it('refuses URLs without an MQTT scheme (exit 2, one line, no password)', async () => {
    for (const [args, want] of [
      [['listen', '--url', '127.0.0.1:1883'], /has no scheme/],
      [['listen', '--url', 'http://bob:hunter2@127.0.0.1:1883'], /bob:\*\*\*@.*use mqtt:\/\//],
      [['cmd', 'edge-1', 'pause-stream', '--key', 'x.key', '--url', 'tcp://127.0.0.1:1883'], /use mqtt:\/\//],
      [['serve', '--url', 'localhost:1883', '--count', '1'], /has no scheme/],
    ] as const) {
      const r = await edgerun([...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(oneLine(r.stderr)).toMatch(want);
      expect(r.stderr).not.toContain('hunter2');
    }
  });

  it('--protocol takes 4 or 5 only, on listen, cmd and serve', async () => {
    for (const cmd of [['listen'], ['cmd', 'edge-1', 'x', '--key', 'k'], ['serve']]) {
      const r = await edgerun([...cmd, '--protocol', '3']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/'3' is invalid\. 4 \(MQTT 3\.1\.1\) or 5/);
    }
    const embedded = await edgerun(['serve', '--protocol', '5', '--count', '1', '--model', 'models/mlp.onnx']);
    expect(embedded.code).toBe(2);
    expect(oneLine(embedded.stderr)).toMatch(/MQTT 5 needs an external broker/);
  });

  it('listen --out in a missing directory: exit 2 and a one-line reason, nothing connected', async () => {
    const r = await edgerun(['listen', '--out', '/nonexistent-dir/sub/out.jsonl', '--timeout', '30']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe('edgerun: --out /nonexistent-dir/sub/out.jsonl: cannot append to it (its directory does not exist)');
  });

  it('listen on a closed port with --timeout: exit 1 saying it never connected', async () => {
    const port = await freePort();
    const r = await edgerun(['listen', '--url', `mqtt://bob:hunter2@127.0.0.1:${port}`, '--timeout', '2', '--count', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toBe(`edgerun listen: no connection to mqtt://bob:***@127.0.0.1:${port} within 2 s (connect ECONNREFUSED 127.0.0.1:${port})`);
    expect(r.stderr).not.toContain('hunter2');
  });
});
