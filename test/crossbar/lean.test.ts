import { describe, expect, it } from 'vitest';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { Random } from '../../drivers/crossbar/random.js';
import { sharedWeights } from '../../runtime/shared-weights.js';

const rng = new Random(7);
const normals = (n: number, s: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal() * s);
// Two blocks of a layer split over tiles, odd shapes (padding), and a batch with an all-zero vector.
const W0 = normals(200 * 100, 0.1);
const W1 = normals(56 * 37, 0.3);
const X0 = Float32Array.from(normals(3 * 200, 1), (v, i) => (i >= 200 && i < 400 ? 0 : Math.max(0, v)));
const X1 = normals(56, 1);

/** Every step of a device's life that reads or changes its programmed devices, the outputs bit by bit. */
async function life(emu: CrossbarEmulator): Promise<Uint32Array[]> {
  const out: Uint32Array[] = [];
  const bits = (y: Float32Array): void => { out.push(new Uint32Array(Float32Array.from(y).buffer)); };
  const run = async (): Promise<void> => {
    bits(await emu.mvm(0, X0.subarray(0, 200), 1));
    bits(await emu.mvm(0, X0, 3));
    bits(await emu.mvm(1, X1, 1));
  };
  await emu.program(0, W0, 200, 100);
  await emu.program(1, W1, 56, 37);
  await run();
  await emu.setAge(86_400); // re-aged after the tiles computed: a lean tile draws its devices again
  await run();
  emu.setTemperature(330);
  await run();
  await emu.calibrate(0);
  await run();
  const g = await emu.readConductances(1);
  bits(g.gPlus);
  bits(g.gMinus);
  await emu.setAge(3e7);
  await run();
  await emu.program(0, W1, 56, 37); // re-programmed: the next draws of tile 0's programming stream
  await emu.setAge(3e7 + 3600);
  bits(await emu.mvm(0, X1, 1));
  bits(emu.gdcFactors(0));
  return out;
}

describe('lean crossbar emulator', () => {
  for (const profile of ['pcm', 'flash', 'ideal']) {
    it(`${profile}: a lean device re-drawing its dropped state gives exactly the outputs of one that kept it`, async () => {
      const kept = await life(new CrossbarEmulator(profile, { seed: 42 }));
      const lean = await life(new CrossbarEmulator(profile, { seed: 42, lean: true }));
      expect(lean.length).toBe(kept.length);
      for (let i = 0; i < kept.length; i++) expect(Buffer.from(lean[i]!.buffer).equals(Buffer.from(kept[i]!.buffer)), `output ${i}`).toBe(true);
      // and the seed still matters: another device differs (pcm and flash are noisy)
      if (profile !== 'ideal') {
        const other = await life(new CrossbarEmulator(profile, { seed: 43, lean: true }));
        expect(Buffer.from(other[3]!.buffer).equals(Buffer.from(kept[3]!.buffer))).toBe(false);
      }
    });
  }

  it('weight matrices are shared by their bits', () => {
    const a = sharedWeights(W1);
    expect(a).not.toBe(W1);
    expect(sharedWeights(W1.slice())).toBe(a);
    expect(Array.from(a)).toEqual(Array.from(W1));
    const zero = new Float32Array(4);
    const minusZero = Float32Array.of(-0, 0, 0, 0);
    expect(sharedWeights(minusZero)).not.toBe(sharedWeights(zero));
    expect(Object.is(sharedWeights(minusZero)[0], -0)).toBe(true);
  });
});
