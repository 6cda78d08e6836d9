/**
 * JSON from files edgerun does not control (config, profiles, inputs, key and trust files).
 * JSON.parse alone accepts two hostile shapes: nesting so deep that every recursive consumer (a
 * merge, a schema, Array.flat) overflows the stack, and keys such as `__proto__` that an ordinary
 * assignment turns into a prototype change instead of data. Both are refused here, up front.
 */
export class JsonError extends Error {
  override readonly name = 'JsonError';
  /** For a forbidden key: the key and the dotted path of the object holding it. */
  constructor(message: string, readonly forbidden?: { key: string; at: string }) {
    super(message);
  }
}

/** Far deeper than any edgerun document needs (a batch of images is 4–5 levels). */
export const MAX_JSON_DEPTH = 64;

/** Keys that name an object's prototype machinery rather than data. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export function parseJson(text: string, source: string, maxDepth = MAX_JSON_DEPTH): unknown {
  checkDepth(text, source, maxDepth);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // One line: V8's message can hold a newline and a quoted excerpt of the text.
    throw new JsonError(`${source}: not valid JSON: ${(e as Error).message.replace(/\s+/g, ' ')}`);
  }
  const bad = forbiddenKeyPath(value);
  if (bad) throw new JsonError(`${source}: key "${bad.key}"${bad.at ? ` in ${bad.at}` : ''} is not allowed`, bad);
  return value;
}

/** Nesting depth from the text itself (brackets outside strings), without recursion. */
function checkDepth(text: string, source: string, maxDepth: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw new JsonError(`${source}: nested more than ${maxDepth} levels deep`);
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
}

/** The first forbidden key and the dotted path of the object holding it (iterative walk). */
function forbiddenKeyPath(root: unknown): { key: string; at: string } | undefined {
  const stack: { value: unknown; path: string }[] = [{ value: root, path: '' }];
  while (stack.length) {
    const { value, path } = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (Array.isArray(value)) {
      // Only arrays that hold objects need a look; long number arrays (tensors) are skipped fast.
      for (let i = 0; i < value.length; i++) if (typeof value[i] === 'object') stack.push({ value: value[i], path: `${path}[${i}]` });
      continue;
    }
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) return { key, at: path };
      stack.push({ value: (value as Record<string, unknown>)[key], path: path ? `${path}.${key}` : key });
    }
  }
  return undefined;
}
