// The dashboard page: connects to the broker over WebSocket with mqtt.js, feeds what devices
// publish into FleetState (decoded and de-duplicated by the runtime's own Listener) and renders
// the view the URL's hash names. Read-only until the user loads a signing key.
import mqtt from '/vendor/mqtt.js';
import { KEY_FILE_MAX_BYTES, Listener } from '/edgerun.js';
import { CommandSender } from './commands.js';
import { FleetState } from './fleet-state.js';
import { deviceView, detectionsView, eventsView, fleetView, reportView } from './views.js';

const config = await (await fetch('/config.json')).json();
const prefix = config.prefix;
// A released snapshot URL is revoked a little later: the view may still show it until the next render.
const state = new FleetState({ release: (url) => setTimeout(() => URL.revokeObjectURL(url), 5000) });
const listener = new Listener({ prefix });
const commands = new CommandSender(prefix);
const $ = (sel) => document.querySelector(sel);

const client = mqtt.connect(config.brokerWs, {
  protocolVersion: 4,   // MQTT 3.1.1: what every broker speaks, the embedded Aedes included
  clientId: `edgerun-dashboard-${Math.random().toString(16).slice(2, 10)}`,
  clean: true, reconnectPeriod: 2000, connectTimeout: 10_000,
});
const app = { state, commands, prefix, mqtt: client, flash };

const setConn = (cls, text) => { $('#conn').className = `conn ${cls}`; $('#conn-text').textContent = text; };
client.on('connect', () => {
  setConn('up', `broker ${config.brokerWs}`);
  const kinds = ['status', 'telemetry', 'results', 'events', 'detections', 'deploy/status'].map((k) => `${prefix}/+/+/${k}`);
  client.subscribe([...kinds, `${prefix}/+/+/snapshot/+`, `${prefix}/+/+/count/+`], { qos: 1 });
});
client.on('reconnect', () => setConn('retry', `reconnecting to ${config.brokerWs}…`));
client.on('offline', () => setConn('down', `broker ${config.brokerWs} unreachable`));
client.on('error', (e) => setConn('down', `broker: ${e.message}`));

const escapedPrefix = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const SNAPSHOT = new RegExp(`^${escapedPrefix}/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/snapshot/([A-Za-z0-9_.-]+)$`);
// A camera's objects of one label in view now: a plain integer, retained (edgerun detect).
const COUNT = new RegExp(`^${escapedPrefix}/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/count/([A-Za-z0-9_.-]+)$`);
client.on('message', (topic, payload, packet) => {
  const snap = SNAPSHOT.exec(topic);
  if (snap) {
    // Decoded first: its size places the boxes (they are in frame pixels, and `events` and
    // `detections` carry no frame size); a payload that is not an image is left out.
    const blob = new Blob([payload], { type: 'image/jpeg' });
    createImageBitmap(blob).then((bitmap) => {
      const size = { width: bitmap.width, height: bitmap.height };
      bitmap.close();
      state.snapshot(snap[1], snap[2], snap[3], URL.createObjectURL(blob), size);
    }, () => undefined);
    return;
  }
  const count = COUNT.exec(topic);
  if (count) {
    const text = new TextDecoder().decode(payload).trim();
    if (/^\d{1,9}$/.test(text)) state.inView(count[1], count[2], count[3], Number(text));
    return;
  }
  const o = listener.accept(topic, payload, { retained: packet.retain });
  if (o.status !== 'new' && o.status !== 'retained') return;
  const fleet = topic.slice(prefix.length + 1).split('/')[0];
  const body = state.apply(fleet, o.message.kind, o.message, o.status === 'retained');
  if (o.message.kind === 'events') commands.outcome(body);
});

// ---- signing key --------------------------------------------------------------------------------

function flash(text) {
  const el = $('#key-error');
  el.textContent = text;
  el.hidden = !text;
}
$('#key-load').addEventListener('click', () => $('#key-file').click());
$('#key-file').addEventListener('change', async (ev) => {
  const file = ev.target.files?.[0];
  ev.target.value = '';
  if (!file) return;
  try {
    // The cap every key file has (runtime/telemetry/keys.ts), checked before the file is read.
    if (file.size > KEY_FILE_MAX_BYTES) throw new Error(`${file.name}: ${file.size} bytes, more than the limit of ${KEY_FILE_MAX_BYTES} bytes for a key file`);
    commands.load(await file.text(), file.name);
    flash('');
  } catch (e) {
    flash(e.message);
  }
});
$('#key-forget').addEventListener('click', () => commands.forget());
commands.onChange(() => {
  const s = commands.signer;
  $('#key-state').innerHTML = s ? `signing as <b></b> <code></code>` : 'read-only';
  if (s) { $('#key-state b').textContent = s.name ?? 'key'; $('#key-state code').textContent = s.fingerprint; }
  $('#keybox').classList.toggle('armed', !!s);
  $('#key-forget').hidden = !s;
  $('#key-load').textContent = s ? 'Load another key…' : 'Load signing key…';
});

// ---- routing and rendering ----------------------------------------------------------------------

let view;
// A hand-edited or cut link may not decode: that part reads as absent (the fleet view).
const decode = (part) => { try { return decodeURIComponent(part); } catch { return undefined; } };
function route() {
  const [, page, fleet, id] = location.hash.replace(/^#\/?/, '/').split('/').map(decode);
  view?.unmount?.();
  view = page === 'device' && fleet && id ? deviceView(app, fleet, id) : page === 'events' ? eventsView(app) : page === 'detections' ? detectionsView(app) : page === 'report' ? reportView(app) : fleetView(app);
  const main = $('#main');
  view.mount(main);
  view.update();
  document.title = `${view.title} · edgerun`;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === (page || 'fleet')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}
window.addEventListener('hashchange', () => { route(); $('#main').focus({ preventScroll: true }); });
route();

// Devices publish at their own pace: render at most every 500 ms when something changed, and every
// 5 s anyway (ages and silent devices move on by themselves).
let lastRender = 0;
setInterval(() => {
  if (!state.changed && Date.now() - lastRender < 5000) return;
  state.changed = false;
  lastRender = Date.now();
  view.update();
}, 500);
