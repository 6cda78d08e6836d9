/**
 * Waits for a condition on in-memory state that other code (a broker client, a child process's
 * output) updates: polls `get` until it returns something truthy and returns that. `timeoutMs` only
 * bounds a hang; `context` adds what helps to debug one (e.g. the device's log).
 */
export async function until<T>(what: string, get: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000, context: () => string = () => ''): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();  // an async getter (e.g. reading a page) is awaited, not taken as the truthy Promise
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) {
      const more = context();
      throw new Error(`timed out waiting for ${what}${more ? `\n${more}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
