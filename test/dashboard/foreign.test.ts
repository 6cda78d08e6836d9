/**
 * The dashboard in a real Chromium against foreign MQTT clients: publishers that speak the topic
 * and envelope contract but are not edgerun (a real embedded broker, the real dashboard server,
 * plain mqtt.js clients). What they send is not trusted: bodies of the wrong shape, HTML in every
 * string the page shows, ever new label names, a hundred and fifty devices at once, devices
 * dropping off; the page must
 * keep rendering what is well formed, show text as text, fetch nothing but its own files, survive a
 * malformed address, keep keyboard focus while the lists move, and refuse a bad key file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { encode as jpegEncode } from 'jpeg-js';
import { startDashboard, type Dashboard } from '../../apps/dashboard/server.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../drivers/mqtt/embedded-broker.js';
import { encodeMessage } from '../../runtime/telemetry/envelope.js';
import { until } from '../helpers/until.js';

const CHROMIUM = '/usr/bin/chromium';
const XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

describe('dashboard in Chromium with foreign publishers', () => {
  let broker: EmbeddedBroker;
  let dashboard: Dashboard;
  let browser: BrowserContext;
  let pub: mqtt.MqttClient;
  let dir: string;
  const seqs = new Map<string, number>();
  const errors: string[] = [];
  const requests: string[] = [];

  /** One envelope from a foreign publisher (unsigned, JSON), as a device of `fleet` would send it. */
  const send = async (fleet: string, device: string, kind: string, body: unknown, retain = false): Promise<void> => {
    const seq = seqs.get(device) ?? 0;
    seqs.set(device, seq + 1);
    await pub.publishAsync(`edgerun/${fleet}/${device}/${kind}`, Buffer.from(encodeMessage({ device, session: 'foreign', seq, ts: Date.now(), kind, body })), { qos: 1, retain });
  };
  const online = (fleet: string, device: string, extra: Record<string, unknown> = {}): Promise<void> => send(fleet, device, 'status', { state: 'online', device, fleet, ...extra }, true);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edgerun-dash-foreign-'));
    broker = await startEmbeddedBroker({ port: 0, wsPort: 0 });
    dashboard = await startDashboard({ port: 0, brokerWs: broker.wsUrl!, prefix: 'edgerun' });
    pub = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: 'foreign-publisher', reconnectPeriod: 0 });
    browser = await chromium.launchPersistentContext(join(dir, 'chromium'), {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await pub?.endAsync(true);
    await dashboard?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const openPage = async (width: number, height: number, hash = '#/'): Promise<Page> => {
    const page = await browser.newPage();
    await page.setViewportSize({ width, height });
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${dashboard.url}${hash}`);
    await page.locator('#conn.up').waitFor({ timeout: 30_000 });
    return page;
  };

  it('shows bodies of the wrong shape and HTML in every string as text, keeps the newest 64 labels of a device, and keeps rendering', { timeout: 120_000 }, async () => {
    const page = await openPage(1366, 900);
    // Wrong shapes everywhere a device's body is read (every field the views use).
    await online('hostile', 'shapes', { models: 'not-a-list', modelVersions: null, profile: { a: 1 }, runtime: 42, pid: [1] });
    await send('hostile', 'shapes', 'telemetry', {
      completed: 'many', streams: { a: null, b: 'x', c: { serviceMs: null, waitMs: 'slow' } }, models: { m: null, n: 'x' }, guards: { m: null, n: 'x' },
      power: { measuredW: 'hot', modelledW: null, batteryPct: 'full', energy: { inferences: 3, perInferenceJ: 'x', measuredToModelled: 'x', breakdownJ: 'x', byModel: { m: null } }, governor: { enabled: true, shed: 'everything', allowedW: 'x' } },
    });
    await send('hostile', 'shapes', 'telemetry', { streams: null, models: [null], power: null, queueDepth: {} });
    await send('hostile', 'shapes', 'results', null);
    await send('hostile', 'shapes', 'results', { model: { id: 1 }, backend: ['analog'] });
    await send('hostile', 'shapes', 'detections', { camera: { x: 1 }, width: 'wide', detections: [null, 5, { box: 'x' }, { box: [1, 2, 3, null] }, { label: {}, box: [0.1, 0.1, 0.5, 0.5] }] });
    await send('hostile', 'shapes', 'detections', { detections: 'none' });
    for (const e of [null, 7, 'text', { type: null }, { type: { a: 1 } }, { type: 'new', after: null }, { type: 'update', before: 5, after: 'x' }, { type: 'end' },
      { type: 'guard', before: { agreement: 'x' }, after: null }, { type: 'command-result', signer: 'x' }, { type: 'deploy', state: { x: 1 }, selfTest: 'x' }]) {
      await send('hostile', 'shapes', 'events', e);
    }
    await pub.publishAsync('edgerun/hostile/shapes/count/person', Buffer.from('lots'), { qos: 1 });
    await pub.publishAsync('edgerun/hostile/shapes/snapshot/person', Buffer.from('not a jpeg'), { qos: 1 });

    // HTML in every string a device controls.
    await online('hostile', 'html', { models: [XSS], modelVersions: { [XSS]: XSS }, profile: XSS, runtime: XSS, pid: XSS });
    await send('hostile', 'html', 'telemetry', {
      completed: 1, streams: { [XSS]: { depth: 1, capacity: 4, paused: true } }, models: { [XSS]: { backend: 'analog', policy: XSS, accelerator: { state: XSS } } },
      guards: { [XSS]: { state: XSS } }, power: { sensor: XSS, energy: { inferences: 1, breakdownJ: { dac: 1 }, byModel: { [XSS]: { joules: 1, inferences: 1 } } }, governor: { enabled: true, reason: XSS, shed: [XSS] } },
    });
    await send('hostile', 'html', 'results', { model: XSS, backend: 'digital-fallback', fallbackReason: XSS });
    await send('hostile', 'html', 'detections', { camera: XSS, detections: [{ label: XSS, score: 0.9, box: [0.1, 0.1, 0.5, 0.5] }] });
    await send('hostile', 'html', 'events', { type: 'new', after: { id: XSS, label: XSS, camera: XSS, score: 0.9 } });
    await send('hostile', 'html', 'events', { type: XSS, detail: XSS });
    await send('hostile', 'html', 'events', { type: 'command-rejected', command: XSS, reason: XSS, detail: XSS });
    await send('hostile', 'html', 'events', { type: 'deploy', id: XSS, state: 'failed', model: XSS, version: XSS, reason: XSS, detail: XSS });

    // Ever new label names (count/<label>, snapshot/<label>): the page keeps the newest 64 per device.
    await online('hostile', 'flood');
    await send('hostile', 'flood', 'detections', { camera: 'door', detections: [{ label: 'l-99', score: 0.9, box: [0.1, 0.1, 0.5, 0.5] }] });
    const jpeg = Buffer.from(jpegEncode({ width: 8, height: 6, data: Buffer.alloc(8 * 6 * 4, 128) }, 80).data);
    for (let i = 0; i < 100; i++) {
      await pub.publishAsync(`edgerun/hostile/flood/count/l-${i}`, Buffer.from(String(i)), { qos: 1, retain: true });
      await pub.publishAsync(`edgerun/hostile/flood/snapshot/l-${i}`, jpeg, { qos: 1 });
    }

    // A well-formed device published after all that still shows, with live figures.
    await online('hostile', 'good', { models: ['mlp'], profile: 'pcm' });
    for (let i = 0; i < 3; i++) await send('hostile', 'good', 'results', { model: 'mlp', backend: 'analog' });
    const good = page.locator('[data-device="hostile/good"]');
    await until('the well-formed device online', async () => (await good.locator('.badge.online').count()) === 1 || undefined, 30_000, () => errors.join('\n'));
    await good.locator('[data-field=results]', { hasText: '3' }).waitFor({ timeout: 30_000 });

    for (const hash of ['#/', '#/device/hostile/shapes', '#/device/hostile/html', '#/events', '#/detections']) {
      await page.goto(`${dashboard.url}${hash}`);
      await page.waitForTimeout(700);  // a render period
      expect(await page.evaluate('window.__pwned')).toBeUndefined();
      expect(await page.locator('main img[src="x"], main script').count()).toBe(0);
    }
    await page.goto(`${dashboard.url}#/device/hostile/flood`);
    const inView = page.locator('[data-field=in-view]');
    await until('the newest label in view', async () => (await inView.count()) && (await inView.textContent())!.includes('l-99 99') || undefined, 30_000, () => errors.join('\n'));
    const shown = (await inView.textContent())!.replace(/^in view now: /, '').split(' · ');
    expect(shown).toHaveLength(64);
    expect(shown).toContain('l-36 36');
    expect(shown).not.toContain('l-35 35');
    await until('the newest snapshot drawn', async () => (await page.locator('#dev-detections .frame img').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)) === 8 || undefined, 30_000);

    // The markup is shown as the text it is.
    await page.goto(`${dashboard.url}#/device/hostile/html`);
    await page.locator('#dev-models td', { hasText: XSS }).first().waitFor({ timeout: 10_000 });
    await page.locator('#dev-meta', { hasText: `profile ${XSS}` }).waitFor({ timeout: 10_000 });
    await page.goto(`${dashboard.url}#/events`);
    await page.locator('#ev-list .ev .text', { hasText: XSS }).first().waitFor({ timeout: 10_000 });
    expect(await page.locator('#conn.up').count()).toBe(1);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('follows 150 devices, some going offline; keyboard focus stays put while the lists move; a malformed address and a bad key file are refused; an odd report shows as text', { timeout: 180_000 }, async () => {
    const page = await openPage(1366, 900);
    const N = 150;
    for (let i = 0; i < N; i++) await online('many', `dev-${String(i).padStart(3, '0')}`, { models: ['mlp'] });
    const tick = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) {
        const d = `dev-${String(i).padStart(3, '0')}`;
        await send('many', d, 'telemetry', { completed: i, queueDepth: 1, dropped: 0, power: { modelledW: 0.5 } });
        await send('many', d, 'results', { model: 'mlp', backend: 'analog' });
      }
    };
    await tick(0, N);
    await until('150 devices on the page', async () => (await page.locator('[data-device^="many/"]').count()) === N || undefined, 60_000);
    const onlineFigure = () => page.locator('#fleet-stats .stat', { hasText: 'Devices online' }).locator('.value').textContent();
    await until('every device counted online', async () => {
      const figure = Number(/^\d+/.exec((await onlineFigure()) ?? '')?.[0]);
      return figure >= N && figure === await page.locator('[data-device] .badge.online').count() || undefined;
    }, 30_000, () => String(errors));
    // Fifty go offline (their wills).
    for (let i = 0; i < 50; i++) {
      const d = `dev-${String(i).padStart(3, '0')}`;
      await send('many', d, 'status', { state: 'offline', reason: 'connection lost' }, true);
    }
    await until('fifty offline', async () => (await page.locator('[data-device^="many/"].is-offline').count()) === 50 || undefined, 30_000);
    expect((await page.locator('[data-device^="many/"] .badge.online').count())).toBe(N - 50);
    // Phone-sized: every view in one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    for (const hash of ['#/', '#/events', '#/detections', '#/report', '#/device/many/dev-100', '#/device/hostile/html']) {
      await page.goto(`${dashboard.url}${hash}`);
      await page.waitForTimeout(700);
      // (What sticks out, named for the failure message: elements of a scrolling table do not count.)
      const wide = await page.evaluate<string[]>('[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > 391 && !e.closest(".table-wrap")).map((e) => `${e.tagName}.${e.className}#${e.id}`).slice(0, 8)');
      expect(await page.evaluate('document.documentElement.scrollWidth'), `${hash}: ${wide.join(' ')}`).toBeLessThanOrEqual(390);
    }
    await page.setViewportSize({ width: 1366, height: 900 });

    // Keyboard: a device link in the event log keeps its focus while new events arrive and the log re-renders.
    await page.goto(`${dashboard.url}#/events`);
    await page.locator('#ev-list .ev .dev').first().waitFor();
    await page.locator('#ev-list .ev .dev').nth(2).focus();
    const focusedText = await page.evaluate('document.activeElement?.textContent');
    const stop = { now: false };
    const live = (async () => { let i = 0; while (!stop.now) { await send('many', `dev-${String(60 + (i++ % 20)).padStart(3, '0')}`, 'events', { type: 'stream', stream: 'a', state: 'paused' }); await new Promise((r) => setTimeout(r, 100)); } })();
    const countBefore = await page.locator('#ev-count').textContent();
    await until('the log re-rendered with new events', async () => (await page.locator('#ev-count').textContent()) !== countBefore || undefined, 10_000);
    await page.waitForTimeout(1200);
    stop.now = true;
    await live;
    expect(await page.evaluate('document.activeElement?.closest("#ev-list") !== null && document.activeElement?.matches("a.dev")')).toBe(true);
    expect(await page.evaluate('document.activeElement?.textContent')).toBe(focusedText);
    // Enter on it opens that device.
    await page.keyboard.press('Enter');
    await until('the device view', async () => (await page.evaluate('location.hash')) === `#/device/many/${focusedText}` || undefined, 10_000);

    // A malformed address (a hand-edited or truncated link) shows the fleet, no error.
    await page.goto(`${dashboard.url}#/device/%E0%A4%A/x`);
    await page.locator('h1', { hasText: 'Fleet' }).waitFor({ timeout: 10_000 });
    await page.goto(`${dashboard.url}#/device/many`);
    await page.locator('h1', { hasText: 'Fleet' }).waitFor({ timeout: 10_000 });

    // A key file that is not one: one line, still read-only.
    writeFileSync(join(dir, 'junk.key'), '{"type":"ed25519","publicKey":"AAAA"}\n');
    writeFileSync(join(dir, 'big.key'), 'x'.repeat(2 ** 20 + 1));
    await page.goto(`${dashboard.url}#/device/many/dev-100`);
    for (const [file, message] of [['junk.key', /^junk\.key: /], ['big.key', /^big\.key: 1048577 bytes, more than the limit of 1048576 bytes for a key file$/]] as const) {
      await page.locator('#key-file').setInputFiles(join(dir, file));
      await until(`the error for ${file}`, async () => message.test((await page.locator('#key-error').textContent()) ?? '') || undefined, 10_000);
      expect(await page.locator('#key-error').isVisible()).toBe(true);
      expect((await page.locator('#key-error').textContent())!.includes('\n')).toBe(false);
      expect(await page.locator('#key-state').textContent()).toBe('read-only');
      expect(await page.locator('#commands').getAttribute('disabled')).not.toBeNull();
    }

    // A report that is not a fleet benchmark's: HTML in its keys and values, a long table, lists
    // of lists and deep nesting; shown as text, the table cut at 500 rows with the rest counted.
    writeFileSync(join(dir, 'odd.json'), JSON.stringify({
      [XSS]: XSS, rows: Array.from({ length: 2000 }, (_, i) => ({ i, name: `r${i}`, toString: i % 2 ? undefined : 1 })),
      matrix: [[1, 2], [3, 4]], deep: { a: { b: { c: { d: { e: { f: { g: 1 } } } } } } },
    }));
    await page.goto(`${dashboard.url}#/report`);
    await page.locator('#report-file').setInputFiles(join(dir, 'odd.json'));
    await page.locator('#report-body .report-name', { hasText: 'odd.json' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#report-body table tbody tr').count()).toBe(500);
    await page.locator('#report-body', { hasText: '… 1,500 more of 2,000 not shown' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#report-body .report-list li').count()).toBe(2);
    expect(await page.locator('#report-body .kv dt', { hasText: XSS }).count()).toBe(1);
    expect(await page.locator('#report-body img, #report-body script').count()).toBe(0);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();
    await page.locator('#report-body code', { hasText: '"g":1' }).waitFor({ timeout: 10_000 });

    // Everything the page loaded came from the dashboard itself (or blob:/data: it made); the only
    // other connection is the broker's WebSocket.
    const origin = new URL(dashboard.url).origin;
    expect(requests.length).toBeGreaterThan(5);
    expect(requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:') && !u.startsWith(broker.wsUrl!))).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a flood of invented device ids on count topics: the page keeps the 1,000 devices heard last and counts the rest; a real device heard again comes back', { timeout: 180_000 }, async () => {
    const page = await openPage(1366, 900);
    await online('flood', 'real');
    await page.locator('[data-device="flood/real"]').waitFor({ timeout: 30_000 });
    // Devices that only ever publish a retained-style count, never a status: 1,500 new ids.
    for (let i = 0; i < 1500; i++) void pub.publish(`edgerun/flood/fake-${i}/count/person`, '1', { qos: 0 });
    await pub.publishAsync('edgerun/flood/fake-1499/count/person', '2', { qos: 1 });
    await until('the newest fake device', async () => (await page.locator('[data-device="flood/fake-1499"]').count()) > 0 || undefined, 60_000);
    // The real device is heard again (its telemetry), after the flood.
    await send('flood', 'real', 'telemetry', { completed: 1 });
    await until('the real device back', async () => (await page.locator('[data-device="flood/real"]').count()) > 0 || undefined, 30_000);
    const stats = page.locator('#fleet-stats .stat', { hasText: 'Devices online' });
    await until('1,000 devices kept', async () => /\/ 1000\b/.test((await stats.locator('.value').textContent()) ?? '') || undefined, 30_000);
    expect(await page.locator('#device-cards [data-device]').count()).toBe(1000);
    const forgotten = Number((await stats.locator('[data-field="forgotten"]').textContent())!.replace(/[^0-9]/g, ''));
    // At least the 500 flood ids beyond the cap and the real device's first place (earlier tests' retained devices too).
    expect(forgotten).toBeGreaterThanOrEqual(501);
    expect(await page.locator('[data-device="flood/fake-0"]').count()).toBe(0);
    // Results naming ever new models: the device keeps the newest 64.
    for (let i = 0; i < 100; i++) await send('flood', 'real', 'results', { model: `m${i}`, backend: 'analog' });
    const models = page.locator('[data-device="flood/real"] .models .model');
    await until('the newest model on the card', async () => (await models.last().textContent())?.startsWith('m99') || undefined, 30_000);
    expect(await models.count()).toBe(64);
    expect(await models.first().textContent()).toMatch(/^m36\b/);
    expect(errors).toEqual([]);
    await page.close();
  });
});
