// Live sparklines on uPlot (served from its npm package). A chart keeps its uPlot instance while
// its view is shown and follows its container's width.
import uPlot from '/vendor/uplot.js';
import { si } from './format.js';

export const COLORS = ['#7c9cff', '#f5a524', '#3fd28c', '#e5657b', '#b38cff', '#4cc9f0'];

const clockTick = (t) => new Date(t * 1000).toLocaleTimeString('en-GB', { hour12: false });
/** Log-scale ticks: powers of ten only, at most five of them. */
function decades(_u, _axis, min, max) {
  const lo = Math.floor(Math.log10(min)), hi = Math.ceil(Math.log10(max));
  const step = Math.max(1, Math.ceil((hi - lo) / 4));
  const ticks = [];
  for (let e = lo; e <= hi; e += step) ticks.push(10 ** e);
  return ticks;
}
const axis = { stroke: '#8b93a7', grid: { stroke: '#262c3a', width: 1 }, ticks: { stroke: '#262c3a', width: 1 }, font: '11px system-ui, sans-serif' };

/**
 * A small time-series chart in `el`. `series`: [{label, color, dash?}]; `update(x, ys)` sets the
 * data (x in seconds since the epoch, ys one array per series, null = no value). `log`: a log10 y axis.
 */
export function sparkline(el, { series, height = 140, axes = true, unit = '', log = false }) {
  const fmt = (v) => (v === null || v === undefined ? '–' : `${Number(v.toPrecision(3))}${unit ? ` ${unit}` : ''}`);
  const opts = {
    width: Math.max(120, el.clientWidth), height,
    legend: { show: axes, live: false },
    cursor: { show: axes, drag: { x: false, y: false } },
    scales: { x: { time: true }, y: log ? { distr: 3, log: 10 } : { range: (_u, min, max) => [Math.min(0, min ?? 0), max > 0 ? max * 1.1 : 1] } },
    axes: axes ? [{ ...axis, values: (_u, ticks) => ticks.map(clockTick) }, { ...axis, size: 52, values: (_u, ticks) => ticks.map((t) => si(t, '').trim()), ...(log ? { splits: decades, filter: (_u, splits) => splits } : {}) }] : [{ show: false }, { show: false }],
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.6, dash: s.dash, spanGaps: true, points: { show: false }, value: (_u, v) => fmt(v) }))],
  };
  const data = [[], ...series.map(() => [])];
  const plot = new uPlot(opts, data, el);
  const resize = new ResizeObserver(() => { const w = Math.max(120, el.clientWidth); if (w !== plot.width) plot.setSize({ width: w, height }); });
  resize.observe(el);
  return {
    update(x, ys) { plot.setData([x, ...(log ? ys.map((y) => y.map((v) => (v > 0 ? v : null))) : ys)]); },
    destroy() { resize.disconnect(); plot.destroy(); },
  };
}
