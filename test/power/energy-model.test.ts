/** The energy model: counters → joules, converter energy against bits, analog vs digital on the bundled models. */
import { describe, expect, it } from 'vitest';
import { CrossbarEmulator } from '../../drivers/crossbar/emulator.js';
import { loadProfile } from '../../drivers/crossbar/profile.js';
import { DigitalBackend } from '../../drivers/digital/ort-backend.js';
import { AnalogBackend } from '../../runtime/hybrid/analog-backend.js';
import { ManualClock } from '../../runtime/power/clock.js';
import { conversionEnergyPj, DEFAULT_DEVICE_ENERGY, DEFAULT_HOST_ENERGY, deviceEnergyOf, type DeviceEnergy } from '../../runtime/power/energy-constants.js';
import { EnergyModel } from '../../runtime/power/energy-model.js';
import { InferenceCostTable } from '../../runtime/power/inference-costs.js';
import { EnergyLedger } from '../../runtime/power/ledger.js';
import { MeteredModel } from '../../runtime/power/metered-model.js';
import { PowerMeter } from '../../runtime/power/power-meter.js';
import { estimateWork, NO_WORK, workFromTileCounters } from '../../runtime/power/work.js';
import { bundledSummaries, costTable, MODELS, profileEnergy, readBundledModel } from './helpers.js';

const PJ = 1e-12;

describe('energy from counters', () => {
  it('known counters give the joules of the stated model, component by component', () => {
    const model = new EnergyModel();
    const d = DEFAULT_DEVICE_ENERGY;
    const h = DEFAULT_HOST_ENERGY;
    const work = { analogMacs: 1e6, dacConversions: 2000, adcConversions: 3000, digitalMacs: 5000, digitalOps: 700, l1Bytes: 4000, l2Bytes: 8000, dramBytes: 16_000, cellsProgrammed: 50_000, periphery: {} };
    const e = model.estimate(work, { dac: 8, adc: 8 }, { amortiseOver: 100 });
    expect(e.analogMac).toBeCloseTo(1e6 * d.macFj * 1e-15, 18);
    expect(e.dac).toBeCloseTo(2000 * d.dac.pj * PJ, 18);
    expect(e.adc).toBeCloseTo(3000 * d.adc.pj * PJ, 18);
    expect(e.digitalMac).toBeCloseTo(5000 * h.macPj * PJ, 18);
    expect(e.digitalOp).toBeCloseTo(700 * h.opPj * PJ, 18);
    expect(e.sram).toBeCloseTo((4000 * h.l1PjPerByte + 8000 * h.l2PjPerByte) * PJ, 18);
    expect(e.dram).toBeCloseTo(16_000 * h.dramPjPerByte * PJ, 18);
    expect(e.programming).toBeCloseTo((50_000 * d.programPjPerCell * PJ) / 100, 18);
    expect(e.total).toBeCloseTo(e.analogMac + e.dac + e.adc + e.digitalMac + e.digitalOp + e.sram + e.dram + e.programming, 18);
    // 1e6 MACs at 200 fJ = 200 nJ; 2000 DAC at 0.25 pJ = 0.5 nJ; 3000 ADC at 1 pJ = 3 nJ; ...
    expect(e.total).toBeCloseTo(200e-9 + 0.5e-9 + 3e-9 + 110e-9 + 12.6e-9 + 110e-9 + 2560e-9 + 50e-9, 15);
  });

  it('work comes from the tiles\' counters of a real emulator, and unquantised converters are charged at the nominal bits', async () => {
    const driver = new CrossbarEmulator('ideal');
    const weights = Float32Array.from({ length: 16 * 8 }, (_, i) => ((i % 7) - 3) / 3);
    await driver.program(0, weights, 16, 8);
    const before = await driver.counters();
    await driver.mvm(0, new Float32Array(16 * 3).fill(0.25), 3);
    const work = workFromTileCounters(before, await driver.counters());
    expect(work).toEqual({ analogMacs: 3 * 16 * 8, dacConversions: 3 * 16, adcConversions: 3 * 8, cellsProgrammed: 0 });
    expect(workFromTileCounters([], before).cellsProgrammed).toBe(2 * 16 * 8);
    const e = new EnergyModel().estimate({ ...NO_WORK, ...work }, { dac: Infinity, adc: null });
    expect(e.adc).toBeCloseTo(24 * conversionEnergyPj(DEFAULT_DEVICE_ENERGY.adc, DEFAULT_DEVICE_ENERGY.nominalBits) * PJ, 18);
  });
});

describe('converter energy against resolution', () => {
  const law = DEFAULT_DEVICE_ENERGY.adc;

  it('above the knee each extra bit costs the thermal-noise factor (4×)', () => {
    for (let b = law.kneeBits; b < 14; b++) expect(conversionEnergyPj(law, b + 1) / conversionEnergyPj(law, b)).toBeCloseTo(4, 12);
  });

  it('below the knee energy is linear in bits, continuous at the knee, and the measured point is reproduced', () => {
    for (let b = 1; b < law.kneeBits; b++) expect(conversionEnergyPj(law, b + 1) / conversionEnergyPj(law, b)).toBeCloseTo((b + 1) / b, 12);
    expect(conversionEnergyPj(law, law.atBits)).toBeCloseTo(law.pj, 12);
    const knee = { pj: 2, atBits: 10, kneeBits: 8, perBitAboveKnee: 4 };
    expect(conversionEnergyPj(knee, 8)).toBeCloseTo(2 / 16, 12);
    expect(conversionEnergyPj(knee, 4)).toBeCloseTo(2 / 32, 12);
  });

  it('a whole inference: raising the ADC by one bit above the knee raises its ADC energy 4×, and only that term', async () => {
    const table = await costTable('pcm');
    const at8 = table.breakdown('mlp', 'analog', 8)!;
    const at9 = table.breakdown('mlp', 'analog', 9)!;
    expect(at9.adc / at8.adc).toBeCloseTo(4, 9);
    expect(at9.analogMac).toBe(at8.analogMac);
    expect(at9.dac).toBe(at8.dac);
    expect(at9.total).toBeGreaterThan(at8.total);
  });
});

describe('analog vs digital on the bundled models', () => {
  it('the static estimate equals what the hybrid backend really does on the tiles (ideal profile, batch 1)', async () => {
    const digital = new DigitalBackend();
    const summaries = await bundledSummaries();
    try {
      for (const name of MODELS) {
        const driver = new CrossbarEmulator('ideal');
        const backend = new AnalogBackend({ digital, driver });
        const model = await readBundledModel(name);
        const prepared = await backend.load(model);
        const programmed = await driver.counters();
        const input = model.inputs[0]!;
        const dims = input.dims.map((d) => (typeof d === 'number' ? d : 1));
        await prepared.run({ [input.name]: { type: 'float32', data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5), dims } });
        const measured = workFromTileCounters(programmed, await driver.counters());
        const expected = estimateWork(summaries[name], 'analog', DEFAULT_HOST_ENERGY, { rows: 256, cols: 256 });
        expect({ model: name, ...measured, cellsProgrammed: workFromTileCounters([], programmed).cellsProgrammed })
          .toEqual({ model: name, analogMacs: expected.analogMacs, dacConversions: expected.dacConversions, adcConversions: expected.adcConversions, cellsProgrammed: expected.cellsProgrammed });
        await prepared.dispose();
      }
    } finally {
      await digital.dispose();
    }
  });

  it('the periphery\'s operators are charged at the profile\'s fJ per element, in place of host ops (cnn on pcm)', async () => {
    const digital = new DigitalBackend();
    try {
      const pcm = loadProfile('pcm');
      const backend = new AnalogBackend({ digital, driver: new CrossbarEmulator(pcm) });
      const hybrid = await backend.load(await readBundledModel('cnn'));
      const fused = hybrid.peripheryNodes();
      await backend.dispose();
      // Relu after conv1 [16,26,26], conv2 [32,11,11] and fc1 [64]; MaxPool 2×2 to [16,13,13] and [32,5,5].
      expect([...fused.values()].map((n) => `${n.op}×${n.elementsPerOutput}`)).toEqual(['Relu×1', 'MaxPool×4', 'Relu×1', 'MaxPool×4', 'Relu×1']);
      const summary = (await bundledSummaries()).cnn;
      const tile = { rows: 256, cols: 256 };
      const withPeriphery = estimateWork(summary, 'analog', DEFAULT_HOST_ENERGY, tile, fused);
      const without = estimateWork(summary, 'analog', DEFAULT_HOST_ENERGY, tile);
      const relu = 16 * 26 * 26 + 32 * 11 * 11 + 64;
      const maxPool = 4 * (16 * 13 * 13 + 32 * 5 * 5);
      expect(withPeriphery.periphery).toEqual({ Relu: relu, MaxPool: maxPool });
      expect(without.digitalOps - withPeriphery.digitalOps).toBe(relu + (16 * 13 * 13 + 32 * 5 * 5));
      const e = new EnergyModel(deviceEnergyOf(pcm).energy).estimate(withPeriphery, { dac: 7, adc: 8 });
      expect(pcm.periphery).toMatchObject({ Relu: 30, MaxPool: 30 });
      expect(e.periphery).toBeCloseTo((relu * pcm.periphery.Relu! + maxPool * pcm.periphery.MaxPool!) * 1e-15, 20);
      expect(e.total).toBeCloseTo(e.analogMac + e.dac + e.adc + e.digitalMac + e.digitalOp + e.sram + e.dram + e.periphery + e.programming, 20);
      // An operator the device's periphery lacks has no energy figure: charging it is an error.
      expect(() => new EnergyModel(deviceEnergyOf(pcm).energy).estimate({ ...NO_WORK, periphery: { HardSwish: 10 } })).toThrow(/no HardSwish/);
    } finally {
      await digital.dispose();
    }
  });

  it('every profile puts both models below the digital CPU, and the profiles rank by their MAC energy', async () => {
    const perProfile: Record<string, Record<string, number>> = {};
    for (const profile of ['pcm', 'flash', 'ideal']) {
      const table = await costTable(profile);
      perProfile[profile] = {};
      for (const m of MODELS) {
        const analog = table.joules(m, 'analog', 8);
        const digital = table.joules(m, 'digital', 8);
        expect(analog, `${profile}/${m}`).toBeLessThan(digital / 5);
        perProfile[profile]![m] = analog;
      }
    }
    const mac = (p: string): number => profileEnergy(p).energy.device.macFj;
    for (const m of MODELS) {
      expect(Math.sign(perProfile.flash![m]! - perProfile.pcm![m]!), m).toBe(Math.sign(mac('flash') - mac('pcm')) || Math.sign(perProfile.flash![m]! - perProfile.pcm![m]!));
    }
  });

  it('a device whose MACs cost more than the CPU\'s (e.g. a 12-bit-ADC design) makes digital the cheaper placement', async () => {
    const summaries = await bundledSummaries();
    const costly: DeviceEnergy = { ...DEFAULT_DEVICE_ENERGY, macFj: 100_000 };
    const table = new InferenceCostTable({ energy: new EnergyModel(costly), tile: { rows: 256, cols: 256 } }).add('mlp', summaries.mlp);
    expect(table.joules('mlp', 'digital', 8)).toBeLessThan(table.joules('mlp', 'analog', 8));
    const noDevice = new InferenceCostTable({ energy: new EnergyModel() }).add('mlp', summaries.mlp);
    expect(noDevice.joules('mlp', 'analog', 8)).toBe(Infinity);
  });

  it('a profile\'s energy section is validated with the field named', () => {
    expect(() => deviceEnergyOf({ name: 'bad', energy: { macFj: -1 } })).toThrow(/device profile 'bad' has invalid energy constants:\n {2}- energy.macFj: .*\n {2}- energy.dac/);
    expect(deviceEnergyOf({ name: 'none' })).toEqual({ energy: DEFAULT_DEVICE_ENERGY, fromProfile: false });
  });
});

describe('accounting around real inferences', () => {
  it('a metered digital model charges the ledger per sample; a metered analog model charges measured tile work and its programming once', async () => {
    const clock = new ManualClock(0);
    const ledger = new EnergyLedger(clock, { windowMs: 10_000 });
    const summaries = await bundledSummaries();
    const energy = new EnergyModel();
    const digital = new DigitalBackend();
    try {
      const model = await readBundledModel('mlp');
      const work = estimateWork(summaries.mlp, 'digital', energy.host);
      const metered = new MeteredModel(await digital.load(model), { name: 'mlp', energy, ledger, work });
      const x = { type: 'float32' as const, data: new Float32Array(4 * 784).fill(0.1), dims: [4, 1, 28, 28] };
      const run = await metered.runWithEnergy({ [model.inputs[0]!.name]: x });
      expect(run.samples).toBe(4);
      expect(run.energy.joules).toBeCloseTo(energy.estimate(work).total, 15);
      expect(ledger.snapshot().inferences).toBe(4);
      expect(ledger.snapshot().byModel.mlp!.joules).toBeCloseTo(4 * run.energy.joules, 15);

      const driver = new CrossbarEmulator('pcm');
      const analog = new AnalogBackend({ digital, driver });
      const hybrid = await analog.load(model);
      const tiles = hybrid.runners.flatMap((r) => r.matrices.flatMap((m) => m.tiles));
      const analogLedger = new EnergyLedger(clock);
      const aw = estimateWork(summaries.mlp, 'analog', energy.host, { rows: 256, cols: 256 });
      const meteredAnalog = new MeteredModel(hybrid, { name: 'mlp', energy, ledger: analogLedger, work: aw, bits: () => ({ dac: 8, adc: 8 }), tiles: { counters: () => driver.counters(), ids: tiles } });
      const feeds = { [model.inputs[0]!.name]: { ...x, data: new Float32Array(784).fill(0.1), dims: [1, 1, 28, 28] } };
      const r1 = await meteredAnalog.runWithEnergy(feeds);
      // pcm uses iterative bound management: conversions are at least the planned ones, MACs exactly
      expect(r1.energy.breakdown.analogMac).toBeCloseTo(energy.estimate(aw).analogMac, 15);
      expect(r1.energy.breakdown.adc).toBeGreaterThanOrEqual(energy.estimate(aw).adc * (1 - 1e-12));
      const programOnce = aw.cellsProgrammed * DEFAULT_DEVICE_ENERGY.programPjPerCell * PJ;
      // the first run charges the load's programming (and its drift-compensation calibration reads)
      const afterFirst = analogLedger.snapshot().breakdownJ.programming;
      expect(afterFirst).toBeGreaterThanOrEqual(programOnce);
      expect(afterFirst).toBeLessThan(programOnce * 1.01);
      await meteredAnalog.runWithEnergy(feeds);
      expect(analogLedger.snapshot().breakdownJ.programming).toBe(afterFirst);
      await hybrid.reprogram();
      await meteredAnalog.runWithEnergy(feeds);
      const snap = analogLedger.snapshot();
      expect(snap.inferences).toBe(3);
      expect(snap.breakdownJ.programming).toBeCloseTo(2 * afterFirst, 15);
      await hybrid.dispose();
    } finally {
      await digital.dispose();
    }
  });

  it('measured and modelled power side by side in the snapshot', () => {
    const clock = new ManualClock(0);
    const ledger = new EnergyLedger(clock, { windowMs: 10_000 });
    const meter = new PowerMeter({ windowMs: 10_000, sensor: 'test' });
    const b = new EnergyModel().estimate({ ...NO_WORK, digitalMacs: 1e9 }); // 22 mJ
    meter.observe({ ts: 0, joules: 0 });
    for (let t = 1; t <= 10; t++) {
      clock.advance(1000);
      ledger.record(b, { model: 'm' });
      meter.observe({ ts: clock.now(), joules: t * 0.03 });
    }
    const snap = ledger.snapshot(meter, 0.005);
    expect(snap.windowW).toBeCloseTo(0.022, 9);
    expect(snap.measured!.windowW).toBeCloseTo(0.03, 9);
    expect(snap.measured!.modelledWindowW).toBeCloseTo(0.027, 9);
    expect(snap.measured!.ratio).toBeCloseTo(0.03 / 0.027, 9);
  });
});
