/**
 * The dashboard in a real Chromium (Debian's, driven by playwright-core) against a real device:
 * `edgerun serve` as a process on the embedded broker and on Mosquitto (the page over each one's
 * WebSocket listener), its analog accelerator a real
 * `edgerun accel-emulator` process, and `edgerun dashboard` as a process serving the page. The
 * page must load without console errors, show the device online with its result counter rising,
 * show a killed accelerator as a fallback (backend change and event), keep commands disabled
 * without a key, sign a command with a loaded key that the device executes (and show the refusal
 * of one signed with a key it does not trust), show a real deployment and its rollback, a real
 * `edgerun detect` camera (synthetic scene: boxes over its decoded snapshot, tracks new, updated and
 * ended, counters rising), open a JSON report, call a SIGSTOPped device silent and turn it offline
 * when it is SIGKILLed, and work on a phone-sized screen. Screenshots go to
 * test/dashboard/artifacts/ (gitignored; the Mosquitto run's in artifacts/mosquitto/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startEmbeddedBroker } from '../../drivers/mqtt/embedded-broker.js';
import { FsStorage } from '../../drivers/storage/fs-storage.js';
import { decodeMessage, type Message } from '../../runtime/telemetry/envelope.js';
import { encodeKeyFile, generateKeyPair, TrustStore } from '../../runtime/telemetry/keys.js';
import { edgerun, repoRoot } from '../helpers/cli.js';
import { until } from '../helpers/until.js';
import { Mosquitto, mosquittoBinary } from '../helpers/mosquitto.js';
import { DeviceProcess, tempSocketPath } from '../remote/device-process.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS_ROOT = join(repoRoot, 'test/dashboard/artifacts');
const FLEET = 'test';
const DEVICE = 'dash-1';
const CAMERA = 'cam-7';
const ROOT = `edgerun/${FLEET}/${DEVICE}`;

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A broker with a TCP and a WebSocket listener, both on 127.0.0.1. */
interface Broker { url: string; wsUrl: string; close(): Promise<void> }
const BROKERS: [string, () => Promise<Broker>][] = [
  ['the embedded broker', async () => {
    const b = await startEmbeddedBroker({ port: 0, wsPort: 0 });
    return { url: b.url, wsUrl: b.wsUrl!, close: () => b.close() };
  }],
  ['Mosquitto', async () => {
    const m = await Mosquitto.start({ websockets: true, persistence: false });
    return { url: m.url, wsUrl: m.wsUrl!, close: () => m.dispose() };
  }],
];
if (!mosquittoBinary && process.env.CI) throw new Error('mosquitto not found but CI is set: .ci/run must install it');

describe.each(BROKERS.filter(([name]) => name !== 'Mosquitto' || mosquittoBinary))('dashboard in Chromium on %s', (brokerName, startBroker) => {
  let broker: Broker;
  let dir: string;
  let accel: DeviceProcess;
  let device: ChildProcess | undefined;
  let dashboard: ChildProcess | undefined;
  let camera: ChildProcess | undefined;
  let camOut = '';
  let dashboardUrl = '';
  let browser: BrowserContext | undefined;
  let watcher: mqtt.MqttClient;
  let log = '';
  // Screenshots of the first broker's run at the top, the others' in a directory of their own.
  const ARTIFACTS = brokerName === BROKERS[0]![0] ? ARTIFACTS_ROOT : join(ARTIFACTS_ROOT, brokerName.toLowerCase());
  const got: { topic: string; m: Message<Body> }[] = [];
  const operator = generateKeyPair();
  const consoleErrors: string[] = [];

  const ctx = () => `--- device log ---\n${log.slice(-4000)}`;
  const of = (kind: string) => got.filter((g) => g.topic === `${ROOT}/${kind}`);

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'edgerun-dashboard-'));
    const keys = new FsStorage(join(dir, 'keys'), 0o600);
    await (await TrustStore.open(keys)).add('operator', operator.publicKey);
    await keys.close();
    writeFileSync(join(dir, 'operator.key'), encodeKeyFile(operator, 'operator'));

    broker = await startBroker();
    watcher = await mqtt.connectAsync(broker.url, { protocolVersion: 4, clientId: 'dashboard-test-watch', reconnectPeriod: 0 });
    // Snapshots are JPEGs and deploy chunks raw bytes: every other topic carries an envelope.
    watcher.on('message', (topic, payload) => { if (!/\/(snapshot|deploy\/chunk)\//.test(topic)) got.push({ topic, m: decodeMessage<Body>(payload).message }); });
    await watcher.subscribeAsync(`${ROOT}/#`, { qos: 1 });

    accel = new DeviceProcess(tempSocketPath(), ['--profile', 'pcm']);
    await accel.start();
    device = spawn(process.execPath, ['bin/edgerun.js', 'serve', '--url', broker.url, '--model', 'models/mlp.onnx', '--rate', '20', '--state-dir', join(dir, 'state')], {
      cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env, EDGERUN_DEVICE__ID: DEVICE, EDGERUN_DEVICE__FLEET: FLEET, EDGERUN_MQTT__PROTOCOL_VERSION: '4',
        EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '400', EDGERUN_SECURITY__KEY_DIR: join(dir, 'keys'),
        EDGERUN_PLACEMENT__DEFAULT: 'analog', EDGERUN_REMOTE__SOCKET: accel.socket,
        EDGERUN_GUARD__ENABLED: 'true', EDGERUN_GUARD__INTERVAL_MS: '2000',
        // A laptop's sysfs tree (battery BAT0): the device's power sensor.
        EDGERUN_POWER__ROOT: join(repoRoot, 'test/power/fixtures/laptop/sys'),
      },
    });
    device.stdout!.on('data', (b: Buffer) => { log += b.toString(); });
    device.stderr!.on('data', (b: Buffer) => { log += b.toString(); });

    dashboard = spawn(process.execPath, ['bin/edgerun.js', 'dashboard', '--port', '0', '--broker-ws', broker.wsUrl], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    dashboard.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    dashboard.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
    dashboardUrl = (await until('the dashboard URL', () => /edgerun dashboard: (http:\/\/\S+)/.exec(out)?.[1], 60_000, () => out));

    // A fresh profile directory (--user-data-dir) for this run.
    browser = await chromium.launchPersistentContext(join(dir, 'chromium'), {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    device?.kill('SIGKILL');
    camera?.kill('SIGKILL');
    dashboard?.kill('SIGKILL');
    await accel?.kill();
    await watcher?.endAsync(true);
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const openPage = async (width: number, height: number): Promise<Page> => {
    const page = await browser!.newPage();
    await page.setViewportSize({ width, height });
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
    return page;
  };
  const resultsOnPage = async (page: Page): Promise<number> => Number((await page.locator(`[data-device="${FLEET}/${DEVICE}"] [data-field=results]`).textContent())!.replace(/,/g, ''));

  it('shows the device live, its fallback, signed commands from a loaded key, detections and the device going offline', { timeout: 240_000 }, async () => {
    const page = await openPage(1366, 900);
    await page.goto(dashboardUrl);
    await page.locator('#conn.up').waitFor({ timeout: 30_000 });

    // Online from the birth message; the result counter rises.
    const card = page.locator(`[data-device="${FLEET}/${DEVICE}"]`);
    await card.locator('.badge.online').waitFor({ timeout: 90_000 });
    await until('results on the page', async () => (await resultsOnPage(page)) >= 5 || undefined, 60_000, ctx);
    const first = await resultsOnPage(page);
    await until('the result counter rising', async () => (await resultsOnPage(page)) > first + 5 || undefined, 30_000, ctx);
    await card.locator('.model', { hasText: 'mlp' }).locator('.badge.analog').waitFor({ timeout: 30_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'fleet.png'), fullPage: true });

    // The device view: where the model runs, its accuracy guard with the canary agreement, the
    // analog profile and device age, battery (the laptop fixture's BAT0), energy by part, queues.
    await card.click();
    const mlpRow = page.locator('#dev-models tr[data-model=mlp]');
    await mlpRow.locator('.badge.analog').waitFor({ timeout: 30_000 });
    await mlpRow.locator('.badge.ok', { hasText: 'ok' }).waitFor({ timeout: 60_000 });
    await mlpRow.locator('td', { hasText: / agree$/ }).waitFor({ timeout: 30_000 });
    await page.locator('#dev-meta', { hasText: /profile pcm · .* analog device age / }).waitFor({ timeout: 30_000 });
    await page.locator('#dev-stats .stat', { hasText: 'Battery' }).locator('.value', { hasText: /^\d+(\.\d)? %$/ }).waitFor({ timeout: 30_000 });
    await page.locator('#dev-energy .legend li', { hasText: 'analog MAC' }).waitFor({ timeout: 30_000 });
    await page.locator('#dev-streams tr', { hasText: 'mlp' }).locator('td', { hasText: /^\d+ \/ \d+$/ }).waitFor({ timeout: 30_000 });
    await page.locator('#dev-stats .stat', { hasText: 'Power' }).locator('.sub', { hasText: /^measured · modelled \d/ }).waitFor({ timeout: 30_000 });
    // The sparklines: throughput, p50/p99 per stream, power measured and modelled (uPlot's legends name the series).
    for (const [chart, series] of [['#ch-throughput', ['inf/s']], ['#ch-latency', ['mlp p50', 'mlp p99']], ['#ch-power', ['measured', 'modelled']]] as const) {
      await page.locator(`${chart} canvas`).waitFor({ timeout: 30_000 });
      for (const name of series) await page.locator(`${chart} .u-legend .u-label`, { hasText: name }).first().waitFor({ timeout: 30_000 });
    }

    // Read-only without a key: every command control is disabled.
    expect(await page.locator('#commands').getAttribute('disabled')).not.toBeNull();
    for (const b of await page.locator('#commands button, #commands select, #commands input').all()) expect(await b.isDisabled()).toBe(true);
    expect(await page.locator('#cmd-hint').textContent()).toMatch(/^Read-only/);

    // The accelerator process dies: requests fall back to digital, the page shows it and the event.
    // (While the device connects to its accelerator at start, a few requests may have fallen back
    // already: only what comes after the kill counts.)
    const fallbackEvents = () => page.locator('#dev-events .ev[data-type=fallback]', { hasText: 'mlp fell back to digital' }).count();
    const before = await fallbackEvents();
    const killedAt = got.length;
    await accel.kill();
    await until('a fallback result', () => got.slice(killedAt).find((g) => g.topic === `${ROOT}/results` && g.m.body.backend === 'digital-fallback'), 60_000, ctx);
    await page.locator('#dev-models tr[data-model=mlp] .badge.fallback').waitFor({ timeout: 30_000 });
    await until('a new fallback event on the page', async () => (await fallbackEvents()) > before || undefined, 30_000, ctx);

    // A key file loaded into the page enables the controls; the page signs set-placement, the device runs it.
    await page.locator('#key-file').setInputFiles(join(dir, 'operator.key'));
    await page.locator('#key-state', { hasText: 'signing as operator' }).waitFor({ timeout: 10_000 });
    await until('enabled command controls', async () => !(await page.locator('form[data-command=set-placement] button').isDisabled()) || undefined, 10_000);
    await page.locator('form[data-command=set-placement] select[name=model]').selectOption('mlp');
    await page.locator('form[data-command=set-placement] select[name=policy]').selectOption('digital');
    const mark = got.length;
    await page.locator('form[data-command=set-placement] button').click();
    const outcome = await until('the device\'s command result', () => got.slice(mark).find((g) => g.topic === `${ROOT}/events` && g.m.body.type === 'command-result'), 30_000, ctx);
    expect(outcome.m.body).toMatchObject({ command: 'set-placement', ok: true, signer: { name: 'operator' } });
    await page.locator(`#cmd-outcomes .outcome.ok[data-nonce="${outcome.m.body.nonce}"]`).waitFor({ timeout: 30_000 });
    await until('digital results after the command', () => got.slice(mark).find((g) => g.topic === `${ROOT}/results` && g.m.body.backend === 'digital'), 30_000, ctx);
    await page.locator('#dev-models tr[data-model=mlp] .badge.digital').waitFor({ timeout: 30_000 });
    await page.locator('#dev-events .ev[data-type=placement]').waitFor({ timeout: 30_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'device.png'), fullPage: true });

    // The other command forms: pause and resume the stream (telemetry shows it), a power cap the
    // device cannot meet (the governor's decision shows in the log).
    await page.locator('form[data-command=stream] button[value=pause-stream]').click();
    await page.locator('#dev-streams .badge.warn', { hasText: 'paused' }).waitFor({ timeout: 30_000 });
    await page.locator('form[data-command=stream] button[value=resume-stream]').click();
    await until('the stream resumed on the page', async () => (await page.locator('#dev-streams .badge.warn').count()) === 0 || undefined, 30_000, ctx);
    await page.locator('form[data-command=set-power-budget] input[name=powerCapW]').fill('1e-9');
    await page.locator('form[data-command=set-power-budget] button:not([name=clear])').click();
    await page.locator('#dev-events .ev[data-type=governor]').first().waitFor({ timeout: 30_000 });
    expect(await page.locator('#cmd-outcomes .outcome.ok').count()).toBe(4);
    // A deployment: mlp 1.1.0 built, signed by the operator and pushed by `edgerun deploy push`;
    // the page shows its steps in the log, the last one under the models and the version the
    // device's new birth names. Then a rollback signed in the page puts back the model the device
    // was started with. (The cap is cleared first, from the page.)
    await page.locator('form[data-command=set-power-budget] button[name=clear]').click();
    await until('the cap cleared', async () => (await page.locator('#cmd-outcomes .outcome.ok').count()) === 5 || undefined, 30_000, ctx);
    const version = () => page.locator('#dev-models tr[data-model=mlp] td').nth(1).textContent();
    expect(await version()).toBe('as started');
    const bundle = join(dir, 'mlp-1.1.0.bundle');
    const built = await edgerun(['deploy', 'build', 'models/mlp.onnx', '--version', '1.1.0', '--canary', 'models/data/canary-64.bin', '-o', bundle, '--min-agreement', '0.75', '--min-cosine', '0.9']);
    expect(built.code, built.stderr).toBe(0);
    const signed = await edgerun(['deploy', 'sign', bundle, '--key', join(dir, 'operator.key')]);
    expect(signed.code, signed.stderr).toBe(0);
    const pushed = await edgerun(['deploy', 'push', bundle, '--to', DEVICE, '--fleet', FLEET, '--url', broker.url, '--key', join(dir, 'operator.key'), '--json'], { EDGERUN_MQTT__PROTOCOL_VERSION: '4' });
    expect(pushed.code, `${pushed.stdout}${pushed.stderr}\n${ctx()}`).toBe(0);
    await until('version 1.1.0 on the page', async () => (await version()) === '1.1.0' || undefined, 30_000, ctx);
    await page.locator('#dev-deploy', { hasText: 'mlp 1.1.0 active' }).waitFor({ timeout: 30_000 });
    await page.locator('#dev-events .ev[data-type=deploy]', { hasText: 'mlp 1.1.0 active' }).waitFor({ timeout: 30_000 });
    const rollbackMark = got.length;
    await page.locator('form[data-command=rollback] select[name=rollbackModel]').selectOption('mlp');
    await page.locator('form[data-command=rollback] button').click();
    const rolled = await until('the device\'s rollback result', () => got.slice(rollbackMark).find((g) => g.topic === `${ROOT}/events` && g.m.body.type === 'command-result' && g.m.body.command === 'rollback'), 30_000, ctx);
    expect(rolled.m.body).toMatchObject({ ok: true, signer: { name: 'operator' } });
    await page.locator(`#cmd-outcomes .outcome.ok[data-nonce="${rolled.m.body.nonce}"]`).waitFor({ timeout: 30_000 });
    await until('the started version back on the page', async () => (await version()) === 'as started' || undefined, 30_000, ctx);
    await page.locator('#dev-deploy', { hasText: 'mlp rolled-back (was 1.1.0)' }).waitFor({ timeout: 30_000 });

    // A key the device does not trust: the page signs, the device refuses, the page says why; the
    // device runs nothing. Forgetting the key makes the page read-only again.
    const stranger = generateKeyPair();
    writeFileSync(join(dir, 'stranger.key'), encodeKeyFile(stranger, 'stranger'));
    await page.locator('#key-file').setInputFiles(join(dir, 'stranger.key'));
    await page.locator('#key-state', { hasText: 'signing as stranger' }).waitFor({ timeout: 10_000 });
    const strangerMark = got.length;
    await page.locator('form[data-command=stream] button[value=pause-stream]').click();
    await page.locator('#cmd-outcomes .outcome.rejected', { hasText: 'unknown-key' }).waitFor({ timeout: 30_000 });
    await page.locator('#dev-events .ev[data-type=command-rejected]', { hasText: 'unknown-key' }).waitFor({ timeout: 30_000 });
    expect(got.slice(strangerMark).filter((g) => g.m.body.type === 'command-result' || (g.m.body.type === 'stream' && g.m.body.state === 'paused'))).toEqual([]);
    await page.locator('#key-forget').click();
    await page.locator('#key-state', { hasText: 'read-only' }).waitFor({ timeout: 10_000 });
    for (const b of await page.locator('#commands button, #commands select, #commands input').all()) expect(await b.isDisabled()).toBe(true);

    // Phone-sized: the same view in one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(600); // one render period
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, 'device-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1366, height: 900 });

    // Detections from a real camera: `edgerun detect` on the synthetic scene, its own process and
    // device (cam-7), publishing what it publishes (Frigate-shape events, per-frame detections,
    // snapshot/<label> JPEGs, count/<label>). The page shows the camera, boxes drawn over the
    // decoded snapshot in its pixels, tracks new, updated and ended, counters rising.
    const camLog = () => `--- camera log ---\n${camOut.slice(-4000)}`;
    camera = spawn(process.execPath, ['bin/edgerun.js', 'detect', '--source', 'synthetic', '--camera', 'front', '--fps', '5', '--detections-interval', '400',
      '--url', broker.url, '--state-dir', join(dir, 'cam-state')], {
      cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env, EDGERUN_DEVICE__ID: CAMERA, EDGERUN_DEVICE__FLEET: FLEET, EDGERUN_MQTT__PROTOCOL_VERSION: '4',
        EDGERUN_MQTT__TELEMETRY_INTERVAL_MS: '1000', EDGERUN_SECURITY__KEY_DIR: join(dir, 'cam-keys'),
        EDGERUN_PLACEMENT__DEFAULT: 'digital', EDGERUN_POWER__SENSOR: 'none',
      },
    });
    camera.stdout!.on('data', (b: Buffer) => { camOut += b.toString(); });
    camera.stderr!.on('data', (b: Buffer) => { camOut += b.toString(); });
    await page.goto(`${dashboardUrl}#/detections`);
    const cam = page.locator('.camera', { has: page.locator('h3', { hasText: 'front' }) });
    await cam.locator('.box').first().waitFor({ timeout: 90_000 });
    await until('a snapshot decoded, boxes in its pixels', async () => (await cam.locator('.frame img').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)) > 0 || undefined, 60_000, camLog);
    // Every box inside the frame (one evaluation: the view re-renders the boxes as detections come,
    // and a frame may have none).
    const placed = await until('boxes on the frame', () => cam.locator('.frame').evaluate((el) => {
      const f = el.getBoundingClientRect();
      const boxes = [...el.querySelectorAll('.box')].map((b) => b.getBoundingClientRect());
      return boxes.length ? { boxes: boxes.length, outside: boxes.filter((r) => r.left < f.left - 1 || r.top < f.top - 1 || r.right > f.right + 1 || r.bottom > f.bottom + 1).length } : undefined;
    }), 60_000, camLog);
    expect(placed?.outside).toBe(0);
    const seen = async () => Number((await page.locator(`[data-device="${FLEET}/${CAMERA}"] [data-field=objects]`).textContent())?.replace(/,/g, '') ?? 0);
    await page.goto(`${dashboardUrl}#/`);
    await until('objects counted on the fleet view', async () => (await seen()) >= 1 || undefined, 60_000, camLog);
    const firstSeen = await seen();
    await until('the object counter rising', async () => (await seen()) > firstSeen || undefined, 90_000, camLog);
    await page.goto(`${dashboardUrl}#/detections`);
    await cam.locator('.tracks li.ended').first().waitFor({ timeout: 90_000 });
    // The track list carries the snapshot of each track's label.
    await until('a track with its snapshot', async () => (await cam.locator('.tracks li img').count()) > 0 && (await cam.locator('.tracks li img').first().evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)) > 0 || undefined, 60_000, camLog);
    // The camera's retained per-label counts (count/<label>: objects in view now).
    await page.locator('[data-field=in-view]').first().waitFor({ timeout: 60_000 });
    expect(await page.locator('[data-field=in-view]').first().textContent()).toMatch(/^in view now: [a-z]+ \d+/);
    await page.screenshot({ path: join(ARTIFACTS, 'detections.png') });
    await page.goto(`${dashboardUrl}#/events`);
    for (const type of ['new', 'update', 'end']) await page.locator(`#ev-list .ev[data-type=${type}]`, { hasText: ' on front' }).first().waitFor({ timeout: 60_000 });

    // The event log filters by type and device.
    await page.goto(`${dashboardUrl}#/events`);
    await page.locator('#ev-list .ev').first().waitFor();
    await page.locator('select[name=group]').selectOption('command');
    await until('only command events listed', async () => {
      const types = await page.locator('#ev-list .ev .type').allTextContents();
      return types.length > 0 && types.every((t) => t.startsWith('command-')) || undefined;
    }, 10_000);
    await page.locator('select[name=group]').selectOption('deploy');
    await until('only the deployment\'s steps listed', async () => {
      const texts = await page.locator('#ev-list .ev').allTextContents();
      const types = await page.locator('#ev-list .ev .type').allTextContents();
      return types.every((t) => t === 'deploy') && texts.some((t) => t.includes('mlp 1.1.0 active')) && texts.some((t) => t.includes('mlp rolled-back (was 1.1.0)')) || undefined;
    }, 10_000);
    await page.locator('select[name=group]').selectOption('');
    await page.locator('select[name=device]').selectOption(`${FLEET}/${CAMERA}`);
    await until('only the camera listed', async () => {
      const devs = await page.locator('#ev-list .ev .dev').allTextContents();
      return devs.length > 0 && devs.every((d) => d === CAMERA) || undefined;
    }, 10_000);

    // A fleet benchmark's JSON report opened from a file — a real one, written by `edgerun fleet run`
    // (LoadGen SingleStream, --quick) — shows its figures and its scenario table; a file that is
    // not JSON is refused with one line and leaves the shown report alone.
    const fleetRun = await edgerun(['fleet', 'run', 'models/mlp.onnx', '--scenario', 'SingleStream', '--quick', '--out', join(dir, 'report.json')]);
    expect(fleetRun.code, fleetRun.stderr).toBe(0);
    writeFileSync(join(dir, 'broken.json'), '{"fleet": ');
    await page.goto(`${dashboardUrl}#/report`);
    await page.locator('#report-file').setInputFiles(join(dir, 'report.json'));
    const scenarioRow = page.locator('#report-body table tbody tr', { hasText: 'SingleStream' });
    await scenarioRow.first().waitFor({ timeout: 10_000 });
    const rows = await page.locator('#report-body table tbody tr').count();
    expect(await page.locator('#report-body .kv').first().textContent()).toContain('edgerun-fleet-report');
    await page.screenshot({ path: join(ARTIFACTS, 'report.png') });
    await page.locator('#report-file').setInputFiles(join(dir, 'broken.json'));
    await page.locator('#report-error', { hasText: 'broken.json: not valid JSON' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#report-body table tbody tr').count()).toBe(rows);

    // Keyboard: from a fresh load, Tab walks through the navigation and the key loader (the key was
    // in the page's memory only: reloaded, the page is read-only again).
    await page.goto(`${dashboardUrl}#/`);
    await page.reload();
    await page.locator('#conn.up').waitFor({ timeout: 30_000 });
    const focused: string[] = [];
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      focused.push(await page.evaluate<string>('`${document.activeElement?.tagName} ${document.activeElement?.textContent?.trim()}`'));
    }
    expect(focused).toEqual(expect.arrayContaining(['A Fleet', 'A Events', 'A Detections', 'A Report', 'BUTTON Load signing key…']));

    // SIGSTOP: the connection stays open, nothing arrives: the page calls the device silent after
    // three telemetry periods (at least 5 s). The reload above emptied the page's telemetry history:
    // first the page must have heard the period again (60 s of silence until then). Then SIGKILL:
    // the broker publishes its will and the page turns it offline (keep-alive 30 s).
    const silentAfter = async () => Number(await card.getAttribute('data-silent-after-ms') ?? NaN);  // NaN before the card's first render
    await until('the telemetry period known to the page', async () => (await silentAfter()) < 60_000 || undefined, 60_000, ctx);
    device!.kill('SIGSTOP');
    await card.locator('.badge.warn', { hasText: 'silent' }).waitFor({ timeout: 30_000 });
    device!.kill('SIGKILL');
    await card.locator('.badge.offline').waitFor({ timeout: 45_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'fleet-offline.png'), fullPage: true });

    // The dashboard process ends cleanly on SIGTERM.
    const exited = new Promise<number | null>((r) => dashboard!.once('exit', (code) => r(code)));
    dashboard!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(consoleErrors).toEqual([]);
  });
});
