/**
 * Energy constants: the analog device's (in each crossbar profile's `energy` section, validated by
 * `deviceEnergySchema`) and the host CPU's (digital MACs and memory traffic, `HostEnergy`). Every
 * number carries its source; the device defaults below are the pcm profile's, for a profile that
 * has no `energy` section.
 */
import { z } from 'zod';
import type { PeripheryOp } from '../accelerator.js';

/**
 * A converter's energy per conversion as a function of resolution b (bits):
 *   E(b) = E_knee · 4^(b − b_knee)  for b ≥ b_knee   (thermal-noise limited: kT/C noise needs 4× C per bit)
 *   E(b) = E_knee · b / b_knee      for b < b_knee   (technology limited: ~one comparator decision per bit)
 * with E_knee fixed by the measured point (pj at atBits).
 */
export const converterEnergySchema = z.strictObject({
  /** Energy of one conversion at `atBits`, in pJ. */
  pj: z.number().positive(),
  atBits: z.number().int().min(1).max(24),
  kneeBits: z.number().int().min(1).max(24),
  /** Energy factor per extra bit above the knee: 4 in the thermal-noise limit. */
  perBitAboveKnee: z.number().min(1).default(4),
});

export const deviceEnergySchema = z.strictObject({
  /** Array energy per multiply-accumulate (cell read, integration, local periphery), fJ; bit-independent here. */
  macFj: z.number().min(0),
  dac: converterEnergySchema,
  adc: converterEnergySchema,
  /** Writing one cell, program-and-verify included, pJ. */
  programPjPerCell: z.number().min(0),
  /** Converter resolution charged when the profile's converters are unquantised (bits: null). */
  nominalBits: z.number().int().min(1).max(24).default(8),
});

export type ConverterEnergy = z.infer<typeof converterEnergySchema>;
/** The profile's `energy` section, and its `periphery`: fJ per element of each operator the periphery applies. */
export type DeviceEnergy = z.infer<typeof deviceEnergySchema> & { periphery?: Readonly<Partial<Record<PeripheryOp, number>>> };

export function conversionEnergyPj(law: ConverterEnergy, bits: number): number {
  if (!(bits >= 1)) throw new Error(`converter resolution must be ≥ 1 bit, got ${bits}`);
  const { pj, atBits, kneeBits, perBitAboveKnee: k } = law;
  const atKnee = atBits >= kneeBits ? pj / k ** (atBits - kneeBits) : (pj * kneeBits) / atBits;
  return bits >= kneeBits ? atKnee * k ** (bits - kneeBits) : (atKnee * bits) / kneeBits;
}

/**
 * Defaults = the pcm profile (IBM HERMES-like). Derivation of macFj: HERMES one-phase 8-bit MVM runs
 * at 9.76 TOPS/W = 102.5 fJ/op = 205 fJ/MAC all-in; a full 256×256 MVM does 65 536 MACs with 256 DAC
 * and 256 ADC conversions (256 × 1.25 pJ = 0.32 nJ = 4.9 fJ/MAC), leaving ≈ 200 fJ/MAC for the array.
 */
export const DEFAULT_DEVICE_ENERGY: DeviceEnergy = {
  macFj: 200,
  dac: { pj: 0.25, atBits: 8, kneeBits: 8, perBitAboveKnee: 4 },
  adc: { pj: 1.0, atBits: 8, kneeBits: 8, perBitAboveKnee: 4 },
  programPjPerCell: 100,
  nominalBits: 8,
};

export const DEFAULT_DEVICE_ENERGY_SOURCES: Record<string, string> = {
  'energy.macFj': 'derived from IBM HERMES (Le Gallo et al., Nature Electronics 2023, doi 10.1038/s41928-023-01010-1): 9.76 TOPS/W one-phase 8-bit = 205 fJ/MAC, minus 4.9 fJ/MAC of DAC+ADC at 8 bits',
  'energy.adc': 'approx. 1 pJ per 8-bit conversion: Murmann, "ADC Performance Survey 1997-2024" (SAR ADCs at a Walden FoM of a few fJ/conversion-step, 2^8 × ~4 fJ); knee at 8 bits and 4x/bit above it: thermal noise, Murmann 2026 ("Analog is dead, long live analog!") / ANALOG-FACTS',
  'energy.dac': 'assumption: a row driver (PWM input DAC as in HERMES) costs a quarter of an ADC conversion at equal resolution; same 4x/bit law above 8 bits',
  'energy.programPjPerCell': 'approx.: ~10 program-and-verify iterations x ~10 pJ per PCM SET/RESET pulse (RESET energies of 1-100 pJ reviewed in Wong et al., "Phase Change Memory", Proc. IEEE 2010)',
};

/** The digital side: an ARM Cortex-A class host running onnxruntime-web (fp32). */
export interface HostEnergy {
  name: string;
  /** One fp32 multiply-accumulate on the CPU, instruction overhead included, pJ. */
  macPj: number;
  /** One elementwise op (ReLU, add, max-pool compare), pJ. */
  opPj: number;
  /** Activations: L1-sized SRAM, pJ per byte. */
  l1PjPerByte: number;
  /** Weights that fit the last-level cache, pJ per byte. */
  l2PjPerByte: number;
  l2Bytes: number;
  /** Weights that do not fit stream from DRAM every inference, pJ per byte. */
  dramPjPerByte: number;
  sources: Record<string, string>;
}

const HOROWITZ = 'M. Horowitz, "Computing\'s energy problem (and what we can do about it)", ISSCC 2014, 45 nm figures';

export const DEFAULT_HOST_ENERGY: HostEnergy = {
  name: 'arm-cortex-a (45 nm figures)',
  macPj: 22,
  opPj: 18,
  l1PjPerByte: 2.5,
  l2PjPerByte: 12.5,
  l2Bytes: 1 << 20,
  dramPjPerByte: 160,
  sources: {
    macPj: `${HOROWITZ}: fp32 mult 3.7 pJ + add 0.9 pJ, plus ~70 pJ instruction overhead shared by 4 NEON lanes (approx.)`,
    opPj: `${HOROWITZ}: ~70 pJ per instruction over 4 lanes plus the op itself (approx.)`,
    l1PjPerByte: `${HOROWITZ}: 32 KB SRAM read of 64 bits = 20 pJ`,
    l2PjPerByte: `${HOROWITZ}: 1 MB SRAM read of 64 bits = 100 pJ`,
    l2Bytes: 'Cortex-A72 of the Raspberry Pi 4: 1 MB shared L2',
    dramPjPerByte: `${HOROWITZ}: DRAM 1.3-2.6 nJ per 64 bits, low end (= the 640 pJ per 32-bit access quoted by Han et al., EIE, ISCA 2016)`,
  },
};

/**
 * A device profile's energy constants: its `energy` section, validated, or — for a profile without
 * one — the defaults above (the pcm figures), with `fromProfile` false so reports can say so; and
 * its periphery's energy per element.
 */
export function deviceEnergyOf(profile: { name: string; energy?: unknown; periphery?: DeviceEnergy['periphery'] }): { energy: DeviceEnergy; fromProfile: boolean } {
  const withPeriphery = (e: DeviceEnergy): DeviceEnergy => (profile.periphery ? { ...e, periphery: profile.periphery } : e);
  if (profile.energy === undefined) return { energy: withPeriphery(DEFAULT_DEVICE_ENERGY), fromProfile: false };
  const result = deviceEnergySchema.safeParse(profile.energy);
  if (result.success) return { energy: withPeriphery(result.data), fromProfile: true };
  const issues = result.error.issues.map((i) => `  - energy.${i.path.join('.')}: ${i.message}`).join('\n');
  throw new Error(`device profile '${profile.name}' has invalid energy constants:\n${issues}`);
}
