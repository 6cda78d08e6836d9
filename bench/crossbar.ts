/**
 * Crossbar emulator throughput: MVMs/s of one 256×256 tile for the `ideal` and `pcm` profiles
 * (batch 1 and 64), each measured side by side, in alternating rounds, with a plain JS float32
 * matmul loop of the same size. The ratio is emulator / plain (1 = as fast as the bare loop).
 */
import { CrossbarEmulator } from '../drivers/crossbar/emulator.js';
import { Random } from '../drivers/crossbar/random.js';
import { compare, fmt, report } from './measure.js';

const ROWS = 256;
const COLS = 256;

/** The reference: y = x·W over Float32Arrays, rows outer, as anyone would write it. */
function plainMatmul(w: Float32Array, x: Float32Array, y: Float32Array, batch: number): void {
  for (let b = 0; b < batch; b++) {
    const xo = b * ROWS;
    const yo = b * COLS;
    for (let c = 0; c < COLS; c++) y[yo + c] = 0;
    for (let r = 0; r < ROWS; r++) {
      const xv = x[xo + r]!;
      const wo = r * COLS;
      for (let c = 0; c < COLS; c++) y[yo + c] = y[yo + c]! + xv * w[wo + c]!;
    }
  }
}

export async function main(): Promise<void> {
  console.log(`\n# crossbar emulator: MVMs/s of one ${ROWS}×${COLS} tile vs a plain JS float32 matmul loop (same run)`);
  const rng = new Random(7);
  const w = Float32Array.from({ length: ROWS * COLS }, () => rng.normal() * 0.05);
  // ReLU-like activations: about half zero, as between layers of a network.
  const x = Float32Array.from({ length: 64 * ROWS }, () => Math.max(0, rng.normal()));
  const y = new Float32Array(64 * COLS);
  for (const profile of ['ideal', 'pcm']) {
    const emulator = new CrossbarEmulator(profile, { seed: 1 });
    await emulator.program(0, w, ROWS, COLS);
    await emulator.setAge(3600);
    for (const batch of [1, 64]) {
      const perRound = batch === 1 ? 200 : 8;
      const inputs = x.subarray(0, batch * ROWS); // the emulator takes exactly batch × rows values
      const r = await compare({
        baseline: async () => plainMatmul(w, x, y, batch),
        candidate: () => emulator.mvm(0, inputs, batch),
      }, 11, perRound, perRound);
      const plainRate = (batch * 1e6) / r.baselineUs;
      const rate = (batch * 1e6) / r.candidateUs;
      report(`plain float32 loop, batch ${batch}: MVMs/s`, fmt(plainRate, 0));
      report(`${profile}, batch ${batch}: MVMs/s`, fmt(rate, 0));
      report(`${profile}, batch ${batch}: emulator / plain throughput`, `${fmt(r.baselineUs / r.candidateUs, 2)}×`);
    }
    await emulator.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
