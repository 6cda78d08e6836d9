/**
 * The CLI against hostile files and flags, as a real process: every case ends in exit 2 and one
 * clear line on stderr naming the problem — never a JavaScript engine message, a stack, a hang or
 * a silent wrong answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { edgerun, type CliResult } from './helpers/cli.js';
import { buildModel, linearReluModel } from './helpers/onnx-builder.js';
import { encodeTensor } from '../runtime/model/tensor.js';
import { onnx } from '../runtime/model/onnx.js';

/** Each case spawns the CLI a few times; on a loaded 2-core machine one spawn can take 10 s. */
const SLOW = { timeout: 180_000 };
let dir: string;
const at = (name: string): string => join(dir, name);

/** EDGD file: `labels.length` samples of 1×28×28 zeros. */
function edgd(labels: number[]): Uint8Array {
  const header = new DataView(new ArrayBuffer(24));
  new Uint8Array(header.buffer).set(new TextEncoder().encode('EDGD'));
  [1, labels.length, 1, 28, 28].forEach((v, i) => header.setUint32(4 + 4 * i, v, true));
  return Uint8Array.from([...new Uint8Array(header.buffer), ...labels, ...new Uint8Array(labels.length * 784)]);
}

/** Exit 2 with exactly one line on stderr, matching `pattern`, and no engine message. */
function refused(r: CliResult, pattern: RegExp): void {
  const lines = r.stderr.trim().split('\n');
  expect(r.stderr).not.toMatch(/Invalid typed array length|Invalid string length|Maximum call stack|Cannot read properties|\n\s+at /);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^edgerun: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.code).toBe(2);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'edgerun-hostile-'));
  writeFileSync(at('lin.onnx'), linearReluModel(4, 3).bytes);
  writeFileSync(at('x.pb'), encodeTensor({ type: 'float32', data: new Float32Array(4), dims: [1, 4] }, 'x'));
  execFileSync('mkfifo', [at('fifo')]);
  // A model declaring a 40000×40000 input: 6.4 GB of float32 if anyone made it up.
  writeFileSync(at('huge-input.onnx'), buildModel({
    nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
    inputs: [{ name: 'x', dims: [40_000, 40_000] }], outputs: [{ name: 'y', dims: [40_000, 40_000] }],
  }));
  // 4097×4096 outputs: one value more than `run --json` prints on one line.
  writeFileSync(at('wide.onnx'), buildModel({
    nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }],
    inputs: [{ name: 'x', dims: [4097, 4096] }], outputs: [{ name: 'y', dims: [4097, 4096] }],
  }));
  writeFileSync(at('gather.onnx'), buildModel({
    nodes: [{ op: 'Gather', inputs: ['x', 'i'], outputs: ['y'] }],
    inputs: [{ name: 'x', dims: [4] }, { name: 'i', dims: [1], elemType: onnx.TensorProto.DataType.INT64 }], outputs: [{ name: 'y', dims: [1] }],
  }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('usage errors', () => {
  it('exit 2 with one line pointing to the command\'s --help, not the whole usage text', SLOW, async () => {
    refused(await edgerun(['run', 'models/mlp.onnx', '--bogus']), /unknown option '--bogus' \(see `edgerun run --help`\)/);
    refused(await edgerun(['eval', 'models/mlp.onnx']), /required option '-d, --data <file>' not specified \(see `edgerun eval --help`\)/);
    refused(await edgerun(['--threads', '2', 'keys', 'trust']), /missing required argument 'key' \(see `edgerun keys trust --help`\)/);
    refused(await edgerun(['run', 'models/mlp.onnx', '--batch', '0']), /--batch <n>' argument '0' is invalid/);
    refused(await edgerun(['eval', 'models/mlp.onnx', '--data', 'x.bin', '--seeds', '1000000000']), /--seeds <k>' argument '1000000000' is invalid\. expected an integer from 1 to 1000/);
    refused(await edgerun(['broker', '--port', '70000']), /--port <n>' argument '70000' is invalid\. expected an integer from 0 to 65535/);
    refused(await edgerun(['listen', '--client-id', '']), /--client-id <id>' argument '' is invalid\. expected 1–128 printable ASCII/);
    const help = await edgerun(['run', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: edgerun run/);
  });
});

describe('files that are not what they claim', () => {
  it('FIFOs, directories and devices are refused at once, whatever role they are given', SLOW, async () => {
    refused(await edgerun(['inspect', at('fifo')]), /model .*fifo is not a regular file \(a FIFO\)/);
    refused(await edgerun(['run', at('lin.onnx'), '--input', at('fifo')]), /input file .*fifo is not a regular file \(a FIFO\)/);
    refused(await edgerun(['--config', at('fifo'), 'inspect', at('lin.onnx')]), /config file .*fifo is not a regular file \(a FIFO\)/);
    refused(await edgerun(['eval', 'models/mlp.onnx', '--data', at('fifo')]), /data set .*fifo is not a regular file \(a FIFO\)/);
    refused(await edgerun(['run', at('lin.onnx'), '--input', '/dev/zero']), /input file \/dev\/zero is not a regular file \(a character device\)/);
    refused(await edgerun(['run', at('lin.onnx'), '--input', dir]), /is a directory, not a file/);
  });

  it('a model above model.maxSizeMiB is refused from its size, without reading it; the bound itself is one Node can read', SLOW, async () => {
    const big = at('big.onnx');
    writeFileSync(big, '');
    truncateSync(big, 3 * 2 ** 30); // sparse: 3 GiB on paper, nothing on disk
    refused(await edgerun(['inspect', big]), /model .*big\.onnx is 3221225472 bytes, more than the limit of 536870912 bytes \(512 MiB\)/);
    writeFileSync(at('4g.json'), JSON.stringify({ model: { maxSizeMiB: 4096 } }));
    const r = await edgerun(['--config', at('4g.json'), 'inspect', big]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model\.maxSizeMiB: Too big: expected number to be <=2047/);
    rmSync(big);
  });
});

describe('files above their cap are refused from their size, without being read (sparse: nothing on disk)', () => {
  it('key, trust store, TLS, .pb input and data set files', SLOW, async () => {
    const sparse = (name: string, bytes: number): string => {
      writeFileSync(at(name), '');
      truncateSync(at(name), bytes);
      return at(name);
    };
    const key = sparse('big.key', 2 * 2 ** 30); // the 2 GB key file took 4.2 GB of memory
    refused(await edgerun(['keys', 'trust', key]), /key file .*big\.key is 2147483648 bytes, more than the limit of 1048576 bytes \(1 MiB\)/);
    refused(await edgerun(['cmd', 'edge-1', 'pause-stream', '--key', key, '--url', 'mqtt://127.0.0.1:1']), /key file .*big\.key is 2147483648 bytes/);
    mkdirSync(at('big-trust'));
    sparse('big-trust/trusted-keys.json', 2 ** 30);
    // `keys list` and `listen` read trust stores with the 1 GiB cap of outbox segments: V8's "Cannot create a string longer than…".
    refused(await edgerun(['keys', 'list', '--dir', at('big-trust')]), /trusted-keys\.json is 1073741824 bytes, more than the limit of 1048576 bytes/);
    refused(await edgerun(['listen', '--key-dir', at('big-trust'), '--url', 'mqtt://127.0.0.1:1', '--timeout', '1']), /trusted-keys\.json is 1073741824 bytes, more than the limit of 1048576 bytes/);
    refused(await edgerun(['listen', '--url', 'mqtts://127.0.0.1:1', '--timeout', '1'], { EDGERUN_MQTT__CA: key }), /TLS file .*big\.key is 2147483648 bytes, more than the limit of 1048576 bytes/);
    refused(await edgerun(['run', at('lin.onnx'), '--input', sparse('big.pb', 2 * 2 ** 30)]), /big\.pb is 2147483648 bytes, more than the limit of 1073741824 bytes/);
    refused(await edgerun(['eval', 'models/mlp.onnx', '--data', sparse('big.bin', 2 * 2 ** 30)]), /big\.bin is 2147483648 bytes, more than the limit of 1073741824 bytes/);
  });
});

describe('run', () => {
  it('refuses to make up an input of the size a model declares when it is huge, and a huge --batch', SLOW, async () => {
    refused(await edgerun(['run', at('huge-input.onnx')]), /--random input 'x' of shape \[40000, 40000\] would have 1\.600e\+9 values \(5\.960 GiB\), more than the limit of 1 GiB/);
    refused(await edgerun(['run', 'models/mlp.onnx', '--batch', '1000000000']), /input 'input' .* would have 7\.840e\+11 values/);
    refused(await edgerun(['inspect', 'models/mlp.onnx', '--batch', '1000000000']), /input 'input' \(zeros to observe shapes\) of shape \[1000000000, 1, 28, 28\]/);
    refused(await edgerun(['run', at('wide.onnx'), '--random', '--json']), /--json: the outputs hold 16781312 values, more than the 16777216 one JSON line can carry/);
  });

  it('the same input twice, JSON beside .pb files, and string dims are refused with what is wrong', SLOW, async () => {
    refused(await edgerun(['run', at('lin.onnx'), '--input', at('x.pb'), at('x.pb')]), /'x' is given twice/);
    writeFileSync(at('in.json'), JSON.stringify({ x: { dims: ['1', '4'], data: [1, 2, 3, 4] } }));
    refused(await edgerun(['run', at('lin.onnx'), '--input', at('in.json')]), /"dims" must be whole numbers ≥ 0, got \["1","4"\]/);
    refused(await edgerun(['run', at('lin.onnx'), '--input', at('x.pb'), at('in.json')]), /a JSON file holds every input of the model; give it alone/);
    writeFileSync(at('deep.json'), `${'['.repeat(5000)}${']'.repeat(5000)}`);
    refused(await edgerun(['run', at('lin.onnx'), '--input', at('deep.json')]), /deep\.json: nested more than 64 levels deep/);
  });

  it("onnxruntime's own log line does not precede edgerun's error", SLOW, async () => {
    writeFileSync(at('gather.json'), JSON.stringify({ x: [1, 2, 3, 4], i: [99] }));
    const r = await edgerun(['run', at('gather.onnx'), '--input', at('gather.json')]);
    refused(r, /indices element out of data bounds/);
    expect(r.stderr).not.toMatch(/\u001b\[|\[E:onnxruntime/);
  });
});

describe('eval', () => {
  it('labels outside the model\'s classes and an empty data set are errors, not 0 % accuracy', SLOW, async () => {
    writeFileSync(at('labels.bin'), edgd([1, 12, 3]));
    refused(await edgerun(['eval', 'models/mlp.onnx', '--data', at('labels.bin')]), /sample 1 has label 12, but the model has 10 classes \(0–9\)/);
    writeFileSync(at('empty.bin'), edgd([]));
    refused(await edgerun(['eval', 'models/mlp.onnx', '--data', at('empty.bin')]), /the data set is empty \(0 samples\)/);
    refused(await edgerun(['eval', 'models/mlp.onnx', '--data', at('labels.bin'), '--backend', 'analog', '--age', ',']), /--age ',' names no age/);
  });
});

describe('config', () => {
  it('a __proto__ key is refused like any unknown key; deep nesting gives a clear error', SLOW, async () => {
    writeFileSync(at('proto.json'), '{"digital": {"__proto__": {"threads": 4}}}');
    const proto = await edgerun(['--config', at('proto.json'), 'inspect', at('lin.onnx')]);
    expect(proto.code).toBe(2);
    expect(proto.stderr).toMatch(/- digital\.__proto__: Unrecognized key: "__proto__" \(from config file .*proto\.json\)/);
    writeFileSync(at('deep-config.json'), `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`);
    const deep = await edgerun(['--config', at('deep-config.json'), 'inspect', at('lin.onnx')]);
    expect(deep.code).toBe(2);
    expect(deep.stderr).toMatch(/nested more than 64 levels deep/);
    expect(deep.stderr).not.toMatch(/Maximum call stack/);
  });
});

describe('serve exits on a fatal start-up error with the embedded broker running', () => {
  // Before the fix each of these printed the error and then stayed alive on the broker's sockets.
  const serve = (stateDir: string): Promise<CliResult> => edgerun(['serve', '--model', 'models/mlp.onnx', '--state-dir', stateDir, '--count', '1', '--quiet'], { EDGERUN_POWER__SENSOR: 'none' });

  it('state dir is a file', SLOW, async () => {
    writeFileSync(at('state-file'), 'not a directory');
    refused(await serve(at('state-file')), /cannot create state directory .*state-file\/outbox: a file is in the way/);
  });

  it('outbox/seq.state is a directory', SLOW, async () => {
    mkdirSync(at('state-seq/outbox/seq.state'), { recursive: true });
    refused(await serve(at('state-seq')), /state file .*seq\.state is a directory, not a file/);
  });

  it('a planted huge state file is refused from its size, not read', SLOW, async () => {
    mkdirSync(at('state-big/outbox'), { recursive: true });
    const seq = at('state-big/outbox/seq.state');
    writeFileSync(seq, '');
    truncateSync(seq, 900 * 2 ** 20);
    refused(await serve(at('state-big')), /seq\.state is 943718400 bytes, more than the limit of 16777216 bytes/);
  });

  it('an outbox segment above the size limit is refused from its size', SLOW, async () => {
    mkdirSync(at('state-seg/outbox'), { recursive: true });
    const seg = at('state-seg/outbox/outbox-000000000001.seg');
    writeFileSync(seg, '');
    truncateSync(seg, 3 * 2 ** 30);
    refused(await serve(at('state-seg')), /outbox-000000000001\.seg is 3221225472 bytes, more than the limit of 1073741824 bytes/);
  });
});
