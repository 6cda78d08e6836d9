/**
 * The device side of a deployment, a state machine whose every state is persisted (Storage port)
 * before its work starts, so a restart finds either the old version or the new one, never a half:
 *
 *   receiving → verifying → staged → self-test → switching → active
 *        any failure ─────────────────────────────→ failed (the running version keeps serving)
 *
 * - receiving: the bundle's bytes arrive (a transport: MQTT chunks, HTTP download, a local file).
 * - verifying: archive structure, signature by a trusted key, every part's sha256, runtime version,
 *   target profile, input shapes of the streams that use the model, downgrade rule (./verify.ts).
 * - staged: the parts are written into a new version directory (StorageTree `<model>/<version>`).
 * - self-test: the model is placed where the device serves it (analog or digital) and runs the
 *   canaries against their expected digital outputs (./self-test.ts).
 * - switching: the pointer file `active.json` is replaced atomically (temporary file, fsync,
 *   rename, directory fsync); then the daemon swaps the model between two inferences (DeployHost).
 * Afterwards only the last `keep` versions of each model stay on disk.
 *
 * recover() at start-up settles an interrupted deployment: before `switching` the staged directory
 * is removed and the old version serves (reported `rolled-back`, reason `interrupted`); during
 * `switching` the pointer decides — whatever it names is what serves, and that is reported.
 *
 * Every step is reported through `report` (the daemon publishes it on `deploy/status`, retained,
 * and on `events`).
 */
import { z } from 'zod';
import { parseJson } from '../json.js';
import type { SignatureVerifier } from '../telemetry/envelope.js';
import type { TrustLookup } from '../telemetry/commands.js';
import { loadModel, type LoadedModel } from '../model/load.js';
import { STATE_FILE_MAX_BYTES, monotonicClock, type Clock, type Storage, type StorageTree } from '../ports.js';
import type { PlacedModel } from '../scheduler/types.js';
import { MANIFEST_ENTRY, readBundle, SIGNATURE_ENTRY, type Bundle, type BundleLimits } from './bundle.js';
import { DeployError, type DeployReason } from './errors.js';
import { CANARY_EXPECTED_PART, CANARY_INPUTS_PART, MODEL_PART, PART_NAMES, parseManifest, sha256Hex, versionDirName, type Manifest } from './manifest.js';
import { selfTest, type SelfTestFigures } from './self-test.js';
import { checkDescribes, checkFit, verifyBundle, verifyParts, type DeviceFacts } from './verify.js';

export const DEPLOY_PHASES = ['receiving', 'verifying', 'staged', 'self-test', 'switching'] as const;
export type DeployPhase = (typeof DEPLOY_PHASES)[number];
export type DeployState = DeployPhase | 'active' | 'failed' | 'rolled-back';

/** What the daemon does for the deployer: place models and swap the one a stream uses. */
export interface DeployHost extends DeviceFacts {
  /** Places the model where model `id` is served now (analog or digital), without serving it yet. */
  place(id: string, model: LoadedModel): Promise<PlacedModel>;
  /** Modelled energy per inference of the model on that placement (J), when known. */
  energyJ?(id: string, model: LoadedModel, placed: PlacedModel): Promise<number | undefined>;
  /**
   * Serves `model` (placed, or to be placed by the host when `placed` is undefined) for `id` from
   * the next inference on; `version` undefined = the model the daemon was started with.
   */
  activate(id: string, model: LoadedModel, placed: PlacedModel | undefined, version: string | undefined): Promise<void>;
  /** The model the daemon was started with (rollback below the first deployed version). */
  baseModel(id: string): LoadedModel | undefined;
}

export interface DeployStatus {
  /** Deployment id (from the deploy command, or generated for local installs). */
  id: string;
  state: DeployState;
  model?: string;
  version?: string;
  /** The version it replaces (null: the model the daemon was started with). */
  from?: string | null;
  reason?: DeployReason;
  detail?: string;
  signer?: { name: string; fingerprint: string };
  selfTest?: SelfTestFigures;
  /**
   * While receiving: bytes so far, of the announced size, and the next chunk the device needs;
   * `resumed` after a restart, `resend` when it asks again for chunks that did not arrive.
   */
  transfer?: { received: number; size: number; next?: number; resumed?: boolean; resend?: boolean };
  /** Milliseconds per step so far: transfer, verify, stage, selfTest, switch. */
  timings?: Record<string, number>;
  /** Versions each model serves after this step (models absent serve what the daemon was started with). */
  active: Record<string, string>;
}

export interface InstallOptions {
  id: string;
  allowDowngrade?: boolean;
  /** Time spent receiving the bytes, for the figures. */
  transferMs?: number;
}

export interface DeployerOptions {
  /** deploy-state.json and active.json live here. */
  root: Storage;
  /** One directory per installed version. */
  versions: StorageTree;
  trust: TrustLookup;
  verify?: SignatureVerifier;
  limits: BundleLimits;
  /** Versions kept per model (the active one included). */
  keep: number;
  report(status: DeployStatus): void | Promise<void>;
  /** Called after each phase is persisted, before its work (failpoints for crash tests, logging). */
  onPhase?(phase: DeployPhase, deployment: string): void | Promise<void>;
  /** Called once the pointer names the new version, before the daemon swaps the model (a failpoint). */
  onPointerMoved?(deployment: string): void | Promise<void>;
  clock?: Clock;
}

const STATE_FILE = 'deploy-state.json';
const POINTER_FILE = 'active.json';
const LEVEL = /^[A-Za-z0-9_.-]+$/;

const stateSchema = z.strictObject({
  v: z.literal(1),
  phase: z.enum(['idle', ...DEPLOY_PHASES]),
  deployment: z.strictObject({
    id: z.string(), model: z.string().optional(), version: z.string().optional(), from: z.string().nullable().optional(),
    /** A rollback: its target version is a kept one, never removed on recovery. */
    rollback: z.boolean().optional(),
    /** How the bundle arrives; a restart during `receiving` resumes it (./agent.ts). */
    transfer: z.strictObject({
      sha256: z.string(), size: z.number(), chunkSize: z.number().optional(), url: z.string().optional(), allowDowngrade: z.boolean().optional(),
    }).optional(),
  }).optional(),
});
type PersistedState = z.infer<typeof stateSchema>;
export type TransferSpec = NonNullable<NonNullable<PersistedState['deployment']>['transfer']>;

const pointerSchema = z.strictObject({
  v: z.literal(1),
  models: z.record(z.string().regex(LEVEL), z.strictObject({ version: z.string(), previous: z.array(z.string()) })),
});
type Pointer = z.infer<typeof pointerSchema>;

const utf8 = new TextEncoder();

async function readJson<T>(storage: Storage, file: string, schema: z.ZodType<T>, fallback: T): Promise<T> {
  const bytes = await storage.read(file, STATE_FILE_MAX_BYTES);
  if (bytes === undefined) return fallback;
  // parseJson: a damaged or planted state file cannot recurse the parser deep or carry prototype keys.
  const r = schema.safeParse(parseJson(new TextDecoder().decode(bytes), `deploy state '${file}'`));
  if (!r.success) throw new Error(`deploy state '${file}' has the wrong shape`);
  return r.data;
}

export class Deployer {
  #pointer: Pointer = { v: 1, models: {} };
  #busy = false;
  /** The deployment whose transfer receiving() started: its install() continues that claim. */
  #receiving: string | undefined;
  #pending: { id: string; transfer: TransferSpec } | undefined;
  #host: DeployHost | undefined;
  readonly #clock: Clock;

  private constructor(private readonly o: DeployerOptions) {
    this.#clock = o.clock ?? monotonicClock;
  }

  /** Opens the deploy state and settles an interrupted deployment (see recover()). */
  static async open(o: DeployerOptions): Promise<Deployer> {
    const d = new Deployer(o);
    d.#pointer = await readJson(o.root, POINTER_FILE, pointerSchema, { v: 1, models: {} });
    await d.#migrateLayout();
    await d.#recover();
    return d;
  }

  /** Binds the daemon (after its models are loaded from activeModels()). */
  attach(host: DeployHost): void {
    this.#host = host;
  }

  /** Version now active per model. */
  get active(): Record<string, string> {
    return Object.fromEntries(Object.entries(this.#pointer.models).map(([id, e]) => [id, e.version]));
  }

  /**
   * The active version of each deployed model, loaded and checked against its manifest: what the
   * daemon serves instead of the model it was given. A version whose files no longer match is
   * dropped (reported), and the model the daemon was given serves.
   */
  async activeModels(): Promise<Map<string, { version: string; model: LoadedModel; manifest: Manifest }>> {
    const out = new Map<string, { version: string; model: LoadedModel; manifest: Manifest }>();
    for (const [id, entry] of Object.entries(this.#pointer.models)) {
      try {
        const { manifest, parts } = await this.#readVersion(id, entry.version);
        out.set(id, { version: entry.version, manifest, model: loadModel(parts[MODEL_PART], { source: `${id}/${versionDirName(entry.version)}/${MODEL_PART}`, maxBytes: this.o.limits.maxModelBytes }) });
      } catch (e) {
        const { [id]: _dropped, ...rest } = this.#pointer.models;
        await this.#writePointer({ v: 1, models: rest });
        await this.#report({ id: `start-${id}`, state: 'failed', model: id, version: entry.version, reason: e instanceof DeployError ? e.reason : 'storage-error', detail: `installed version unusable, serving the model the daemon was given: ${(e as Error).message}` });
      }
    }
    return out;
  }

  /**
   * Marks the start of a transfer (persisted: a restart then knows a deployment was under way, and
   * with `transfer` resumes it). `resume` continues the one pendingTransfer() names.
   */
  async receiving(id: string, transfer?: TransferSpec, resume = false): Promise<void> {
    if (!(resume && this.#pending?.id === id)) this.#claim();
    this.#busy = true;
    this.#pending = undefined;
    this.#receiving = id;
    try {
      if (!resume) await this.#enter('receiving', { id, ...(transfer ? { transfer } : {}) });
    } catch (e) {
      this.#release();
      throw e;
    }
  }

  /** The largest bundle this device accepts (bytes): a deploy command announcing more is refused before any byte is stored. */
  get maxBundleBytes(): number {
    return this.o.limits.maxBytes;
  }

  /** Reports a deployment refused before it started (it claims nothing: one under way goes on). */
  refuse(id: string, reason: DeployReason, detail: string): Promise<DeployStatus> {
    return this.#report({ id, state: 'failed', reason, detail });
  }

  /** A transfer a restart interrupted, to be resumed (the device stays busy with it until then). */
  pendingTransfer(): { id: string; transfer: TransferSpec } | undefined {
    return this.#pending;
  }

  /** Reports how far a transfer got. */
  progress(id: string, transfer: NonNullable<DeployStatus['transfer']>): Promise<DeployStatus> {
    return this.#report({ id, state: 'receiving', transfer });
  }

  /** A transfer that failed (or was refused) before install(): back to idle, reported. */
  async abandon(id: string, reason: DeployReason, detail: string): Promise<DeployStatus> {
    await this.#enter('idle');
    this.#release();
    return this.#report({ id, state: 'failed', reason, detail });
  }

  /**
   * Verifies, stages, self-tests and activates a bundle. Resolves with the final status ('active'
   * or 'failed'); only storage failures of the state files themselves reject.
   */
  async install(bytes: Uint8Array, opts: InstallOptions): Promise<DeployStatus> {
    if (this.#receiving !== opts.id) this.#claim();
    const host = this.#requireHost();
    const timings: Record<string, number> = opts.transferMs !== undefined ? { transferMs: round(opts.transferMs) } : {};
    const base: { id: string; model?: string; version?: string; from?: string | null } = { id: opts.id };
    let staged = false;
    let placed: PlacedModel | undefined;
    try {
      let t = this.#clock.now();
      // Read first (in memory, nothing persisted): `verifying` is persisted naming the model and
      // version, so a restart during it reports what was interrupted and what still serves.
      const bundle: Bundle = await readBundle(bytes, this.o.limits);
      const m = bundle.manifest;
      Object.assign(base, { model: m.model.id, version: m.model.version, from: this.#pointer.models[m.model.id]?.version ?? null });
      await this.#enter('verifying', base);
      await this.#report({ ...base, state: 'verifying', timings });
      const signer = verifyBundle(bundle, this.o.trust, this.o.verify);
      checkFit(m, host, opts.allowDowngrade);
      const model = loadModel(bundle.parts[MODEL_PART], { source: `${m.model.id} ${m.model.version}`, maxBytes: this.o.limits.maxModelBytes });
      checkDescribes(m, model);
      // A kept version (a downgrade to it) is on disk already: its directory is used as it is.
      const kept = await this.#sameAsKept(m.model.id, m.model.version, bundle.manifestBytes);
      timings.verifyMs = round(this.#clock.now() - t);

      t = this.#clock.now();
      if (!kept) {
        staged = true;
        await this.#stage(m.model.id, m.model.version, bundle);
      }
      await this.#enter('staged', base);
      timings.stageMs = round(this.#clock.now() - t);
      await this.#report({ ...base, state: 'staged', signer, timings });

      t = this.#clock.now();
      await this.#enter('self-test', base);
      await this.#report({ ...base, state: 'self-test', signer, timings });
      placed = await host.place(m.model.id, model);
      const energyJ = await host.energyJ?.(m.model.id, model, placed);
      const figures = await selfTest(placed, m, bundle.parts[CANARY_INPUTS_PART], bundle.parts[CANARY_EXPECTED_PART], { clock: this.#clock, ...(energyJ !== undefined ? { energyJ } : {}) });
      timings.selfTestMs = round(this.#clock.now() - t);

      t = this.#clock.now();
      await this.#enter('switching', base);
      const previous = this.#pointer.models[m.model.id];
      await this.#writePointer({
        v: 1, models: { ...this.#pointer.models, [m.model.id]: { version: m.model.version, previous: previous ? [previous.version, ...previous.previous.filter((v) => v !== m.model.version)] : [] } },
      });
      await this.o.onPointerMoved?.(opts.id);
      await host.activate(m.model.id, model, placed, m.model.version);
      placed = undefined;
      timings.switchMs = round(this.#clock.now() - t);
      await this.#enter('idle');
      await this.#prune(m.model.id);
      return await this.#report({ ...base, state: 'active', signer, selfTest: figures, timings });
    } catch (e) {
      if (placed) await placed.dispose().catch(() => undefined);
      if (staged && !this.#isKept(base.model!, base.version!)) await this.#removeVersion(base.model!, base.version!).catch(() => undefined);
      await this.#enter('idle');
      const err = e instanceof DeployError ? e : new DeployError('storage-error', (e as Error).message);
      return await this.#report({ ...base, state: 'failed', reason: err.reason, detail: err.message, ...(err.figures ? { selfTest: err.figures as unknown as SelfTestFigures } : {}), timings });
    } finally {
      this.#release();
    }
  }

  /**
   * Switches a model back to its previous version (or to the model the daemon was started with,
   * when no earlier deployed version is kept). With one model deployed, `model` may be omitted.
   */
  async rollback(id: string, model?: string): Promise<DeployStatus> {
    this.#claim();
    const host = this.#requireHost();
    try {
      const deployed = Object.keys(this.#pointer.models);
      const target = model ?? (deployed.length === 1 ? deployed[0]! : undefined);
      if (target === undefined) throw new DeployError('no-previous-version', deployed.length ? `name the model to roll back (deployed: ${deployed.join(', ')})` : 'no model was deployed on this device');
      const entry = this.#pointer.models[target];
      if (!entry) throw new DeployError('no-previous-version', `model '${target}' serves the version the daemon was started with`);
      const to = entry.previous[0];
      const base = { id, model: target, version: to, from: entry.version };
      await this.#enter('switching', { id, model: target, ...(to ? { version: to } : {}), from: entry.version, rollback: true });
      let loaded: LoadedModel;
      if (to === undefined) {
        const b = host.baseModel(target);
        if (!b) throw new DeployError('no-previous-version', `no earlier version of '${target}' to go back to`);
        loaded = b;
      } else {
        const { parts } = await this.#readVersion(target, to);
        loaded = loadModel(parts[MODEL_PART], { source: `${target} ${to}`, maxBytes: this.o.limits.maxModelBytes });
      }
      const { [target]: _current, ...others } = this.#pointer.models;
      await this.#writePointer({ v: 1, models: to === undefined ? others : { ...others, [target]: { version: to, previous: entry.previous.slice(1) } } });
      await host.activate(target, loaded, undefined, to);
      await this.#removeVersion(target, entry.version);
      await this.#enter('idle');
      return await this.#report({ ...base, state: 'rolled-back', detail: `switched back from ${entry.version} to ${to ?? 'the model the daemon was started with'}` });
    } catch (e) {
      await this.#enter('idle');
      const err = e instanceof DeployError ? e : new DeployError('storage-error', (e as Error).message);
      await this.#report({ id, state: 'failed', reason: err.reason, detail: err.message });
      throw err;
    } finally {
      this.#release();
    }
  }

  // ---- internals --------------------------------------------------------------------------------

  #claim(): void {
    if (this.#busy && this.#pending) throw new DeployError('busy', `deployment ${this.#pending.id} waits to resume its transfer`);
    if (this.#busy) throw new DeployError('busy', 'another deployment is in progress on this device');
    this.#busy = true;
  }

  #release(): void {
    this.#busy = false;
    this.#receiving = undefined;
  }

  #requireHost(): DeployHost {
    if (!this.#host) throw new Error('the deployer is not attached to a device yet');
    return this.#host;
  }

  async #recover(): Promise<void> {
    const s = await readJson<PersistedState>(this.o.root, STATE_FILE, stateSchema, { v: 1, phase: 'idle' });
    if (s.phase === 'idle' || !s.deployment) return;
    const d = s.deployment;
    if (s.phase === 'receiving' && d.transfer) {
      // Nothing is staged yet: the transfer continues where the received bytes end.
      this.#pending = { id: d.id, transfer: d.transfer };
      this.#busy = true;
      return;
    }
    const serving = d.model !== undefined ? this.#pointer.models[d.model]?.version : undefined;
    if (d.rollback) {
      // The pointer decides; the version switched away from is removed once the pointer moved.
      if (serving !== d.from && d.from) await this.#removeVersion(d.model!, d.from);
      await this.#enter('idle');
      const moved = serving !== d.from;
      await this.#report({ id: d.id, model: d.model, version: serving, state: moved ? 'rolled-back' : 'failed', ...(moved ? {} : { reason: 'interrupted' as const }), detail: `the device restarted during a rollback; ${d.model} serves ${serving ?? 'the version it was started with'}` });
      return;
    }
    if (s.phase === 'switching' && d.model !== undefined && serving === d.version) {
      // The pointer was replaced before the crash: the new version is the one that serves.
      await this.#enter('idle');
      await this.#prune(d.model);
      await this.#report({ id: d.id, model: d.model, version: d.version, from: d.from, state: 'active', detail: 'the switch completed before a restart' });
      return;
    }
    // Before the pointer changed: the staged files go (unless they are a kept version), the old version serves.
    if (d.model !== undefined && d.version !== undefined && !this.#isKept(d.model, d.version)) await this.#removeVersion(d.model, d.version);
    await this.#enter('idle');
    await this.#report({ id: d.id, model: d.model, version: d.version, from: d.from, state: 'rolled-back', reason: 'interrupted', detail: `the device restarted during ${s.phase}; ${d.model ?? 'the model'} still serves ${serving ?? 'the version it was started with'}` });
  }

  async #enter(phase: DeployPhase | 'idle', deployment?: PersistedState['deployment']): Promise<void> {
    const state: PersistedState = { v: 1, phase, ...(phase !== 'idle' && deployment ? { deployment: { ...deployment } } : {}) };
    await this.o.root.writeAtomic(STATE_FILE, utf8.encode(JSON.stringify(state)));
    if (phase !== 'idle') await this.o.onPhase?.(phase, deployment?.id ?? '');
  }

  async #writePointer(p: Pointer): Promise<void> {
    await this.o.root.writeAtomic(POINTER_FILE, utf8.encode(`${JSON.stringify(p, null, 2)}\n`));
    this.#pointer = p;
  }

  /** Whether the pointer names this version of the model (active or kept to roll back to). */
  #isKept(model: string, version: string): boolean {
    const e = this.#pointer.models[model];
    return e !== undefined && (e.version === version || e.previous.includes(version));
  }

  /**
   * True when the version is kept on disk with exactly this signed manifest (so exactly these
   * parts). A version's contents never change: the same version with another manifest is refused,
   * and the active version is never installed over itself.
   */
  async #sameAsKept(model: string, version: string, manifestBytes: Uint8Array): Promise<boolean> {
    if (!this.#isKept(model, version)) return false;
    if (this.#pointer.models[model]!.version === version) throw new DeployError('downgrade', `version ${version} of '${model}' is already active`);
    const stored = await this.#version(model, version).read(MANIFEST_ENTRY);
    if (stored !== undefined && sha256Hex(stored) === sha256Hex(manifestBytes)) return true;
    throw new DeployError('version-conflict', `version ${version} of '${model}' is kept on this device with other contents; a version does not change: build a new version`);
  }

  async #stage(model: string, version: string, b: Bundle): Promise<void> {
    await this.#removeVersion(model, version);
    const s = this.#version(model, version);
    for (const name of PART_NAMES) await s.writeAtomic(name, b.parts[name]);
    if (b.signature) await s.writeAtomic(SIGNATURE_ENTRY, b.signature);
    // The manifest last: a directory with a manifest is complete.
    await s.writeAtomic(MANIFEST_ENTRY, b.manifestBytes);
  }

  /** An installed version's manifest and parts, re-checked against the manifest's hashes. */
  async #readVersion(id: string, version: string): Promise<{ manifest: Manifest; parts: Bundle['parts'] }> {
    const s = this.#version(id, version);
    const bytes = await s.read(MANIFEST_ENTRY);
    if (!bytes) throw new DeployError('storage-error', `version ${version} of '${id}' is not on disk`);
    const manifest = parseManifest(bytes);
    const parts = {} as Bundle['parts'];
    for (const name of PART_NAMES) {
      const b = await s.read(name);
      if (!b) throw new DeployError('storage-error', `version ${version} of '${id}' has no ${name}`);
      parts[name] = b;
    }
    verifyParts(manifest, parts);
    return { manifest, parts };
  }

  /** Keeps the active version and the `keep - 1` newest previous ones of a model; removes the rest. */
  async #prune(id: string): Promise<void> {
    const entry = this.#pointer.models[id];
    if (!entry) return;
    const kept = [entry.version, ...entry.previous.slice(0, Math.max(0, this.o.keep - 1))];
    if (kept.length - 1 < entry.previous.length) await this.#writePointer({ v: 1, models: { ...this.#pointer.models, [id]: { version: entry.version, previous: kept.slice(1) } } });
    const keepDirs = new Set(kept.map(versionDirName));
    const model = this.o.versions.tree(id);
    for (const dir of await model.list()) if (!keepDirs.has(dir)) await model.remove(dir);
  }

  /** An installed version's directory: versions/<model>/<version>. */
  #version(model: string, version: string): Storage {
    return this.o.versions.tree(model).open(versionDirName(version));
  }

  #removeVersion(model: string, version: string): Promise<void> {
    return this.o.versions.tree(model).remove(versionDirName(version));
  }

  /**
   * Moves versions installed under the earlier layout (`versions/<model>-<version>`, ambiguous when a
   * model id contains "-") into `versions/<model>/<version>`. Each old directory is recognised by
   * holding files (a model's directory holds only version directories) and named by its own
   * manifest; the versions the pointer names move, the rest (leftovers) go. Copied manifest last,
   * then removed: a crash in between copies again at the next start.
   */
  async #migrateLayout(): Promise<void> {
    for (const name of await this.o.versions.list()) {
      const old = this.o.versions.open(name);
      const files = await old.list();
      if (!files.length) continue;
      const bytes = files.includes(MANIFEST_ENTRY) ? await old.read(MANIFEST_ENTRY) : undefined;
      let manifest: Manifest | undefined;
      try {
        manifest = bytes && parseManifest(bytes);
      } catch {
        // a damaged leftover: nothing names it
      }
      if (manifest && this.#isKept(manifest.model.id, manifest.model.version)) {
        const to = this.#version(manifest.model.id, manifest.model.version);
        for (const f of files.filter((f) => f !== MANIFEST_ENTRY)) await to.writeAtomic(f, (await old.read(f))!);
        await to.writeAtomic(MANIFEST_ENTRY, bytes!);
      }
      await this.o.versions.remove(name);
    }
  }

  async #report(s: Omit<DeployStatus, 'active'>): Promise<DeployStatus> {
    const status: DeployStatus = { ...s, active: this.active } as DeployStatus;
    try {
      await this.o.report(status);
    } catch {
      // Reporting is best effort; the state on disk is the truth.
    }
    return status;
  }
}

const round = (ms: number): number => Math.round(ms * 100) / 100;
