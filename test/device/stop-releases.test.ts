/**
 * A device daemon stopped inside a living process (a fleet worker stops and restarts devices)
 * gives back every file descriptor it opened: the outbox journal's and the progress log's append
 * handles, the broker connection, the embedded broker's listeners.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { startDevice } from '../../apps/edgerun/device/running-device.js';
import { resolveConfig } from '../../runtime/config.js';
import { repoRoot } from '../helpers/cli.js';
import { until } from '../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'edgerun-stop-fds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const openFds = (): number => readdirSync('/proc/self/fd').length;

it('a stopped device leaves no file descriptor open, run after run', { timeout: 120_000 }, async () => {
  const config = resolveConfig({ flags: { placement: { default: 'digital' }, power: { sensor: 'none' }, mqtt: { telemetryIntervalMs: 1000 } } });
  const run = async (): Promise<void> => {
    const running = await startDevice({ config, models: [join(repoRoot, 'models/mlp.onnx')], data: join(repoRoot, 'models/data/canary-64.bin'), rateHz: 50, stateDir: join(dir, 'state') });
    await until('results journaled', () => running.reporter.counters.published >= 10 || undefined, 60_000);
    await running.stop({ drainMs: 2000 });
  };
  await run(); // onnxruntime's wasm and the process's own handles settle in the first run
  const before = openFds();
  await run();
  await run();
  expect(openFds()).toBe(before);
});
