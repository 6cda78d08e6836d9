/**
 * Modelled energy per inference for each bundled model × device profile × ADC resolution, and on the
 * digital CPU: a table on stdout and a plot in bench/out/energy.svg. The same numbers the governor
 * plans with and a fleet benchmark explores (runtime/power energy model, profiles' energy sections).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { DigitalBackend } from '../drivers/digital/ort-backend.js';
import { loadProfile } from '../drivers/crossbar/profile.js';
import { loadModel } from '../runtime/model/load.js';
import { deviceEnergyOf } from '../runtime/power/energy-constants.js';
import { EnergyModel, type EnergyBreakdown } from '../runtime/power/energy-model.js';
import { InferenceCostTable } from '../runtime/power/inference-costs.js';
import { observedSummary } from '../runtime/power/model-summary.js';
import { report } from './measure.js';
import { AnalogBackend } from '../runtime/hybrid/analog-backend.js';
import { CrossbarEmulator } from '../drivers/crossbar/emulator.js';

const MODELS = ['mlp', 'cnn'] as const;
const PROFILES = ['pcm', 'flash'] as const;
const BITS = [4, 5, 6, 7, 8, 9, 10, 11, 12];
/** Inferences one programming of the weights serves (amortisation of the array writes). */
const AMORTISE_OVER = 100_000;

interface Series { label: string; model: string; points: { bits: number; nj: number }[]; dashed?: boolean }

export async function main(): Promise<void> {
  console.log(`\n# modelled energy per inference (batch 1; programming amortised over ${AMORTISE_OVER.toLocaleString('en')} inferences)`);
  const digital = new DigitalBackend();
  const series: Series[] = [];
  const rows: string[][] = [];
  const nj = (j: number): string => (j * 1e9).toPrecision(3);
  const share = (b: EnergyBreakdown, ...keys: (keyof EnergyBreakdown)[]): string => `${((100 * keys.reduce((s, k) => s + b[k], 0)) / b.total).toFixed(0)}%`;
  try {
    for (const name of MODELS) {
      const model = loadModel(await readFile(new URL(`../models/${name}.onnx`, import.meta.url)), { source: name });
      const summary = await observedSummary(digital, model);
      let digitalJ = 0;
      for (const profile of PROFILES) {
        const p = loadProfile(profile);
        const { energy, fromProfile } = deviceEnergyOf(p);
        if (!fromProfile) console.log(`(profile ${profile} has no energy section: runtime/power defaults used)`);
        // The hybrid plan on this profile says which nodes its digital periphery applies.
        const analog = new AnalogBackend({ digital, driver: new CrossbarEmulator(p) });
        const periphery = (await analog.load(model)).peripheryNodes();
        await analog.dispose();
        const table = new InferenceCostTable({ energy: new EnergyModel(energy), tile: { rows: p.tile.rows, cols: p.tile.cols }, dacBits: p.dac.bits, amortiseOver: AMORTISE_OVER }).add(name, summary, periphery);
        const d = table.breakdown(name, 'digital', 8)!;
        digitalJ = d.total;
        const points = BITS.map((bits) => {
          const b = table.breakdown(name, 'analog', bits)!;
          rows.push([name, profile, String(bits), nj(b.total), `${(d.total / b.total).toFixed(0)}×`, share(b, 'analogMac'), share(b, 'dac'), share(b, 'adc'), share(b, 'digitalMac', 'digitalOp'), share(b, 'sram', 'dram'), share(b, 'periphery'), share(b, 'programming')]);
          return { bits, nj: b.total * 1e9 };
        });
        series.push({ label: `${name} on ${profile}`, model: name, points });
      }
      const d = new InferenceCostTable({ energy: new EnergyModel() }).add(name, summary).breakdown(name, 'digital', 8)!;
      rows.push([name, 'digital CPU', '-', nj(d.total), '1×', '-', '-', '-', share(d, 'digitalMac', 'digitalOp'), share(d, 'sram', 'dram'), '-', '-']);
      series.push({ label: `${name} digital`, model: name, points: BITS.map((bits) => ({ bits, nj: digitalJ * 1e9 })), dashed: true });
      report(`${name}: digital nJ / pcm 8-bit ADC nJ`, `${nj(d.total)} / ${series.find((s) => s.label === `${name} on pcm`)!.points.find((q) => q.bits === 8)!.nj.toPrecision(3)}`);
    }
  } finally {
    await digital.dispose();
  }
  console.log();
  printTable(['model', 'device', 'ADC bits', 'nJ/inference', 'vs digital', 'analog MAC', 'DAC', 'ADC', 'CPU', 'memory', 'periphery', 'programming'], rows);
  const out = new URL('./out/energy.svg', import.meta.url);
  await mkdir(new URL('./out/', import.meta.url), { recursive: true });
  await writeFile(out, plot(series));
  console.log(`\nplot: ${out.pathname}`);
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log([line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n'));
}

/** A log-scale line plot, hand-written SVG: energy per inference against ADC bits. */
function plot(series: Series[]): string {
  const W = 760, H = 440, L = 70, R = 190, T = 40, B = 50;
  const all = series.flatMap((s) => s.points.map((p) => p.nj));
  const lo = Math.floor(Math.log10(Math.min(...all))), hi = Math.ceil(Math.log10(Math.max(...all)));
  const round = (v: number): number => Math.round(v * 10) / 10;
  const x = (bits: number): number => round(L + ((bits - BITS[0]!) / (BITS[BITS.length - 1]! - BITS[0]!)) * (W - L - R));
  const y = (v: number): number => round(T + (1 - (Math.log10(v) - lo) / (hi - lo)) * (H - T - B));
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="22" font-size="14">Modelled energy per inference vs ADC resolution (batch 1)</text>`,
  ];
  for (let d = lo; d <= hi; d++) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(10 ** d)}" y2="${y(10 ** d)}" stroke="#ddd"/>`,
      `<text x="${L - 8}" y="${y(10 ** d) + 4}" text-anchor="end">${formatNj(10 ** d)}</text>`);
  }
  for (const b of BITS) parts.push(`<line x1="${x(b)}" x2="${x(b)}" y1="${T}" y2="${H - B}" stroke="#f0f0f0"/>`, `<text x="${x(b)}" y="${H - B + 18}" text-anchor="middle">${b}</text>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">ADC bits</text>`,
    `<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">energy per inference</text>`,
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>`);
  series.forEach((s, i) => {
    const c = colours[i % colours.length]!;
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${x(p.bits)},${y(p.nj)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    if (!s.dashed) for (const p of s.points) parts.push(`<circle cx="${x(p.bits)}" cy="${y(p.nj)}" r="3" fill="${c}"/>`);
    const ly = T + 10 + i * 20;
    parts.push(`<line x1="${W - R + 14}" x2="${W - R + 40}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${W - R + 46}" y="${ly + 4}">${s.label}</text>`);
  });
  parts.push('</svg>\n');
  return parts.join('\n');
}

function formatNj(v: number): string {
  return v >= 1000 ? `${v / 1000} µJ` : v >= 1 ? `${v} nJ` : `${v * 1000} pJ`;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
