/**
 * Where `edgerun serve` keeps a device's state when the state directory comes from the config
 * (mqtt.stateDir) rather than --state-dir: everything — outbox, sequence, keys — follows it, unless
 * mqtt.outbox.dir names another place. Real process, embedded broker.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { edgerun } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'edgerun-state-dir-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const serve = (config: object): ReturnType<typeof edgerun> => {
  const file = join(dir, `config-${Math.random().toString(16).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ power: { sensor: 'none' }, security: { sign: true }, ...config }));
  return edgerun(['--config', file, 'serve', '--model', 'models/mlp.onnx', '--count', '1', '--quiet']);
};

describe('serve with the state directory from the config', () => {
  it('keeps the outbox and sequence in mqtt.stateDir, beside the keys (it went to ./state/outbox)', { timeout: 180_000 }, async () => {
    const stateDir = join(dir, 'from-config');
    const r = await serve({ mqtt: { stateDir } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(stateDir, 'outbox', 'seq.state'))).toBe(true);
    expect(existsSync(join(stateDir, 'keys', 'device.key'))).toBe(true);
  });

  it('mqtt.outbox.dir, when set, still puts the outbox elsewhere', { timeout: 180_000 }, async () => {
    const stateDir = join(dir, 'split');
    const outbox = join(dir, 'elsewhere');
    const r = await serve({ mqtt: { stateDir, outbox: { dir: outbox } } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(outbox, 'seq.state'))).toBe(true);
    expect(existsSync(join(stateDir, 'outbox'))).toBe(false);
  });
});
