/** `npm start` as a user runs it: the demo command in a subprocess, short, must end by itself with 0. */
import { describe, expect, it } from 'vitest';
import { edgerun } from '../helpers/cli.js';

describe('demo (npm start)', () => {
  it('starts the embedded broker, a device and a listener, streams both models, sends a signed command and exits 0', { timeout: 120_000 }, async () => {
    const r = await edgerun(['demo', '--seconds', '6', '--rate', '5']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/broker \(embedded Aedes\)\s+mqtt:\/\/127\.0\.0\.1:\d+\s+WebSocket ws:\/\/127\.0\.0\.1:\d+/);
    expect(r.stdout).toMatch(/npx edgerun listen --url mqtt:\/\/127\.0\.0\.1:\d+/);
    expect(r.stdout).toMatch(/dashboard\s+http:\/\/127\.0\.0\.1:\d+\/\s+\(to send commands, load \S+operator\.key into it\)/);
    expect(r.stdout).toContain('event: command set-placement ok');
    const produced = Number(/(\d+) results produced, (\d+) unique messages received \((\d+) duplicates/.exec(r.stdout)?.[1]);
    expect(produced).toBeGreaterThan(0);
    // Both models stream; every produced result reached the listener (the table sums to it).
    const rows = [...r.stdout.matchAll(/^(mlp|cnn)\s+(\d+)\s+([\d.]+)%/gm)];
    expect(rows.map((m) => m[1]).sort()).toEqual(['cnn', 'mlp']);
    expect(rows.reduce((a, m) => a + Number(m[2]), 0)).toBe(produced);
  });
});
