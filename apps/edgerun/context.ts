/** What every command needs: the resolved config, the backend registry and model loading. */
import { readFile } from 'node:fs/promises';
import { BackendRegistry } from '../../runtime/backend.js';
import { resolveConfig, type Config } from '../../runtime/config.js';
import { loadModel, type LoadedModel } from '../../runtime/model/load.js';
import { DigitalBackend, DIGITAL_BACKEND } from '../../drivers/digital/ort-backend.js';
import { readFileLimited } from '../../drivers/storage/read-file.js';

export interface GlobalOptions {
  config?: string;
  threads?: number;
}

export async function loadConfig(opts: GlobalOptions, flags: Record<string, unknown> = {}): Promise<Config> {
  const file = opts.config ? { path: opts.config, text: await readFile(opts.config, 'utf8') } : undefined;
  const cliFlags: Record<string, unknown> = { ...flags };
  if (opts.threads !== undefined) cliFlags.digital = { threads: opts.threads };
  return resolveConfig({ file, env: process.env, flags: cliFlags });
}

export function createRegistry(config: Config): BackendRegistry {
  const registry = new BackendRegistry();
  registry.register(DIGITAL_BACKEND, () => new DigitalBackend(config.digital), 0);
  return registry;
}

export async function readModel(path: string, config: Config): Promise<LoadedModel> {
  const maxBytes = config.model.maxSizeMiB * 1024 * 1024;
  return loadModel(await readFileLimited(path, maxBytes, 'model'), { source: path, maxBytes });
}
