/** `npm start` as a user runs it: the demo command in a subprocess, short, must end by itself with 0. */
import { describe, expect, it } from 'vitest';
import { startEdgerun } from '../helpers/cli.js';
import { until } from '../helpers/until.js';

describe('demo (npm start)', () => {
  it('starts the embedded broker, a device, a listener and the dashboard, streams both models, sends a signed command and exits 0', { timeout: 120_000 }, async () => {
    const demo = startEdgerun(['demo', '--seconds', '6', '--rate', '5'], {}, 1 << 20);
    let stderr = '';
    demo.proc.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    // While it runs, the dashboard it prints serves the page, pointed at the demo broker's WebSocket listener.
    const [, brokerWs, url] = await until('the dashboard line', () => /WebSocket (ws:\/\/\S+)[\s\S]*dashboard\s+(http:\/\/\S+)/.exec(demo.log()) ?? undefined, 60_000, demo.log);
    const page = await fetch(url!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/app.js">');
    expect(await (await fetch(new URL('/config.json', url))).json()).toEqual({ brokerWs, prefix: 'edgerun' });
    const { code } = await demo.exit;
    const stdout = demo.log();
    expect(stderr).toBe('');
    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/broker \(embedded Aedes\)\s+mqtt:\/\/127\.0\.0\.1:\d+\s+WebSocket ws:\/\/127\.0\.0\.1:\d+/);
    expect(stdout).toMatch(/npx edgerun listen --url mqtt:\/\/127\.0\.0\.1:\d+/);
    expect(stdout).toMatch(/dashboard\s+http:\/\/127\.0\.0\.1:\d+\/\s+\(to send commands, load \S+operator\.key into it\)/);
    expect(stdout).toContain('event: command set-placement ok');
    const produced = Number(/(\d+) results produced, (\d+) unique messages received \((\d+) duplicates/.exec(stdout)?.[1]);
    expect(produced).toBeGreaterThan(0);
    // Both models stream; every produced result reached the listener (the table sums to it).
    const rows = [...stdout.matchAll(/^(mlp|cnn)\s+(\d+)\s+([\d.]+)%/gm)];
    expect(rows.map((m) => m[1]).sort()).toEqual(['cnn', 'mlp']);
    expect(rows.reduce((a, m) => a + Number(m[2]), 0)).toBe(produced);
  });
});
