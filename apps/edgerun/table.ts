/** Plain-text tables for terminal output: columns padded to their widest cell. */
export function formatTable(header: string[], rows: (string | number)[][], rightAlign: boolean[] = []): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((cell, c) => (rightAlign[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** 1234567 → "1.23M"; small counts stay exact. */
export function compact(n: number | undefined): string {
  if (n === undefined) return '?';
  if (n < 10_000) return String(n);
  const units: [number, string][] = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  const [div, unit] = units.find(([d]) => n >= d)!;
  return `${(n / div).toFixed(n / div >= 100 ? 0 : 2)}${unit}`;
}

export function shapeText(s: readonly (number | string)[] | undefined): string {
  return s ? `[${s.join('×')}]` : '?';
}
