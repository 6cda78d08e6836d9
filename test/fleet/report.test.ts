import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { LOADGEN_DEFAULTS, runScenario, type ScenarioResult } from '../../runtime/fleet/loadgen.js';
import { exploreDesignSpace, type DseConfig } from '../../runtime/fleet/dse.js';
import { fleetReport, REPORT_PLOTS, type FleetReport } from '../../runtime/fleet/report.js';
import { VirtualTimeline } from '../../runtime/fleet/timeline.js';
import { ZERO_BREAKDOWN } from '../../runtime/power/energy-model.js';
import { Random } from '../../drivers/crossbar/random.js';
import { QueueSut } from './queue-sut.js';

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'edgerun-report-')); });
afterAll(() => rm(dir, { recursive: true, force: true }));

async function scenario(name: 'SingleStream' | 'Server', qps?: number): Promise<ScenarioResult> {
  const timeline = new VirtualTimeline();
  const rng = new Random(7);
  const p = runScenario(new QueueSut(timeline, () => 1 + 4 * rng.uniform()), { count: 100, label: () => 0 },
    { scenario: name, mode: 'performance', settings: { ...LOADGEN_DEFAULTS[name], minDurationMs: 20_000, ...(qps ? { targetQps: qps } : {}) }, timeline, uniform: () => rng.uniform() });
  timeline.run();
  return p;
}

async function report(): Promise<FleetReport> {
  // A design space whose figures are made up but shaped like a sweep's: energy falls with bits, accuracy rises.
  const dse = await exploreDesignSpace(
    { models: ['models/a<b>.onnx'], profiles: ['pcm'], adcBits: [4, 6, 8], dacBits: [7], tiles: [256], ages: ['1h'] },
    { samples: 100, targets: [0.85, 0.9], measure: async (c: DseConfig) => {
      const analog = c.placement === 'analog';
      const bits = analog ? c.adcBits : 10;
      const energy = { ...ZERO_BREAKDOWN, adc: bits * 1e-9, analogMac: analog ? 2e-8 : 0, digitalMac: analog ? 0 : 1e-6 };
      energy.total = energy.adc + energy.analogMac + energy.digitalMac;
      return { accuracy: 0.7 + bits * 0.02, energy, latencyMs: 1 + bits / 10, params: 1000 };
    } });
  return { kind: 'edgerun-fleet-report', created: '2026-12-07T15:00:00Z', scenarios: [await scenario('SingleStream'), await scenario('Server', 100)], dse };
}

describe('fleet HTML report', () => {
  it('holds every plot as inline SVG, escapes names, and needs nothing from the network', async () => {
    const html = fleetReport(await report());
    for (const plot of REPORT_PLOTS) expect(html).toMatch(new RegExp(`<figure data-plot="${plot}"><figcaption>[^<]*</figcaption><svg`));
    expect(html).not.toMatch(/<script|<link|src=|href=/);
    expect(html).toContain('a&#60;b&#62;');
    expect(html).toMatch(/<table class="iso-accuracy">/);
  });

  it('opens in Chromium without console errors, every plot drawn', async () => {
    const path = join(dir, 'report.html');
    await writeFile(path, fleetReport(await report()));
    // a fresh profile directory (playwright passes it as --user-data-dir)
    const browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text()); });
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(pathToFileURL(path).href);
      for (const plot of REPORT_PLOTS) {
        const box = await page.locator(`figure[data-plot="${plot}"] svg`).boundingBox();
        expect(box?.width, plot).toBeGreaterThan(100);
        expect(await page.locator(`figure[data-plot="${plot}"] svg :is(polyline, circle, rect)`).count(), plot).toBeGreaterThan(1);
      }
      expect(await page.locator('figure[data-plot="pareto"] circle[stroke="#000"]').count()).toBeGreaterThan(0);
      expect(await page.locator('table.iso-accuracy tbody tr').count()).toBe(2);
      expect(problems).toEqual([]);
      expect(requests).toEqual([pathToFileURL(path).href]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
