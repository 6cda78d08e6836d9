// Number and text formatting for the views; every device-provided string goes through esc().

export const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const num = (x) => typeof x === 'number' && Number.isFinite(x);

/** Three significant digits with an SI prefix: 1.29e-7 J → "129 nJ". */
export function si(x, unit) {
  if (!num(x)) return '–';
  if (x === 0) return `0 ${unit}`;
  const prefixes = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k'], [1, ''], [1e-3, 'm'], [1e-6, 'µ'], [1e-9, 'n'], [1e-12, 'p']];
  const [f, p] = prefixes.find(([f]) => Math.abs(x) >= f) ?? prefixes.at(-1);
  return `${Number((x / f).toPrecision(3))} ${p}${unit}`;
}

export const fixed = (x, digits = 1) => (num(x) ? x.toFixed(digits) : '–');
export const ms = (x) => (num(x) ? (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)) : '–');
export const pct = (x) => (num(x) ? `${x.toFixed(x >= 10 ? 0 : 1)} %` : '–');
export const int = (x) => (num(x) ? Math.round(x).toLocaleString('en') : '–');

/** 93 s → "1 min 33 s", 200000 s → "2 d 7 h". */
export function duration(s) {
  if (!num(s)) return '–';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const units = [[86400 * 365, 'y'], [86400, 'd'], [3600, 'h'], [60, 'min'], [1, 's']];
  const i = units.findIndex(([u]) => s >= u);
  const [u1, n1] = units[i];
  const [u2, n2] = units[i + 1];
  const a = Math.floor(s / u1);
  const b = Math.floor((s - a * u1) / u2);
  return b ? `${a} ${n1} ${b} ${n2}` : `${a} ${n1}`;
}

export const clock = (ts) => (num(ts) ? new Date(ts).toLocaleTimeString('en-GB', { hour12: false }) : '–');
export const ago = (ts, now = Date.now()) => (num(ts) ? `${duration(Math.max(0, (now - ts) / 1000))} ago` : '–');
