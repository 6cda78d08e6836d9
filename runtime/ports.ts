/**
 * Ports: the few ways runtime/ code reaches time (and, later, storage) without importing the OS.
 * drivers/ and tests provide the implementations. Kept minimal; extend, do not fork.
 */

/** Milliseconds on a monotonic scale (device time in simulations and tests). */
export interface Clock {
  now(): number;
}

/** Wall-independent monotonic time from the process (performance.now, sub-millisecond). */
export const monotonicClock: Clock = { now: () => performance.now() };

/**
 * Named files in one directory: outbox journal segments, key and replay state, installed bundles.
 * drivers/storage/fs-storage.ts implements it on the file system. Names are single path segments.
 */
export interface Storage {
  /** Names of the files present, sorted. */
  list(): Promise<string[]>;
  /**
   * The whole file, or undefined when it does not exist. A file larger than maxBytes (default: the
   * storage's own cap) is an error naming its size, before it is read.
   */
  read(name: string, maxBytes?: number): Promise<Uint8Array | undefined>;
  /** Replaces the file atomically (temporary file, fsync, rename): a crash leaves the old or the new content. */
  writeAtomic(name: string, data: Uint8Array): Promise<void>;
  /** Appends to the file (creating it); durable only after sync(). */
  append(name: string, data: Uint8Array): Promise<void>;
  /** Flushes the file's appended data to the device (fsync). */
  sync(name: string): Promise<void>;
  /** Deletes the file; no error when it is already gone. */
  remove(name: string): Promise<void>;
}

/** The cap for small JSON state files (sequence lease, progress, replay memory, deploy pointer): a planted huge one is refused, not read. */
export const STATE_FILE_MAX_BYTES = 16 * 2 ** 20;

/**
 * Named sub-storages under one root: installed bundle versions, a tree per model (runtime/deploy).
 * Names are single path segments, as for Storage.
 */
export interface StorageTree {
  /** Names of the sub-storages (and sub-trees) present, sorted. */
  list(): Promise<string[]>;
  /** The sub-storage of this name (created when missing). */
  open(name: string): Storage;
  /** The sub-tree of this name (created when missing). */
  tree(name: string): StorageTree;
  /** Deletes the sub-storage and everything in it; no error when it is already gone. */
  remove(name: string): Promise<void>;
}
