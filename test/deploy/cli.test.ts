/** `edgerun deploy build|sign|inspect|install` as real CLI subprocesses on real files. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KEY_FILE_MAX_BYTES } from '../../runtime/telemetry/keys.js';
import { edgerun, lastJson } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'edgerun-deploy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { EDGERUN_SECURITY__KEY_DIR: join(dir, 'device-keys'), EDGERUN_PLACEMENT__DEFAULT: 'analog', EDGERUN_POWER__SENSOR: 'none' };

describe('edgerun deploy (CLI)', () => {
  it('builds, signs, inspects and installs a bundle; refuses bad input with exit 2 and one line', { timeout: 600_000 }, async () => {
    const bundle = join(dir, 'cnn.bundle');
    writeFileSync(join(dir, 'labels.txt'), 'T-shirt\nTrouser\nPullover\nDress\nCoat\nSandal\nShirt\nSneaker\nBag\nBoot\n');
    const build = await edgerun(['deploy', 'build', 'models/cnn.onnx', '--version', '2.1.0', '--canary', 'models/data/canary-64.bin', '--labels', join(dir, 'labels.txt'), '--profiles', 'pcm,flash', '-o', bundle, '--json',
      '--min-agreement', '0.75', '--min-cosine', '0.9'], env); // far from pcm's spread of canary agreement (94-100 %)
    expect(build.code, build.stderr).toBe(0);
    expect(lastJson(build.stdout)).toMatchObject({ model: 'cnn', version: '2.1.0', signed: false });

    const unsigned = await edgerun(['deploy', 'inspect', bundle, '--json'], env);
    expect(unsigned.code).toBe(1);
    expect(lastJson(unsigned.stdout)).toMatchObject({ manifest: { model: { id: 'cnn', version: '2.1.0' }, profiles: ['pcm', 'flash'], labels: expect.arrayContaining(['Boot']) }, verified: { ok: false, reason: 'unsigned' } });

    expect((await edgerun(['keys', 'gen', '--name', 'operator', '--dir', join(dir, 'op')], env)).code).toBe(0);
    const sign = await edgerun(['deploy', 'sign', bundle, '--key', join(dir, 'op', 'operator.key'), '--json'], env);
    expect(sign.code, sign.stderr).toBe(0);
    expect((await edgerun(['deploy', 'inspect', bundle, '--json'], env)).code).toBe(1); // not trusted yet: unknown-key
    expect((await edgerun(['keys', 'trust', join(dir, 'op', 'operator.key')], env)).code).toBe(0);
    const inspect = await edgerun(['deploy', 'inspect', bundle, '--json'], env);
    expect(inspect.code, inspect.stdout).toBe(0);
    expect(lastJson(inspect.stdout).verified).toMatchObject({ ok: true, signer: { name: 'operator' } });

    const state = join(dir, 'state');
    const install = await edgerun(['deploy', 'install', bundle, '--state-dir', state, '--model', 'models/cnn.onnx', '--json'], env);
    expect(install.code, install.stderr).toBe(0);
    expect(lastJson(install.stdout)).toMatchObject({ state: 'active', model: 'cnn', version: '2.1.0', selfTest: { servedBy: 'analog' } });
    expect(JSON.parse(readFileSync(join(state, 'deploy', 'active.json'), 'utf8')).models).toEqual({ cnn: { version: '2.1.0', previous: [] } });
    // The same version again is refused and changes nothing.
    const again = await edgerun(['deploy', 'install', bundle, '--state-dir', state, '--model', 'models/cnn.onnx', '--json'], env);
    expect(again.code).toBe(2);
    expect(lastJson(again.stdout)).toMatchObject({ state: 'failed', reason: 'downgrade' });

    writeFileSync(join(dir, 'junk.bundle'), 'not a bundle at all'.repeat(40));
    for (const args of [['deploy', 'inspect', join(dir, 'junk.bundle')], ['deploy', 'sign', join(dir, 'nope.bundle'), '--key', join(dir, 'op', 'operator.key')], ['deploy', 'build', 'models/cnn.onnx', '--version', 'one', '--canary', 'models/data/canary-64.bin', '-o', join(dir, 'x.bundle')],
      ['deploy', 'push', bundle, '--to', 'group:a b', '--key', join(dir, 'op', 'operator.key')]]) {
      const r = await edgerun(args, env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('key files have one cap (KEY_FILE_MAX_BYTES) for signing deployments, commands and trust stores: over it, one line and exit 2', { timeout: 300_000 }, async () => {
    const bundle = join(dir, 'mlp.bundle');
    expect((await edgerun(['deploy', 'build', 'models/mlp.onnx', '--version', '1.0.0', '--canary', 'models/data/canary-64.bin', '--canary-count', '4', '-o', bundle], env)).code).toBe(0);
    const keys = join(dir, 'cap');
    expect((await edgerun(['keys', 'gen', '--name', 'op', '--dir', keys], env)).code).toBe(0);
    // A real key file padded to 200 KiB (JSON allows trailing blanks): under the cap for every reader.
    const padded = join(keys, 'padded.key');
    writeFileSync(padded, Buffer.concat([readFileSync(join(keys, 'op.key')), Buffer.alloc(200 * 1024, ' ')]));
    const signed = await edgerun(['deploy', 'sign', bundle, '--key', padded, '--json'], env);
    expect(signed.code, signed.stderr).toBe(0);
    expect(lastJson(signed.stdout)).toMatchObject({ model: 'mlp', version: '1.0.0', signerName: 'op' });
    expect((await edgerun(['keys', 'trust', padded, '--name', 'padded'], env)).code).toBe(0);

    // One byte over the cap: refused before it is read, the same line from each command.
    const big = join(keys, 'big.key');
    writeFileSync(big, Buffer.concat([readFileSync(join(keys, 'op.key')), Buffer.alloc(KEY_FILE_MAX_BYTES, ' ')]).subarray(0, KEY_FILE_MAX_BYTES + 1));
    for (const args of [['deploy', 'sign', bundle, '--key', big], ['deploy', 'push', bundle, '--to', 'dev-1', '--key', big, '--url', 'mqtt://127.0.0.1:1'],
      ['cmd', 'dev-1', 'pause-stream', '--args', '{"stream":"s"}', '--key', big, '--url', 'mqtt://127.0.0.1:1'], ['keys', 'trust', big, '--name', 'big']]) {
      const r = await edgerun(args, env);
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2);
      expect(r.stderr.trim()).toMatch(new RegExp(`^[^\\n]*key file ${big.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is ${KEY_FILE_MAX_BYTES + 1} bytes, more than the limit of ${KEY_FILE_MAX_BYTES} bytes \\(1 MiB\\)[^\\n]*$`));
    }
  });
});
