/**
 * Frames from anything ffmpeg reads — a video file, an RTSP/HTTP stream, a V4L2 camera
 * (/dev/video0) — decoded by a spawned `ffmpeg` (Debian package ffmpeg) into raw grey or RGB frames
 * on a pipe, already scaled (and resampled in time) to what the model takes, as Frigate runs its
 * cameras. When ffmpeg exits unexpectedly or stalls (no frame for `stallMs`), the source reports an
 * error, and restarts it with exponential backoff (reset by the next frame that arrives).
 *
 *   const src = new FfmpegSource({ input: 'rtsp://cam.local/stream', width: 96, height: 96, fps: 5 });
 *   await src.start(sink);   // sink.frame(...) per decoded frame, sink.error(...) per drop or restart
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Frame, FrameSink, FrameSource } from '../../runtime/pipeline/frame.js';

export interface FfmpegSourceOptions {
  /** A file path, an rtsp:// / http(s):// URL, or a V4L2 device such as /dev/video0. */
  input: string;
  width: number;
  height: number;
  channels?: 1 | 3;
  /** Output frame rate (ffmpeg's fps filter); undefined keeps the input's. */
  fps?: number;
  /** Play files at their own frame rate (-re), as a camera would deliver them. Default true. */
  realtime?: boolean;
  /** Start a file again when it ends. Default false: the source ends. */
  loop?: boolean;
  /** No frame for this long: ffmpeg is killed and restarted. */
  stallMs?: number;
  /** The first frame of each run may take this long (ffmpeg probes a stream for up to 5 s before decoding). */
  startupMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** The ffmpeg executable. */
  ffmpeg?: string;
}

type Ffmpeg = ChildProcessByStdio<null, Readable, Readable>;

export class FfmpegSource implements FrameSource {
  readonly description: string;
  readonly #o: Required<Omit<FfmpegSourceOptions, 'fps'>> & { fps?: number };
  #proc: Ffmpeg | undefined;
  #sink: FrameSink | undefined;
  #stopped = false;
  #backoffMs: number;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #stallTimer: ReturnType<typeof setTimeout> | undefined;
  #frames = 0;
  /** ffmpeg processes started (the first and every restart). */
  starts = 0;

  constructor(o: FfmpegSourceOptions) {
    this.#o = { channels: 1, realtime: true, loop: false, stallMs: 5000, startupMs: 15_000, backoffInitialMs: 250, backoffMaxMs: 10_000, ffmpeg: 'ffmpeg', ...o };
    if (!(Number.isInteger(o.width) && o.width > 0 && Number.isInteger(o.height) && o.height > 0)) throw new Error(`ffmpeg source: frame size ${o.width}×${o.height}`);
    if (o.fps !== undefined && !(o.fps > 0)) throw new Error(`ffmpeg source: fps must be > 0 (got ${o.fps})`);
    this.#backoffMs = this.#o.backoffInitialMs;
    this.description = `ffmpeg:${o.input}`;
  }

  /** The running ffmpeg's pid (chaos tests kill it). */
  get pid(): number | undefined { return this.#proc?.pid; }

  async start(sink: FrameSink): Promise<void> {
    this.#sink = sink;
    this.#stopped = false;
    this.#spawn();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#stallTimer);
    const proc = this.#proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  #args(): string[] {
    const { input, width, height, channels, fps, realtime } = this.#o;
    const live = /^(rtsp|rtmp|http|https|udp|tcp|srt):/i.test(input) || input.startsWith('/dev/');
    const inputArgs = input.startsWith('/dev/video') ? ['-f', 'v4l2'] : /^rtsp:/i.test(input) ? ['-rtsp_transport', 'tcp'] : [];
    const filters = [...(fps !== undefined ? [`fps=${fps}`] : []), `scale=${width}:${height}`];
    return [
      '-hide_banner', '-loglevel', 'error', '-nostdin',
      ...(realtime && !live ? ['-re'] : []), ...inputArgs, '-i', input,
      '-an', '-vf', filters.join(','), '-f', 'rawvideo', '-pix_fmt', channels === 1 ? 'gray' : 'rgb24', 'pipe:1',
    ];
  }

  #spawn(): void {
    const { width, height, channels } = this.#o;
    const frameBytes = width * height * channels;
    const proc: Ffmpeg = spawn(this.#o.ffmpeg, this.#args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    this.starts++;
    let pending: Buffer = Buffer.alloc(0);
    let stderr = '';
    this.#armStall(Math.max(this.#o.stallMs, this.#o.startupMs));
    proc.stdout.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= frameBytes) {
        const pixels = new Uint8Array(pending.subarray(0, frameBytes));
        pending = pending.subarray(frameBytes);
        this.#backoffMs = this.#o.backoffInitialMs;
        this.#armStall(this.#o.stallMs);
        const frame: Frame = { t: Date.now(), width, height, channels, pixels, origin: `${this.description} frame ${this.#frames++}` };
        this.#sink?.frame(frame);
      }
    });
    proc.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000); });
    proc.on('error', (e) => this.#sink?.error(new Error(`${this.description}: cannot run ${this.#o.ffmpeg}: ${e.message}`)));
    proc.on('close', (code, signal) => {
      clearTimeout(this.#stallTimer);
      if (this.#proc === proc) this.#proc = undefined;
      if (this.#stopped) return;
      if (pending.length) this.#sink?.error(new Error(`${this.description}: incomplete last frame dropped (${pending.length} of ${frameBytes} bytes)`));
      if (code === 0 && !this.#o.loop) {
        this.#sink?.end();
        return;
      }
      if (code !== 0) {
        const why = signal ? `killed by ${signal}` : `exited with code ${code}`;
        const detail = stderr.trim().split('\n').pop();
        this.#sink?.error(new Error(`${this.description}: ffmpeg ${why}${detail ? `: ${detail}` : ''}; restarting in ${this.#backoffMs} ms`));
      }
      this.#restartTimer = setTimeout(() => { if (!this.#stopped) this.#spawn(); }, code === 0 ? 0 : this.#backoffMs);
      if (code !== 0) this.#backoffMs = Math.min(this.#backoffMs * 2, this.#o.backoffMaxMs);
    });
  }

  /** A stream that stops delivering (a camera that hangs, a dead network path) is restarted. */
  #armStall(ms: number): void {
    clearTimeout(this.#stallTimer);
    this.#stallTimer = setTimeout(() => {
      const proc = this.#proc;
      if (!proc || this.#stopped) return;
      this.#sink?.error(new Error(`${this.description}: no frame for ${ms} ms (stalled); restarting ffmpeg`));
      proc.kill('SIGKILL');
    }, ms);
    this.#stallTimer.unref?.();
  }
}
