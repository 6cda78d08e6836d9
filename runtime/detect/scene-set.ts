/**
 * Held-out detection scenes in the EDGS format (models/README.md; written by
 * models/train_detector.py): little-endian "EDGS", u32 version = 1, count, channels, height, width,
 * label count; u32 length + UTF-8 comma-separated label names; `count` u8 box counts; one u8 label
 * per box; float32 [x1, y1, x2, y2] per box (pixels); then the u8 pixels of every scene, NCHW.
 */
import type { Box } from './box.js';
import type { GroundTruth } from './mean-ap.js';

export interface SceneSet {
  count: number;
  /** [channels, height, width]. */
  sceneShape: [number, number, number];
  labels: string[];
  truth: GroundTruth[][];
  pixels: Uint8Array;
}

const MAGIC = 'EDGS';

export function parseSceneSet(bytes: Uint8Array, source = 'scenes'): SceneSet {
  const fail = (why: string): never => { throw new Error(`${source}: ${why}`); };
  if (bytes.length < 32 || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC) fail(`not an EDGS scene set (expected the magic bytes "${MAGIC}")`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [version, count, channels, height, width, labelCount, nameBytes] = [4, 8, 12, 16, 20, 24, 28].map((o) => view.getUint32(o, true)) as number[] as [number, number, number, number, number, number, number];
  if (version !== 1) fail(`unsupported EDGS version ${version}`);
  let at = 32;
  const need = (n: number, what: string): number => {
    if (at + n > bytes.length) fail(`truncated: ${what} needs ${n} bytes at offset ${at}, the file has ${bytes.length}`);
    const start = at;
    at += n;
    return start;
  };
  const labels = new TextDecoder().decode(bytes.subarray(need(nameBytes, 'label names'), at)).split(',');
  if (labels.length !== labelCount || labels.some((l) => !l)) fail(`${labelCount} labels declared, names "${labels.join(',')}"`);
  const perScene = bytes.subarray(need(count, 'box counts'), at);
  const boxes = perScene.reduce((s, n) => s + n, 0);
  const boxLabels = bytes.subarray(need(boxes, 'box labels'), at);
  const coordsAt = need(boxes * 16, 'boxes');
  const pixels = bytes.subarray(need(count * channels * height * width, 'pixels'), at);
  if (at !== bytes.length) fail(`${bytes.length - at} bytes after the last scene`);
  const truth: GroundTruth[][] = [];
  let k = 0;
  for (let i = 0; i < count; i++) {
    const scene: GroundTruth[] = [];
    for (let j = 0; j < perScene[i]!; j++, k++) {
      const label = labels[boxLabels[k]!] ?? fail(`box ${k} has label ${boxLabels[k]} of ${labelCount}`);
      const box = [0, 1, 2, 3].map((c) => view.getFloat32(coordsAt + 16 * k + 4 * c, true)) as Box;
      scene.push({ label, box });
    }
    truth.push(scene);
  }
  return { count, sceneShape: [channels, height, width], labels, truth, pixels };
}
