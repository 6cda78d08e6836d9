/** Reads a whole file, refusing it up front (from its size on disk) when it is larger than a limit. */
import { open } from 'node:fs/promises';

export async function readFileLimited(path: string, maxBytes: number, what = 'file'): Promise<Uint8Array> {
  const handle = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new Error(e.code === 'ENOENT' ? `${what} not found: ${path}` : `cannot open ${what} ${path}: ${e.message}`);
  });
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new Error(`${path}: ${size} bytes exceeds the limit of ${maxBytes} bytes for a ${what}`);
    const buf = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await handle.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    await handle.close();
  }
}
