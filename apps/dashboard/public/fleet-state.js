// What the page knows about the fleet, built only from what devices publish (the MQTT contract of
// runtime/telemetry/topics.ts): status birth/will, telemetry, results, events, detections and
// snapshots. Every body is typed first (readBody, apps/dashboard/bodies.ts): what is kept here has
// the shape the views expect, whatever a publisher sent. No DOM here: views.js renders it.
import { readBody } from '/edgerun.js';

const HISTORY = 180;          // telemetry points kept per device for the sparklines
const EVENT_LOG = 1000;       // events kept for the log
const TRACKS = 200;           // tracked objects kept per device
const NAMES = 64;             // labels, cameras and models kept per device: a publisher of ever new names cannot grow the page without end
export const DEVICES = 1000;  // devices kept, the most recently heard: a flood of invented device ids cannot grow the page without end

/** Sets `key` in `map` as its newest entry, keeping at most `max` (the oldest go); returns the values that went. */
function keep(map, key, value, max) {
  map.delete(key);
  map.set(key, value);
  const gone = [];
  for (const [k, v] of map) {
    if (map.size <= max) break;
    map.delete(k);
    gone.push(v);
  }
  return gone;
}

/** The backend a result ran on, as the page names it. */
const backendClass = (b) => (b === 'digital-fallback' ? 'fallback' : b === 'analog' ? 'analog' : b === 'digital' ? 'digital' : 'unknown');

/** Groups of event types for the log's filter. */
function eventGroup(type) {
  if (type === 'fallback' || type === 'backend' || type === 'placement') return 'backend';
  if (type === 'command-result' || type === 'command-rejected') return 'command';
  if (type === 'new' || type === 'update' || type === 'end') return 'detection';
  if (type === 'deploy') return 'deploy';
  if (type === 'guard' || type === 'governor' || type === 'stream' || type === 'status') return type;
  return 'other';
}

export class FleetState {
  devices = new Map();   // key "fleet/device" → DeviceState, the most recently heard last
  forgotten = 0;         // devices dropped for newer ones (DEVICES)
  events = [];           // newest last
  changed = true;
  #eventSeq = 0;
  #release;

  /** `release(url)`: a snapshot's blob: URL no longer kept (replaced, or its device forgotten). */
  constructor({ release = () => undefined } = {}) {
    this.#release = release;
  }

  /** The device's state, created when new, and made the most recently heard. */
  device(fleet, id) {
    const key = `${fleet}/${id}`;
    let d = this.devices.get(key);
    if (d) {
      this.devices.delete(key);
      this.devices.set(key, d);
    } else {
      d = {
        key, fleet, id, online: undefined, status: undefined, since: undefined, lastSeen: undefined, heardAt: undefined,
        telemetry: undefined, telemetryTs: undefined, history: newHistory(),
        // Keyed by names devices choose: no prototype, so "__proto__" is a name like any other.
        results: 0, correct: 0, backends: new Map(),  // model → where its latest result ran
        detections: new Map(), tracks: new Map(), snapshots: new Map(), labelCounts: new Map(), inView: new Map(),
      };
      for (const gone of keep(this.devices, key, d, DEVICES)) {
        this.forgotten++;
        for (const s of gone.snapshots.values()) this.#release(s.url);
      }
    }
    return d;
  }

  /** A decoded message of an edgerun topic (runtime Listener outcome 'new' or 'retained'); returns its typed body. */
  apply(fleet, kind, message, retained = false) {
    const d = this.device(fleet, message.device);
    const body = readBody(kind, message.body);
    d.lastSeen = Math.max(d.lastSeen ?? 0, message.ts);
    if (!retained) d.heardAt = Date.now();
    this.changed = true;
    switch (kind) {
      case 'status': this.#status(d, message, body, retained); break;
      case 'telemetry': this.#telemetry(d, message, body); break;
      case 'results': this.#result(d, message, body); break;
      case 'events': this.#event(d, message, body); break;
      case 'detections': this.#detections(d, message, body); break;
      case 'deploy/status': if (!(d.deploy?.ts > message.ts)) d.deploy = { ...body, ts: message.ts }; break;
    }
    return body;
  }

  #status(d, m, body, retained) {
    // Ordered by arrival (a will's seq and ts are older than the birth it follows, reporter.ts):
    // the broker's retained copy only fills in what no live message told yet.
    if (retained && d.status) return;
    const online = body.state === 'online';
    const changed = d.online !== online;
    d.online = online;
    d.status = body;
    d.statusTs = retained ? m.ts : Date.now();  // a will carries the time of the connect it was set at
    if (online) d.since = m.ts;
    if (changed && !retained) this.#log(d, d.statusTs, 'status', online ? 'online' : `offline (${body.reason ?? 'no reason'})`, body);
  }

  #telemetry(d, m, t) {
    if (d.telemetryTs !== undefined && m.ts <= d.telemetryTs) return;
    const prev = d.telemetry;
    const h = d.history;
    const dt = prev ? (m.ts - d.telemetryTs) / 1000 : 0;
    const throughput = prev && dt > 0 && t.completed >= prev.completed ? (t.completed - prev.completed) / dt : null;
    h.ts.push(m.ts / 1000);
    h.throughput.push(throughput);
    for (const [name, s] of Object.entries(t.streams ?? {})) {
      const series = h.streams[name] ?? (h.streams[name] = { p50: new Array(h.ts.length - 1).fill(null), p99: new Array(h.ts.length - 1).fill(null) });
      series.p50.push(s.serviceMs?.p50Ms ?? null);
      series.p99.push(s.serviceMs?.p99Ms ?? null);
    }
    for (const [name, series] of Object.entries(h.streams)) {
      if (series.p50.length < h.ts.length) { series.p50.push(null); series.p99.push(null); }
      if (!(name in (t.streams ?? {})) && series.p50.every((x) => x === null)) delete h.streams[name];
    }
    h.measuredW.push(t.power?.measuredW ?? null);
    h.modelledW.push(t.power?.modelledW ?? null);
    if (h.ts.length > HISTORY) {
      h.ts.shift(); h.throughput.shift(); h.measuredW.shift(); h.modelledW.shift();
      for (const s of Object.values(h.streams)) { s.p50.shift(); s.p99.shift(); }
    }
    d.telemetry = t;
    d.telemetryTs = m.ts;
    d.throughput = throughput ?? d.throughput;
  }

  #result(d, m, r) {
    d.results++;
    if (r.correct) d.correct++;
    if (r.model !== undefined) keep(d.backends, r.model, { backend: backendClass(r.backend), reason: r.fallbackReason, ts: m.ts }, NAMES);
  }

  #event(d, m, e) {
    const type = String(e.type ?? 'event');
    if (type === 'new' || type === 'update' || type === 'end') this.#track(d, m, e);
    this.#log(d, m.ts, type, describeEvent(e), e);
  }

  /** Frigate-shape tracked object events: {type: new|update|end, before, after}. */
  #track(d, m, e) {
    const after = e.after ?? e.before ?? {};
    const id = String(after.id ?? e.before?.id ?? `${m.seq}`);
    d.tracks.set(id, { ...after, id, type: e.type, ts: m.ts, ended: e.type === 'end' });
    if (d.tracks.size > TRACKS) d.tracks.delete(d.tracks.keys().next().value);
    if (e.type === 'new' && after.label !== undefined) keep(d.labelCounts, after.label, (d.labelCounts.get(after.label) ?? 0) + 1, NAMES);
  }

  /** Per-frame detections: {camera?, width?, height?, detections: [{label, score, box}]}. */
  #detections(d, m, body) {
    const camera = String(body.camera ?? 'camera');
    const list = Array.isArray(body.detections) ? body.detections : Array.isArray(body.objects) ? body.objects : [];
    const size = (v) => (Number.isFinite(v) && v > 0 ? v : undefined);  // drawn into a style attribute: numbers only
    keep(d.detections, camera, { ts: m.ts, width: size(body.width), height: size(body.height), objects: list }, NAMES);
  }

  /** Objects of a label in view now, from <root>/count/<label>. */
  inView(fleet, id, label, n) {
    keep(this.device(fleet, id).inView, label, n, NAMES);
    this.changed = true;
  }

  /** A decoded JPEG on <root>/snapshot/<label>; the caller made `url` (a blob: URL), released when replaced or dropped. */
  snapshot(fleet, id, label, url, { width, height }) {
    const d = this.device(fleet, id);
    const old = d.snapshots.get(label);
    const gone = keep(d.snapshots, label, { url, width, height, ts: Date.now() }, NAMES);  // the newest snapshot is the map's last
    this.changed = true;
    for (const s of [old, ...gone]) if (s) this.#release(s.url);
  }

  #log(d, ts, type, text, body) {
    this.events.push({ n: ++this.#eventSeq, ts, device: d.id, fleet: d.fleet, key: d.key, type, group: eventGroup(type), text, body });
    if (this.events.length > EVENT_LOG) this.events.shift();
  }

  /** Aggregate figures over every device. */
  fleet() {
    const all = [...this.devices.values()];
    const sum = (f) => all.reduce((a, d) => a + (f(d) ?? 0), 0);
    const withEnergy = all.filter((d) => d.telemetry?.power?.energy?.inferences > 0);
    const inferences = withEnergy.reduce((a, d) => a + d.telemetry.power.energy.inferences, 0);
    const measured = all.filter((d) => d.online && typeof d.telemetry?.power?.measuredW === 'number');
    return {
      devices: all.length,
      forgotten: this.forgotten,
      online: all.filter((d) => d.online).length,
      throughput: sum((d) => (d.online ? d.throughput : 0)),
      results: sum((d) => d.results),
      queueDepth: sum((d) => (d.online ? d.telemetry?.queueDepth : 0)),
      dropped: sum((d) => d.telemetry?.dropped),
      expired: sum((d) => d.telemetry?.expired),
      fallbacks: sum((d) => d.telemetry?.fallbacks),
      modelledW: sum((d) => (d.online ? d.telemetry?.power?.modelledW : 0)),
      measuredW: measured.length ? measured.reduce((a, d) => a + d.telemetry.power.measuredW, 0) : undefined,
      perInferenceJ: inferences ? withEnergy.reduce((a, d) => a + d.telemetry.power.energy.totalJ, 0) / inferences : undefined,
      backends: all.flatMap((d) => [...d.backends.values()]).reduce((a, b) => ({ ...a, [b.backend]: (a[b.backend] ?? 0) + 1 }), {}),
    };
  }
}

/**
 * How long an online device may stay quiet before the page calls it silent: three telemetry
 * periods (the median gap of the last ten), at least 5 s; 60 s while the period is not known yet
 * (fewer than two telemetry messages heard since the page loaded).
 */
export function silentAfterMs(d) {
  const gaps = d.history.ts.slice(-11).map((t, i, a) => (i ? (t - a[i - 1]) * 1000 : NaN)).slice(1).sort((x, y) => x - y);
  return gaps.length ? Math.max(5_000, 3 * gaps[gaps.length >> 1]) : 60_000;
}

/**
 * Online by its status, yet nothing heard for silentAfterMs: a hung process whose connection the
 * broker has not yet given up on (it waits 1.5 keep-alive periods before publishing the will), or a
 * half-open link.
 */
export function silent(d, now = Date.now()) {
  if (d.online !== true || d.heardAt === undefined) return false;
  return now - d.heardAt > silentAfterMs(d);
}

const newHistory = () => ({ ts: [], throughput: [], measuredW: [], modelledW: [], streams: Object.create(null) });

/** Any value of a body as text for the log. */
const j = (v) => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

/** A deployment step (deploy/status, or its `deploy` event) in words: "cnn 1.1.0 active (was 1.0.0)". */
export function deployment(s) {
  const t = s.transfer;
  return [
    `${j(s.model) || 'model'} ${j(s.version)}`.trim(), j(s.state),
    s.state === 'receiving' && typeof t?.received === 'number' && t.size > 0 ? `${Math.floor((100 * t.received) / t.size)} %` : '',
    s.from !== undefined ? `(was ${j(s.from) || 'the model it started with'})` : '',
    s.reason ? `— ${j(s.reason)}${s.detail ? `: ${j(s.detail)}` : ''}` : s.detail ? `— ${j(s.detail)}` : '',
  ].filter(Boolean).join(' ');
}

/** One line for the event log, from the event bodies apps/edgerun/device and commands.ts publish. */
function describeEvent(e) {
  switch (e.type) {
    case 'fallback': return `${j(e.model)} fell back to digital${e.reason ? `: ${j(e.reason)}` : ''}`;
    case 'backend': return `${j(e.model)} now runs on ${j(e.to)} (was ${j(e.from) || 'nothing'})`;
    case 'placement': return `${j(e.model)} placed ${j(e.policy)}: ${j(e.from)} → ${j(e.to)}`;
    case 'stream': return `stream ${j(e.stream)} ${j(e.state)}`;
    case 'governor': return `governor ${j(e.event)}${e.direction ? ` ${j(e.direction)}` : ''}${e.action ? `: ${j(e.action)}` : ''}${e.reason ? ` (${j(e.reason)})` : ''}${e.error ? `: ${j(e.error)}` : ''}`;
    case 'guard': return `guard ${j(e.model)} ${j(e.step)}${e.before?.agreement !== undefined && e.after?.agreement !== undefined ? `: agreement ${(e.before.agreement * 100).toFixed(1)} → ${(e.after.agreement * 100).toFixed(1)} %` : ''}${e.restored === false ? ' (not restored)' : ''}`;
    case 'command-result': return `command ${j(e.command)} ${e.ok ? 'ok' : `failed: ${j(e.error)}`}${e.signer?.name ? ` (signed by ${j(e.signer.name)})` : ''}`;
    case 'command-rejected': return `command ${j(e.command) || '?'} rejected: ${j(e.reason)} — ${j(e.detail)}`;
    case 'deploy': return `${deployment(e)} (deployment ${j(e.id)})`;
    case 'new': case 'update': case 'end': {
      const o = e.after ?? e.before ?? {};
      return `${e.type === 'new' ? 'new' : e.type === 'end' ? 'ended' : 'updated'} ${j(o.label)} ${j(o.id)}${o.camera ? ` on ${j(o.camera)}` : ''}${typeof o.score === 'number' ? ` (${(o.score * 100).toFixed(0)} %)` : ''}`;
    }
    default: {
      const { type, ...rest } = e;
      return `${j(type)} ${JSON.stringify(rest).slice(0, 160)}`;
    }
  }
}
