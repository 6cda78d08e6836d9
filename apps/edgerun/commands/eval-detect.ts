/**
 * `edgerun eval <detector> --task detect --data <scenes.bin>`: mAP@0.5 (VOC all-point) on an EDGS
 * scene set, digital, and with `--backend analog` beside it per device age and instance (profile,
 * GDC) like the classification eval's sweep.
 */
import { parseSceneSet } from '../../../runtime/detect/scene-set.js';
import { evaluateDetector, type DetectorEvalResult } from '../../../runtime/detect/evaluate-detector.js';
import { gridHeadOf } from '../../../runtime/detect/grid-head.js';
import { meanStd, metricOverAges, parseAges } from '../../../runtime/hybrid/drift-sweep.js';
import type { AnalogBackend } from '../../../runtime/hybrid/analog-backend.js';
import type { CrossbarEmulator } from '../../../drivers/crossbar/emulator.js';
import { readFileLimited } from '../../../drivers/storage/read-file.js';
import { createRegistry, loadConfig, readModel, type DeviceOptions, type GlobalOptions } from '../context.js';
import { formatTable } from '../table.js';
import type { EvalOptions } from './eval.js';

export interface DetectEvalResult {
  model: string;
  scenes: number;
  digital: { map: number; perLabel: DetectorEvalResult['map']['perLabel']; scenesPerSecond: number };
  analog?: { profile: string; gdc: boolean; adcBits: number; seeds: number[]; table: { age: string; seconds: number; mean: number; std: number; maps: number[] }[] };
}

export async function evalDetectCommand(path: string, opts: EvalOptions, global: GlobalOptions & DeviceOptions): Promise<DetectEvalResult> {
  const config = await loadConfig(global);
  const model = await readModel(path, config);
  const head = gridHeadOf(model);
  const scenes = parseSceneSet(await readFileLimited(opts.data, 1 << 30, 'scene set'), opts.data);
  if (opts.backend !== 'digital' && opts.backend !== 'analog') throw new Error(`--backend ${opts.backend}: digital or analog`);
  if (opts.gdc !== undefined && opts.gdc !== 'on' && opts.gdc !== 'off') throw new Error(`--gdc must be on or off, got '${opts.gdc}'`);
  const evalOptions = { limit: opts.limit, batchSize: opts.batch ?? config.eval.batchSize };
  const digitalRegistry = createRegistry(config);
  let digital: DetectorEvalResult;
  try {
    digital = await evaluateDetector(await (await digitalRegistry.get('digital')).load(model), scenes, head, evalOptions);
  } finally {
    await digitalRegistry.dispose();
  }
  const result: DetectEvalResult = {
    model: path, scenes: digital.scenes, digital: { map: digital.map.map, perLabel: digital.map.perLabel, scenesPerSecond: digital.scenesPerSecond },
  };
  if (opts.backend === 'analog') {
    const ages = parseAges(opts.age ?? '1s');
    const seeds = Array.from({ length: opts.seeds ?? 1 }, (_, i) => config.analog.seed + i);
    const overrides = { ...(opts.gdc ? { gdc: opts.gdc === 'on' ? 'global' as const : 'off' as const } : {}), ...(opts.adcBits ? { adc: { bits: opts.adcBits } } : {}) };
    const perSeed: number[][] = [];
    let info = { profile: config.analog.profile, gdc: false, adcBits: Infinity };
    for (const seed of seeds) {
      const registry = createRegistry({ ...config, analog: { ...config.analog, seed } }, overrides);
      try {
        const backend = (await registry.get('analog')) as AnalogBackend;
        const d = backend.driver.info();
        info = { profile: d.profile, adcBits: d.adcBits, gdc: (backend.driver as CrossbarEmulator).profile.gdc !== 'off' };
        const hybrid = await backend.load(model);
        // A hybrid model runs one inference at a time: batch 1.
        const points = await metricOverAges(hybrid, backend.driver, ages, info.gdc, async (m) => (await evaluateDetector(m, scenes, head, { limit: opts.limit })).map.map);
        perSeed.push(points.map((p) => p.value));
        if (!opts.json) process.stderr.write(`  device instance seed ${seed}: ${points.map((p) => `${p.label} mAP ${p.value.toFixed(4)}`).join(', ')}\n`);
      } finally {
        await registry.dispose();
      }
    }
    result.analog = {
      ...info, seeds,
      table: ages.map((age, i) => {
        const maps = perSeed.map((s) => s[i]!);
        return { age: age.label, seconds: age.seconds, ...meanStd(maps), maps };
      }),
    };
  }
  if (opts.json) {
    console.log(JSON.stringify(result));
    return result;
  }
  console.log(`${path}: mAP@0.5 (VOC all-point) on ${result.scenes} scenes of ${opts.data}`);
  console.log(formatTable(['label', 'objects', 'AP (digital)'], digital.map.perLabel.map((l) => [l.label, l.positives, l.ap.toFixed(4)]), [false, true, true]));
  console.log(`digital mAP@0.5 ${digital.map.map.toFixed(4)} (${Math.round(digital.scenesPerSecond)} scenes/s)`);
  if (result.analog) {
    const a = result.analog;
    console.log(`analog (${a.profile}, GDC ${a.gdc ? 'on' : 'off'}, ADC ${a.adcBits} bits) over ${a.seeds.length} device instance(s):`);
    console.log(formatTable(['age', 'analog mAP@0.5', 'digital', 'loss (points)'],
      a.table.map((r) => [r.age, `${r.mean.toFixed(4)} ± ${r.std.toFixed(4)}`, digital.map.map.toFixed(4), ((digital.map.map - r.mean) * 100).toFixed(2)]), [false, true, true, true]));
  }
  return result;
}
