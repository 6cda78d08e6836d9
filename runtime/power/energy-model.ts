/**
 * Energy of an inference from its work, decomposed as the field does:
 *   E = analog MACs · E_mac + DAC conversions · E_dac(b_dac) + ADC conversions · E_adc(b_adc)
 *     + digital MACs · E_mac,cpu + digital ops · E_op + bytes · E_byte(level)
 *     + Σ periphery elements · E_periphery(op) (activations and pooling next to the arrays)
 *     + cells programmed · E_write / inferences served per programming.
 * All results in joules.
 */
import { conversionEnergyPj, DEFAULT_DEVICE_ENERGY, DEFAULT_HOST_ENERGY, type DeviceEnergy, type HostEnergy } from './energy-constants.js';
import type { InferenceWork } from './work.js';
import type { PeripheryOp } from '../accelerator.js';

export interface EnergyBreakdown {
  analogMac: number;
  dac: number;
  adc: number;
  digitalMac: number;
  digitalOp: number;
  /** L1 + L2 traffic. */
  sram: number;
  dram: number;
  /** The device's digital periphery: folded BatchNormalization, activations and pooling. */
  periphery: number;
  /** Array programming, amortised. */
  programming: number;
  total: number;
}

export const ZERO_BREAKDOWN: Readonly<EnergyBreakdown> = Object.freeze({
  analogMac: 0, dac: 0, adc: 0, digitalMac: 0, digitalOp: 0, sram: 0, dram: 0, periphery: 0, programming: 0, total: 0,
});

export interface ConverterBits {
  /** Infinity or null: unquantised; charged at the device's nominal resolution. */
  dac?: number | null;
  adc?: number | null;
}

export interface EstimateOptions {
  /** Spread `work.cellsProgrammed` over this many inferences (1: charge it all now). */
  amortiseOver?: number;
}

const PJ = 1e-12;

export class EnergyModel {
  readonly device: DeviceEnergy;
  readonly host: HostEnergy;

  constructor(device: DeviceEnergy = DEFAULT_DEVICE_ENERGY, host: HostEnergy = DEFAULT_HOST_ENERGY) {
    this.device = device;
    this.host = host;
  }

  /** Joules of one conversion at `bits` (unquantised: the nominal resolution). */
  conversionJ(which: 'dac' | 'adc', bits: number | null | undefined): number {
    const b = bits === null || bits === undefined || !Number.isFinite(bits) ? this.device.nominalBits : bits;
    return conversionEnergyPj(this.device[which], b) * PJ;
  }

  estimate(work: InferenceWork, bits: ConverterBits = {}, options: EstimateOptions = {}): EnergyBreakdown {
    const { device: d, host: h } = this;
    const amortiseOver = options.amortiseOver ?? 1;
    if (!(amortiseOver >= 1)) throw new Error(`amortiseOver must be ≥ 1, got ${amortiseOver}`);
    const e = {
      analogMac: work.analogMacs * d.macFj * 1e-15,
      dac: work.dacConversions * this.conversionJ('dac', bits.dac),
      adc: work.adcConversions * this.conversionJ('adc', bits.adc),
      digitalMac: work.digitalMacs * h.macPj * PJ,
      digitalOp: work.digitalOps * h.opPj * PJ,
      sram: (work.l1Bytes * h.l1PjPerByte + work.l2Bytes * h.l2PjPerByte) * PJ,
      dram: work.dramBytes * h.dramPjPerByte * PJ,
      periphery: this.peripheryJ(work.periphery),
      programming: (work.cellsProgrammed * d.programPjPerCell * PJ) / amortiseOver,
      total: 0,
    };
    e.total = e.analogMac + e.dac + e.adc + e.digitalMac + e.digitalOp + e.sram + e.dram + e.periphery + e.programming;
    return e;
  }

  /** Joules of the periphery's elements at the profile's fJ per element; an operator it lacks is an error. */
  peripheryJ(elements: InferenceWork['periphery']): number {
    let j = 0;
    for (const [op, count] of Object.entries(elements) as [PeripheryOp, number][]) {
      if (!count) continue;
      const fj = this.device.periphery?.[op];
      if (fj === undefined) throw new Error(`the device's periphery has no ${op}: no energy figure for it`);
      j += count * fj * 1e-15;
    }
    return j;
  }
}

export function addBreakdown(a: EnergyBreakdown, b: EnergyBreakdown, times = 1): EnergyBreakdown {
  const out = { ...a };
  for (const k of Object.keys(ZERO_BREAKDOWN) as (keyof EnergyBreakdown)[]) out[k] += b[k] * times;
  return out;
}
