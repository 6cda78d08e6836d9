/**
 * The work an inference does, in the units energy is charged for: analog MACs, converter
 * conversions, digital MACs and ops, bytes moved per memory level, cells programmed. It comes either
 * from the backends' counters (measured work) or from the graph (expected work, for planning).
 */
import type { PeripheryOp, TileCounters } from '../accelerator.js';
import type { GraphSummary, NodeInfo } from '../model/inspect.js';
import type { HostEnergy } from './energy-constants.js';

export interface InferenceWork {
  analogMacs: number;
  dacConversions: number;
  adcConversions: number;
  digitalMacs: number;
  /** Elementwise digital ops: activations, pooling, partial-sum and bias adds. */
  digitalOps: number;
  l1Bytes: number;
  l2Bytes: number;
  dramBytes: number;
  /** Cells written (a differential pair counts two); charged once, amortised over inferences. */
  cellsProgrammed: number;
  /** Elements the device's digital periphery processes, per operator (pooling: window elements read). */
  periphery: Readonly<Partial<Record<PeripheryOp, number>>>;
}

type CountedWork = Exclude<keyof InferenceWork, 'periphery'>;

export type Placement = 'analog' | 'digital';

export const NO_WORK: Readonly<InferenceWork> = Object.freeze({
  analogMacs: 0, dacConversions: 0, adcConversions: 0, digitalMacs: 0, digitalOps: 0,
  l1Bytes: 0, l2Bytes: 0, dramBytes: 0, cellsProgrammed: 0, periphery: Object.freeze({}),
});

const COUNTED = (Object.keys(NO_WORK) as (keyof InferenceWork)[]).filter((k): k is CountedWork => k !== 'periphery');

export function addWork(a: InferenceWork, b: Partial<InferenceWork>, times = 1): InferenceWork {
  const out = { ...a, periphery: { ...a.periphery } };
  for (const k of COUNTED) out[k] += (b[k] ?? 0) * times;
  for (const [op, n] of Object.entries(b.periphery ?? {}) as [PeripheryOp, number][]) out.periphery[op] = (out.periphery[op] ?? 0) + n * times;
  return out;
}

/** What the tiles did between two counter snapshots (e.g. around one inference). */
export function workFromTileCounters(before: readonly TileCounters[], after: readonly TileCounters[]): Partial<InferenceWork> {
  const prev = new Map(before.map((c) => [c.tileId, c]));
  const w = { analogMacs: 0, dacConversions: 0, adcConversions: 0, cellsProgrammed: 0 };
  for (const c of after) {
    const p = prev.get(c.tileId);
    w.analogMacs += c.macs - (p?.macs ?? 0);
    w.dacConversions += c.dacConversions - (p?.dacConversions ?? 0);
    w.adcConversions += c.adcConversions - (p?.adcConversions ?? 0);
    w.cellsProgrammed += c.cellsProgrammed - (p?.cellsProgrammed ?? 0);
  }
  return w;
}

export interface TileGeometry { rows: number; cols: number }

const FLOAT_BYTES = 4;
const elements = (s: readonly number[] | undefined): number => (s ? s.reduce((a, b) => a * b, 1) : 0);

/** Nodes the hybrid plan applies in the digital periphery (HybridModel.peripheryNodes): node index → operator. */
export type PeripheryNodes = ReadonlyMap<number, { op: PeripheryOp; elementsPerOutput: number }>;

/**
 * Expected work of one inference at the shapes the summary was inspected with (observe the model
 * first: symbolic dims leave MACs unknown). `analog` puts every MVM candidate on tiles of `tile`,
 * as the hybrid backend does, and charges the nodes in `periphery` to the device's periphery;
 * everything else runs on the host either way.
 */
export function estimateWork(summary: GraphSummary, placement: Placement, host: Pick<HostEnergy, 'l2Bytes'>, tile?: TileGeometry, periphery: PeripheryNodes = new Map()): InferenceWork {
  if (placement === 'analog' && !tile) throw new Error('analog placement needs the tile geometry of the device');
  let w: InferenceWork = { ...NO_WORK };
  let digitalWeightBytes = 0;
  for (const node of summary.nodes) {
    if (node.op === 'Constant') continue;
    const outElems = node.outputShapes.reduce((s, o) => s + elements(o), 0);
    const fused = placement === 'analog' ? periphery.get(node.index) : undefined;
    if (fused) {
      w = addWork(w, { periphery: { [fused.op]: outElems * fused.elementsPerOutput } });
      continue;
    }
    const inElems = node.inputShapes.reduce((s, i) => s + elements(i), 0) - node.params;
    w.l1Bytes += FLOAT_BYTES * (Math.max(inElems, 0) + outElems);
    if (!node.mvm) {
      w.digitalOps += outElems;
      continue;
    }
    if (node.macs === undefined) throw new Error(`node '${node.name}': shapes unknown, observe the model before estimating its energy`);
    if (placement === 'digital') {
      w.digitalMacs += node.macs;
      w.digitalOps += outElems; // bias add
      digitalWeightBytes += FLOAT_BYTES * node.params;
    } else {
      w = addWork(w, analogNodeWork(node, outElems, tile!));
    }
  }
  // Weights are re-read every inference: from the cache if they all fit, else from DRAM.
  if (digitalWeightBytes <= host.l2Bytes) w.l2Bytes += digitalWeightBytes;
  else w.dramBytes += digitalWeightBytes;
  return w;
}

/** One MVM node on tiles: K×N weights cut into ⌈K/rows⌉ × ⌈N/cols⌉ blocks (runtime/analog/analog-matrix). */
function analogNodeWork(node: NodeInfo, outElems: number, tile: TileGeometry): Partial<InferenceWork> {
  const weightDims = node.inputShapes[1];
  const out = node.outputShapes[0];
  if (!weightDims || !out) throw new Error(`node '${node.name}': weight or output shape unknown`);
  // Outputs per MVM: the last dim for MatMul/Gemm; output channels per group for Conv.
  let n = out[out.length - 1]!;
  if (node.op === 'Conv') {
    const groups = (node.inputShapes[0]?.[1] ?? weightDims[1]!) / weightDims[1]!;
    n = weightDims[0]! / groups;
  }
  const k = node.macs! / outElems;
  const mvms = outElems / n;
  const rowBlocks = Math.ceil(k / tile.rows);
  const colBlocks = Math.ceil(n / tile.cols);
  return {
    analogMacs: node.macs!,
    dacConversions: mvms * k * colBlocks,
    adcConversions: mvms * n * rowBlocks,
    // partial sums over row blocks, then the bias, are added digitally
    digitalOps: mvms * n * rowBlocks,
    cellsProgrammed: 2 * elements(weightDims),
  };
}
