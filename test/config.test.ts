import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../runtime/config.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveConfig', () => {
  it('has complete defaults', () => {
    const c = resolveConfig();
    expect(c.digital.threads).toBe(1);
    expect(c.eval.batchSize).toBe(32);
    expect(c.device.id).toBe('edge-1');
  });

  it('layers file < environment < flags', () => {
    const file = { path: 'edgerun.json', text: JSON.stringify({ digital: { threads: 2 }, eval: { batchSize: 8 }, device: { id: 'cam-7' } }) };
    const c = resolveConfig({ file, env: { EDGERUN_DIGITAL__THREADS: '3', EDGERUN_EVAL__BATCH_SIZE: '16', HOME: '/root' }, flags: { digital: { threads: 4 } } });
    expect(c.digital.threads).toBe(4);
    expect(c.eval.batchSize).toBe(16);
    expect(c.device.id).toBe('cam-7');
  });

  it('names the field and the environment variable of a bad value', () => {
    const e = configError(() => resolveConfig({ env: { EDGERUN_DIGITAL__THREADS: '0' } }));
    expect(e.issues[0]!.path).toBe('digital.threads');
    expect(e.message).toMatch(/digital\.threads: .*>=1.* \(from environment variable EDGERUN_DIGITAL__THREADS\)/);
  });

  it('names the field and the file of a bad value', () => {
    const e = configError(() => resolveConfig({ file: { path: '/etc/edgerun.json', text: '{"eval":{"batchSize":"big"}}' } }));
    expect(e.message).toMatch(/eval\.batchSize: .*expected number.*\(from config file \/etc\/edgerun\.json\)/);
  });

  it('refuses unknown keys, naming them', () => {
    const e = configError(() => resolveConfig({ flags: { digital: { thread: 2 } } }));
    expect(e.message).toMatch(/digital\.thread: .*Unrecognized key.*command-line flags/);
  });

  it('refuses a config file that is not JSON or not an object', () => {
    expect(configError(() => resolveConfig({ file: { path: 'c.json', text: '{ nope' } })).message).toMatch(/c\.json.*|not valid JSON/);
    expect(configError(() => resolveConfig({ file: { path: 'c.json', text: '[1,2]' } })).message).toMatch(/expected a JSON object/);
  });

  it('checks formats, e.g. device ids usable in MQTT topics', () => {
    const e = configError(() => resolveConfig({ flags: { device: { id: 'a/b#' } } }));
    expect(e.issues[0]!.path).toBe('device.id');
  });

  it('refuses keys that name the prototype machinery, anywhere, like unknown keys', () => {
    const cases: [string, RegExp][] = [
      ['{"__proto__": {"digital": {"threads": 8}}}', /- __proto__: Unrecognized key: "__proto__" \(from config file c\.json\)/],
      ['{"digital": {"__proto__": {"threads": 8}}}', /- digital\.__proto__: Unrecognized key: "__proto__"/],
      ['{"placement": {"models": {"constructor": "analog"}}}', /- placement\.models\.constructor: Unrecognized key: "constructor"/],
      ['{"scheduler": {"streams": {"prototype": {"model": "m"}}}}', /- scheduler\.streams\.prototype: Unrecognized key: "prototype"/],
    ];
    for (const [text, message] of cases) {
      const e = configError(() => resolveConfig({ file: { path: 'c.json', text } }));
      expect(e.message).toMatch(message);
      expect(e.issues[0]!.origin).toBe('config file c.json');
    }
    const env = configError(() => resolveConfig({ env: { EDGERUN_DIGITAL: '{"__proto__": {"threads": 8}}' } }));
    expect(env.issues[0]!.origin).toBe('environment variable EDGERUN_DIGITAL');
    // A key every object inherits is named with the layer that really set it.
    const inherited = configError(() => resolveConfig({ env: { EDGERUN_CONSTRUCTOR__PROTOTYPE__X: '1' }, flags: { digital: { threads: 2 } } }));
    expect(inherited.issues[0]!.origin).toBe('environment variable EDGERUN_CONSTRUCTOR');
    // What used to happen: the key became the merged object's prototype and vanished unchecked.
    expect(Object.getPrototypeOf(resolveConfig().digital)).toBe(Object.prototype);
  });

  it('refuses deeply nested JSON with a clear error, not a stack overflow', () => {
    const text = `${'{"a":'.repeat(200_000)}1${'}'.repeat(200_000)}`;
    expect(configError(() => resolveConfig({ file: { path: 'deep.json', text } })).message).toMatch(/nested more than 64 levels deep \(from config file deep\.json\)/);
  });

  it('bounds model.maxSizeMiB to what Node and protobuf can read (2047 MiB)', () => {
    expect(resolveConfig({ flags: { model: { maxSizeMiB: 2047 } } }).model.maxSizeMiB).toBe(2047);
    expect(configError(() => resolveConfig({ flags: { model: { maxSizeMiB: 3072 } } })).issues[0]!.path).toBe('model.maxSizeMiB');
  });
});
