// The page's views. Each view builds its skeleton once (controls keep their focus and state) and
// refreshes only its data regions on update().
import { COLORS, sparkline } from './charts.js';
import { ago, clock, duration, esc, fixed, int, ms, pct, si } from './format.js';
import { DEVICES, deployment, silent, silentAfterMs } from './fleet-state.js';

const badge = (cls, text) => `<span class="badge ${esc(cls)}">${esc(text)}</span>`;
const onlineBadge = (d) => (silent(d) ? badge('warn', `silent ${duration((Date.now() - d.heardAt) / 1000)}`)
  : d.online === true ? badge('online', 'online') : d.online === false ? badge('offline', 'offline') : badge('unknown', 'no status'));
const deviceHref = (d) => `#/device/${encodeURIComponent(d.fleet)}/${encodeURIComponent(d.id)}`;
const stat = (label, value, sub = '') => `<div class="stat"><div class="label">${esc(label)}</div><div class="value">${value}</div>${sub ? `<div class="sub">${sub}</div>` : ''}</div>`;
const resultsPerSecond = (d) => (d.online && typeof d.throughput === 'number' ? d.throughput : undefined);

/**
 * Replaces a live region's markup. A keyboard user's focus inside it moves to the element with
 * the same data-focus key in the new markup (the lists re-render as messages arrive, and focus on
 * a removed element would fall back to the page's start).
 */
function render(el, html) {
  const focused = el.contains(document.activeElement) ? document.activeElement.dataset.focus : undefined;
  el.innerHTML = html;
  if (focused !== undefined) el.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus({ preventScroll: true });
}

/** Per model: where it runs now (the last result's backend, else the telemetry's) and the guard. */
function modelRows(d) {
  const t = d.telemetry ?? {};
  const ids = new Set([...(d.status?.models ?? []), ...Object.keys(t.models ?? {}), ...d.backends.keys()]);
  return [...ids].map((id) => {
    const m = t.models?.[id] ?? {};
    const b = d.backends.get(id)?.backend ?? (m.backend === 'analog' ? 'analog' : m.backend === 'digital' ? 'digital' : 'unknown');
    const g = t.guards?.[id];
    return { id, version: d.status?.modelVersions?.[id], backend: b, policy: m.policy, accelerator: m.accelerator?.state, guard: g?.state ?? 'off', agreement: g?.last?.agreement, reason: d.backends.get(id)?.reason, fallbacks: Object.values(m.fallbacks ?? {}).reduce((a, x) => a + x, 0) };
  });
}

// ---- fleet ------------------------------------------------------------------------------------

export function fleetView(app) {
  let root, cards, charts = new Map();
  return {
    title: 'Fleet',
    mount(main) {
      main.innerHTML = `<h1>Fleet</h1><section class="stats" id="fleet-stats" aria-label="Fleet figures"></section>
        <h2>Devices</h2><section class="cards" id="device-cards"></section>
        <h2>Latest events <a class="more" href="#/events">all events →</a></h2><ol class="log compact" id="fleet-events"></ol>`;
      root = main;
      cards = main.querySelector('#device-cards');
    },
    update() {
      const f = app.state.fleet();
      root.querySelector('#fleet-stats').innerHTML = [
        stat('Devices online', `${f.online} <span class="of">/ ${f.devices}</span>`, f.forgotten ? `<span data-field="forgotten">${int(f.forgotten)} more not kept</span> (the ${int(DEVICES)} heard last are)` : ''),
        stat('Throughput', `${fixed(f.throughput, 1)} <span class="unit">inf/s</span>`, `${int(f.results)} results received`),
        stat('Power', si(f.modelledW, 'W'), f.measuredW === undefined ? 'modelled (no sensor)' : `modelled · measured ${si(f.measuredW, 'W')}`),
        stat('Energy / inference', si(f.perInferenceJ, 'J'), 'modelled, fleet mean'),
        stat('Queued', int(f.queueDepth), `${int(f.dropped)} dropped · ${int(f.expired)} expired`),
        stat('Fallbacks', int(f.fallbacks), `models now: ${Object.entries(f.backends).map(([b, n]) => `${n} ${esc(b)}`).join(' · ') || '–'}`),
      ].join('');
      // Cards stay where they were created (sorted by key then), so the layout does not jump.
      const devices = [...app.state.devices.values()].sort((a, b) => a.key.localeCompare(b.key));
      if (!devices.length) cards.innerHTML = `<p class="empty">No device has reported yet. Devices appear here when they publish their status on <code>${esc(app.prefix)}/&lt;fleet&gt;/&lt;device&gt;/status</code>.</p>`;
      else cards.querySelector('.empty')?.remove();
      // A device the state no longer keeps (DEVICES) loses its card.
      for (const card of cards.querySelectorAll('[data-device]')) {
        if (app.state.devices.has(card.dataset.device)) continue;
        charts.get(card.dataset.device)?.destroy();
        charts.delete(card.dataset.device);
        card.remove();
      }
      for (const d of devices) {
        let card = cards.querySelector(`[data-device="${CSS.escape(d.key)}"]`);
        if (!card) {
          card = document.createElement('a');
          card.className = 'card device-card';
          card.dataset.device = d.key;
          card.href = deviceHref(d);
          card.innerHTML = '<div class="card-head"></div><div class="card-body"></div><div class="spark" aria-hidden="true"></div>';
          cards.append(card);
          charts.set(d.key, sparkline(card.querySelector('.spark'), { series: [{ label: 'inf/s', color: COLORS[0] }], height: 44, axes: false }));
        }
        card.classList.toggle('is-offline', d.online === false);
        card.dataset.silentAfterMs = String(silentAfterMs(d));  // how soon silence shows; 60 s until the period is known
        const t = d.telemetry ?? {};
        const p99 = Math.max(...Object.values(t.streams ?? {}).map((s) => s.serviceMs?.p99Ms ?? 0), 0);
        card.querySelector('.card-head').innerHTML = `<span class="name">${esc(d.id)}</span><span class="fleetname">${esc(d.fleet)}</span>${onlineBadge(d)}`;
        card.querySelector('.card-body').innerHTML = `
          <div class="models">${modelRows(d).map((m) => `<span class="model">${esc(m.id)}${m.version ? ` <span class="muted">${esc(m.version)}</span>` : ''} ${m.backend === 'unknown' ? '' : badge(m.backend, m.backend)}${m.guard !== 'off' && m.guard !== 'ok' ? badge('warn', `guard ${m.guard}`) : ''}</span>`).join('')}</div>
          <dl class="mini">
            <div><dt>results</dt><dd data-field="results">${int(d.results)}</dd></div>
            ${d.tracks.size ? `<div><dt>objects</dt><dd data-field="objects">${int([...d.labelCounts.values()].reduce((a, n) => a + n, 0))}</dd></div>` : ''}
            <div><dt>inf/s</dt><dd>${fixed(resultsPerSecond(d), 1)}</dd></div>
            <div><dt>p99</dt><dd>${p99 ? `${ms(p99)} ms` : '–'}</dd></div>
            <div><dt>power</dt><dd>${si(t.power?.measuredW ?? t.power?.modelledW, 'W')}</dd></div>
            ${t.power?.batteryPct !== undefined ? `<div><dt>battery</dt><dd>${pct(t.power.batteryPct)}</dd></div>` : ''}
          </dl>
          <div class="seen">${d.online === false ? `offline ${ago(d.statusTs)}` : `seen ${ago(d.lastSeen)}`}</div>`;
        charts.get(d.key).update(d.history.ts, [d.history.throughput]);
      }
      render(root.querySelector('#fleet-events'), eventItems(app.state.events.slice(-8).reverse()));
    },
    unmount() { for (const c of charts.values()) c.destroy(); charts = new Map(); },
  };
}

function eventItems(events) {
  return events.map((e) => `<li class="ev g-${esc(e.group)}" data-type="${esc(e.type)}"><time>${clock(e.ts)}</time><a class="dev" data-focus="ev-${e.n}" href="#/device/${encodeURIComponent(e.fleet)}/${encodeURIComponent(e.device)}">${esc(e.device)}</a><span class="type">${esc(e.type)}</span><span class="text">${esc(e.text)}</span></li>`).join('') || '<li class="empty">No events yet.</li>';
}

// ---- one device ---------------------------------------------------------------------------------

const COMMANDS_HTML = `
  <fieldset id="commands" class="commands">
    <legend>Commands</legend>
    <p class="hint" id="cmd-hint"></p>
    <form data-command="set-placement" class="cmd">
      <label>Placement of <select name="model" aria-label="model"></select></label>
      <select name="policy" aria-label="placement policy"><option>analog</option><option>digital</option><option>auto</option></select>
      <button type="submit">Set placement</button>
    </form>
    <form data-command="set-power-budget" class="cmd">
      <label>Power cap <input name="powerCapW" type="number" min="0" step="any" placeholder="watts" aria-label="power cap in watts"></label>
      <button type="submit">Set budget</button>
      <button type="submit" name="clear" value="1">Clear cap</button>
    </form>
    <form data-command="rollback" class="cmd">
      <label>Roll back <select name="rollbackModel" aria-label="model to roll back"></select></label>
      <button type="submit">Roll back</button>
    </form>
    <form data-command="stream" class="cmd">
      <label>Stream <select name="stream" aria-label="stream"></select></label>
      <button type="submit" name="name" value="pause-stream">Pause</button>
      <button type="submit" name="name" value="resume-stream">Resume</button>
    </form>
    <ol class="outcomes" id="cmd-outcomes" aria-live="polite"></ol>
  </fieldset>`;

export function deviceView(app, fleet, id) {
  let root, charts = [], latencyChart, latencyStreams = [], offCommands;
  const key = `${fleet}/${id}`;
  const device = () => app.state.devices.get(key);
  const fillSelect = (sel, options, all) => {
    const want = [...(all ? [['', all]] : []), ...options.map((o) => [o, o])];
    const have = [...sel.options].map((o) => o.value).join('\n');
    if (have === want.map(([v]) => v).join('\n')) return;
    const current = sel.value;
    sel.innerHTML = want.map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`).join('');
    if (want.some(([v]) => v === current)) sel.value = current;
  };
  return {
    title: id,
    mount(main) {
      root = main;
      main.innerHTML = `<p class="crumbs"><a href="#/">Fleet</a> / ${esc(fleet)}</p>
        <h1 class="device-title"><span>${esc(id)}</span> <span id="dev-badge"></span></h1>
        <p class="meta" id="dev-meta"></p>
        <section class="stats" id="dev-stats" aria-label="Device figures"></section>
        <section class="charts">
          <figure class="chart"><figcaption>Throughput (inferences/s)</figcaption><div id="ch-throughput"></div></figure>
          <figure class="chart"><figcaption>Service latency p50 / p99 per stream (ms)</figcaption><div id="ch-latency"></div></figure>
          <figure class="chart"><figcaption>Power (W, log scale)</figcaption><div id="ch-power"></div></figure>
        </section>
        <div class="columns">
          <section><h2>Models</h2><div class="table-wrap"><table id="dev-models"></table></div><p class="meta" id="dev-deploy"></p>
            <h2>Streams</h2><div class="table-wrap"><table id="dev-streams"></table></div>
            <h2>Energy per inference</h2><div id="dev-energy"></div>
            <h2>Power governor</h2><p id="dev-governor" class="meta"></p></section>
          <section>${COMMANDS_HTML}<h2>Events</h2><ol class="log compact" id="dev-events"></ol><div id="dev-detections"></div></section>
        </div>`;
      charts = [
        ['#ch-throughput', [{ label: 'inf/s', color: COLORS[0] }], '/s'],
        // Board power and modelled inference power lie orders of magnitude apart: a log scale shows both.
        ['#ch-power', [{ label: 'measured', color: COLORS[1] }, { label: 'modelled', color: COLORS[2] }], 'W', true],
      ].map(([sel, series, unit, log]) => ({ sel, chart: sparkline(main.querySelector(sel), { series, unit, log }) }));
      latency();
      for (const form of main.querySelectorAll('form.cmd')) form.addEventListener('submit', (ev) => { void submit(ev, form); });
      offCommands = app.commands.onChange(commands);
    },
    update,
    unmount() { offCommands?.(); for (const c of charts) c.chart.destroy(); latencyChart?.destroy(); },
  };

  /** The latency chart has two series per stream: rebuilt when the streams change. */
  function latency() {
    const names = Object.keys(device()?.history.streams ?? {});
    latencyStreams = names;
    latencyChart?.destroy();
    const el = root.querySelector('#ch-latency');
    el.innerHTML = '';
    latencyChart = sparkline(el, { unit: 'ms', series: names.flatMap((n, i) => [{ label: `${n} p50`, color: COLORS[i % COLORS.length] }, { label: `${n} p99`, color: COLORS[i % COLORS.length], dash: [4, 3] }]) });
  }

  async function submit(ev, form) {
    ev.preventDefault();
    const d = device();
    if (!d || !app.commands.signer) return;
    const data = new FormData(form);
    const submitter = ev.submitter;
    let name = form.dataset.command;
    let args;
    if (name === 'set-placement') args = { ...(data.get('model') ? { model: data.get('model') } : {}), policy: data.get('policy') };
    else if (name === 'set-power-budget') {
      const w = Number(data.get('powerCapW'));
      if (submitter?.name !== 'clear' && !(w > 0)) { app.flash('Power cap: give a number of watts above 0.'); return; }
      args = { powerCapW: submitter?.name === 'clear' ? null : w };
    } else if (name === 'rollback') {
      args = { model: data.get('rollbackModel') };
    } else {
      name = submitter?.value ?? 'pause-stream';
      args = { stream: data.get('stream') };
    }
    await app.commands.send(app.mqtt, d, name, args);
  }

  function commands() {
    const signer = app.commands.signer;
    const fs = root.querySelector('#commands');
    fs.disabled = !signer || device()?.online !== true;
    root.querySelector('#cmd-hint').textContent = !signer ? 'Read-only: load a signing key (the file `edgerun keys gen` writes) to send commands. The device must trust its public key.'
      : device()?.online !== true ? 'The device is offline.' : `Commands are signed with ${signer.name ?? 'the loaded key'} (${signer.fingerprint}).`;
    const mine = app.commands.sent.filter((s) => s.key === key).slice(-6).reverse();
    root.querySelector('#cmd-outcomes').innerHTML = mine.map((s) => `<li class="outcome ${esc(s.state)}" data-nonce="${esc(s.nonce)}"><time>${clock(s.ts)}</time> <b>${esc(s.name)}</b> <code>${esc(JSON.stringify(s.args))}</code> ${badge(s.state, s.state)} <span class="detail">${esc(s.detail)}</span></li>`).join('');
  }

  function update() {
    const d = device();
    if (!d) { root.querySelector('#dev-meta').textContent = 'This device has not reported (yet).'; return; }
    const t = d.telemetry ?? {};
    const s = d.status ?? {};
    const p = t.power ?? {};
    root.querySelector('#dev-badge').innerHTML = onlineBadge(d);
    root.querySelector('#dev-meta').innerHTML = [
      s.runtime && esc(s.runtime), s.pid && `pid ${esc(s.pid)}`, s.profile && `profile <b>${esc(s.profile)}</b>`,
      d.online ? `online since ${clock(d.since)}` : d.online === false ? `offline since ${clock(d.statusTs)}${s.reason ? ` (${esc(s.reason)})` : ''}` : '',
      t.uptimeS !== undefined && `up ${duration(t.uptimeS)}`, t.deviceAgeS !== undefined && `analog device age ${duration(t.deviceAgeS)}`,
    ].filter(Boolean).join(' · ');
    const e = p.energy;
    root.querySelector('#dev-stats').innerHTML = [
      stat('Throughput', `${fixed(resultsPerSecond(d), 1)} <span class="unit">inf/s</span>`),
      stat('Results', `<span data-field="results">${int(d.results)}</span>`, d.results ? `${pct((d.correct / d.results) * 100)} correct` : ''),
      stat('Power', si(p.measuredW ?? p.modelledW, 'W'), p.measuredW !== undefined ? `measured · modelled ${si(p.modelledW, 'W')}` : 'modelled (no sensor)'),
      stat('Energy / inference', si(e?.perInferenceJ, 'J'), e?.measuredToModelled !== undefined ? `modelled · board ÷ model ×${Number(e.measuredToModelled.toPrecision(3))}` : 'modelled'),
      stat('Battery', pct(p.batteryPct), p.celsius !== undefined ? `${fixed(p.celsius, 1)} °C` : p.sensor ? esc(p.sensor) : 'no battery'),
      stat('Queued', int(t.queueDepth), `${int(t.dropped)} dropped · ${int(t.expired)} expired · ${int(t.failed)} failed`),
    ].join('');

    const h = d.history;
    if (Object.keys(h.streams).join() !== latencyStreams.join()) latency();
    charts[0].chart.update(h.ts, [h.throughput]);
    charts[1].chart.update(h.ts, [h.measuredW, h.modelledW]);
    latencyChart.update(h.ts, latencyStreams.flatMap((n) => [h.streams[n].p50, h.streams[n].p99]));

    const models = modelRows(d);
    root.querySelector('#dev-models').innerHTML = `<thead><tr><th>model</th><th>version</th><th>runs on</th><th>policy</th><th>accelerator</th><th>guard</th><th class="n">fallbacks</th></tr></thead><tbody>${
      models.map((m) => `<tr data-model="${esc(m.id)}"><td>${esc(m.id)}</td><td>${esc(m.version ?? 'as started')}</td><td>${badge(m.backend, m.backend)}${m.reason ? ` <span class="muted">${esc(m.reason)}</span>` : ''}</td><td>${esc(m.policy ?? '–')}</td><td>${esc(m.accelerator ?? '–')}</td><td>${badge(m.guard === 'ok' ? 'ok' : m.guard === 'off' ? 'unknown' : 'warn', m.guard)}${m.agreement !== undefined ? ` <span class="muted">${pct(m.agreement * 100)} agree</span>` : ''}</td><td class="n">${int(m.fallbacks)}</td></tr>`).join('')}</tbody>`;
    root.querySelector('#dev-deploy').innerHTML = d.deploy ? `last deployment: ${esc(deployment(d.deploy))} <span class="muted">${clock(d.deploy.ts)}</span>` : '';
    const streams = Object.entries(t.streams ?? {});
    root.querySelector('#dev-streams').innerHTML = `<thead><tr><th>stream</th><th class="n">queue</th><th class="n">wait p50/p99</th><th class="n">service p50/p90/p99</th><th class="n">done</th><th class="n">dropped</th><th class="n">expired</th></tr></thead><tbody>${
      streams.map(([n, st]) => `<tr><td>${esc(n)}${st.paused ? ` ${badge('warn', 'paused')}` : ''}</td><td class="n">${int(st.depth)} / ${int(st.capacity)}</td><td class="n">${ms(st.waitMs?.p50Ms)} / ${ms(st.waitMs?.p99Ms)}</td><td class="n">${ms(st.serviceMs?.p50Ms)} / ${ms(st.serviceMs?.p90Ms)} / ${ms(st.serviceMs?.p99Ms)}</td><td class="n">${int(st.completed)}</td><td class="n">${int(st.dropped)}</td><td class="n">${int(st.expired)}</td></tr>`).join('')}</tbody>`;
    root.querySelector('#dev-energy').innerHTML = energyBar(e);
    const g = p.governor;
    root.querySelector('#dev-governor').innerHTML = g ? [
      g.enabled ? 'enabled' : 'disabled', g.reason && `state <b>${esc(g.reason)}</b>`, `allowed ${g.allowedW === null ? 'unlimited' : si(g.allowedW, 'W')}`, `planned ${si(g.plannedW, 'W')}`,
      g.adcBits !== undefined && `ADC ${esc(g.adcBits)} bits`, g.shed?.length && `shed ${esc(g.shed.join(', '))}`, g.paused && 'paused', `${int(g.decisions)} decisions`,
    ].filter(Boolean).join(' · ') : 'no governor reported';

    fillSelect(root.querySelector('select[name=model]'), models.map((m) => m.id), 'all models');
    fillSelect(root.querySelector('select[name=rollbackModel]'), models.map((m) => m.id));
    fillSelect(root.querySelector('select[name=stream]'), streams.map(([n]) => n));
    commands();
    render(root.querySelector('#dev-events'), eventItems(app.state.events.filter((ev) => ev.key === key).slice(-12).reverse()));
    root.querySelector('#dev-detections').innerHTML = d.tracks.size || d.detections.size || d.snapshots.size ? `<h2>Detections</h2>${detectionPanel(d)}` : '';
  }
}

const ENERGY_PARTS = [['analogMac', 'analog MAC'], ['dac', 'DAC'], ['adc', 'ADC'], ['digitalMac', 'digital MAC'], ['digitalOp', 'digital ops'], ['sram', 'SRAM'], ['dram', 'DRAM'], ['programming', 'programming']];

function energyBar(e) {
  if (!e?.inferences) return '<p class="muted">No inference accounted yet.</p>';
  const parts = ENERGY_PARTS.map(([k, label], i) => ({ label, j: (e.breakdownJ?.[k] ?? 0) / e.inferences, color: COLORS[i % COLORS.length] })).filter((p) => p.j > 0);
  const total = parts.reduce((a, p) => a + p.j, 0) || 1;
  return `<div class="energy" role="img" aria-label="energy per inference by part">${parts.map((p) => `<span style="flex-grow:${(p.j / total).toFixed(4)};background:${p.color}" title="${esc(p.label)} ${si(p.j, 'J')}"></span>`).join('')}</div>
    <ul class="legend">${parts.map((p) => `<li><i style="background:${p.color}"></i>${esc(p.label)} <b>${si(p.j, 'J')}</b> <span class="muted">${pct((p.j / total) * 100)}</span></li>`).join('')}</ul>
    <p class="muted">${si(e.perInferenceJ, 'J')} per inference (modelled) over ${int(e.inferences)} inferences · ${Object.entries(e.byModel ?? {}).map(([m, b]) => `${esc(m)} ${si(b.joules / Math.max(1, b.inferences), 'J')}`).join(' · ')}</p>`;
}

// ---- events -----------------------------------------------------------------------------------

const GROUPS = [['', 'all types'], ['backend', 'backend & placement'], ['command', 'commands'], ['deploy', 'deployments & rollbacks'], ['guard', 'accuracy guard'], ['governor', 'power governor'], ['stream', 'streams'], ['status', 'online / offline'], ['detection', 'detections'], ['other', 'other']];

export function eventsView(app) {
  let root;
  const filter = { group: '', device: '', text: '' };
  return {
    title: 'Events',
    mount(main) {
      root = main;
      main.innerHTML = `<h1>Events</h1>
        <form class="filters" role="search" aria-label="Filter events">
          <label>Type <select name="group">${GROUPS.map(([v, t]) => `<option value="${v}">${t}</option>`).join('')}</select></label>
          <label>Device <select name="device"><option value="">all devices</option></select></label>
          <label class="grow">Text <input name="text" type="search" placeholder="filter…"></label>
          <span class="count" id="ev-count" aria-live="polite"></span>
        </form>
        <div class="scroll" id="ev-scroll" tabindex="0" aria-label="Event log"><ol class="log" id="ev-list"></ol></div>`;
      const form = main.querySelector('form');
      form.addEventListener('input', () => { filter.group = form.group.value; filter.device = form.device.value; filter.text = form.text.value.trim().toLowerCase(); this.update(); });
      form.addEventListener('submit', (e) => e.preventDefault());
    },
    update() {
      const sel = root.querySelector('select[name=device]');
      const keys = [...app.state.devices.keys()].sort();
      if ([...sel.options].length - 1 !== keys.length) {
        const v = sel.value;
        sel.innerHTML = `<option value="">all devices</option>${keys.map((k) => `<option value="${esc(k)}">${esc(k)}</option>`).join('')}`;
        sel.value = v;
      }
      const shown = app.state.events.filter((e) => (!filter.group || e.group === filter.group) && (!filter.device || e.key === filter.device)
        && (!filter.text || `${e.device} ${e.type} ${e.text}`.toLowerCase().includes(filter.text)));
      root.querySelector('#ev-count').textContent = `${shown.length} of ${app.state.events.length}`;
      const scroll = root.querySelector('#ev-scroll');
      const atTop = scroll.scrollTop < 8;
      render(root.querySelector('#ev-list'), eventItems(shown.slice(-300).reverse()));
      if (atTop) scroll.scrollTop = 0;
    },
  };
}

// ---- detections (Frigate-shape events, per-frame detections, snapshots) -------------------------

function detectionPanel(d) {
  const cameras = new Set([...d.detections.keys(), ...[...d.tracks.values()].map((t) => t.camera ?? 'camera')]);
  const out = [];
  for (const cam of cameras) {
    const frame = d.detections.get(cam);
    const tracks = [...d.tracks.values()].filter((t) => (t.camera ?? 'camera') === cam).reverse();
    const active = tracks.filter((t) => !t.ended);
    const snap = [...d.snapshots.values()].at(-1);
    const objects = frame?.objects ?? active;
    const w = frame?.width ?? snap?.width ?? 1, h = frame?.height ?? snap?.height ?? 1;  // boxes in pixels of this size, or normalised
    const boxes = objects.filter((o) => Array.isArray(o.box) && o.box.length === 4 && o.box.every(Number.isFinite)).map((o, i) => {
      const [x1, y1, x2, y2] = o.box;
      const norm = Math.max(x1, y1, x2, y2) <= 1;
      const sx = norm ? 100 : 100 / w, sy = norm ? 100 : 100 / h;
      return `<div class="box" style="left:${x1 * sx}%;top:${y1 * sy}%;width:${(x2 - x1) * sx}%;height:${(y2 - y1) * sy}%;border-color:${COLORS[i % COLORS.length]}"><span>${esc(o.label)} ${typeof o.score === 'number' ? pct(o.score * 100) : ''}</span></div>`;
    }).join('');
    out.push(`<div class="camera"><h3>${esc(cam)} <span class="muted">${frame ? `frame ${clock(frame.ts)}` : ''}</span></h3>
      <div class="frame" style="aspect-ratio:${w > 1 && h > 1 ? `${w} / ${h}` : '1 / 1'}">${snap ? `<img src="${esc(snap.url)}" alt="latest snapshot">` : '<div class="noimg">no snapshot yet</div>'}${boxes}</div>
      <ul class="tracks">${tracks.slice(0, 12).map((t) => `<li class="${t.ended ? 'ended' : ''}">${d.snapshots.get(t.label) ? `<img src="${esc(d.snapshots.get(t.label).url)}" alt="${esc(t.label)} snapshot">` : ''}<b>${esc(t.label)}</b> ${esc(t.id)} ${badge(t.ended ? 'unknown' : 'online', t.ended ? 'ended' : t.type)} <span class="muted">${typeof t.top_score === 'number' ? `top ${pct(t.top_score * 100)}` : ''}</span></li>`).join('')}</ul></div>`);
  }
  const counts = [...d.labelCounts].map(([l, n]) => `${esc(l)} ${n}`).join(' · ');
  const inView = [...d.inView].map(([l, n]) => `${esc(l)} ${n}`).join(' · ');
  return `${counts ? `<p class="meta">objects seen: ${counts}</p>` : ''}${inView ? `<p class="meta" data-field="in-view">in view now: ${inView}</p>` : ''}<div class="cameras">${out.join('')}</div>`;
}

export function detectionsView(app) {
  let root;
  return {
    title: 'Detections',
    mount(main) {
      root = main;
      main.innerHTML = '<h1>Detections</h1><div id="det-all"></div>';
    },
    update() {
      const devices = [...app.state.devices.values()].filter((d) => d.tracks.size || d.detections.size || d.snapshots.size);
      render(root.querySelector('#det-all'), devices.map((d) => `<section class="det-device"><h2><a data-focus="${esc(d.key)}" href="${deviceHref(d)}">${esc(d.id)}</a> ${onlineBadge(d)}</h2>${detectionPanel(d)}</section>`).join('')
        || `<p class="empty">No detections yet: cameras publish tracked objects on <code>events</code> (<code>{type: new|update|end, before, after}</code>), per-frame boxes on <code>detections</code> and JPEG snapshots on <code>snapshot/&lt;label&gt;</code>.</p>`);
    },
  };
}

// ---- a fleet benchmark's JSON report, opened from a file ----------------------------------------

const MAX_REPORT_BYTES = 16 * 1024 * 1024;
const scalar = (v) => v === null || typeof v !== 'object';
const cell = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? int(v) : String(Number(v.toPrecision(4)))) : scalar(v) ? esc(v) : `<code>${esc(JSON.stringify(v).slice(0, 120))}</code>`);

const MAX_ITEMS = 500;       // rows or items of one array shown (a report of 100,000 devices stays readable and fast)
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const nestedJson = (v, depth) => (depth < 5 ? renderJson(v, depth + 1) : `<code>${esc(JSON.stringify(v).slice(0, 200))}</code>`);

/** Any JSON shown as it is shaped: scalars as figures, arrays of objects as tables, other arrays as lists, objects as sections. */
function renderJson(value, depth = 0) {
  if (scalar(value)) return `<p>${cell(value)}</p>`;
  if (Array.isArray(value)) {
    const shown = value.slice(0, MAX_ITEMS);
    const more = value.length > shown.length ? `<p class="muted">… ${int(value.length - shown.length)} more of ${int(value.length)} not shown</p>` : '';
    if (shown.every(scalar)) return `<p>${shown.map(cell).join(', ')}</p>${more}`;
    if (!shown.every(isObject)) return `<ol class="report-list">${shown.map((v) => `<li>${nestedJson(v, depth)}</li>`).join('')}</ol>${more}`;
    const cols = [...new Set(shown.flatMap((r) => Object.keys(r)))];
    return `<div class="table-wrap"><table><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${
      shown.map((r) => `<tr>${cols.map((c) => `<td class="${typeof r[c] === 'number' ? 'n' : ''}">${Object.hasOwn(r, c) ? cell(r[c]) : ''}</td>`).join('')}</tr>`).join('')}</tbody></table></div>${more}`;
  }
  const entries = Object.entries(value);
  const flat = entries.filter(([, v]) => scalar(v) || (Array.isArray(v) && v.length <= MAX_ITEMS && v.every(scalar)));
  const nested = entries.filter(([, v]) => !flat.some(([, f]) => f === v));
  const tag = `h${Math.min(6, depth + 2)}`;
  return `${flat.length ? `<dl class="kv">${flat.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${Array.isArray(v) ? v.map(cell).join(', ') : cell(v)}</dd></div>`).join('')}</dl>` : ''}${
    nested.map(([k, v]) => `<section class="report-part"><${tag}>${esc(k)}</${tag}>${nestedJson(v, depth)}</section>`).join('')}`;
}

export function reportView(app) {
  let root;
  return {
    title: 'Report',
    mount(main) {
      root = main;
      main.innerHTML = `<h1>Report</h1>
        <p class="meta">A fleet benchmark's JSON report (or any JSON file), read in this page only. <button type="button" id="report-open">Open a report…</button>
        <input type="file" id="report-file" accept=".json,application/json" class="visually-hidden" tabindex="-1" aria-hidden="true"></p>
        <p class="error" id="report-error" role="alert" hidden></p><div id="report-body">${app.report ? app.report.html : ''}</div>`;
      main.querySelector('#report-open').addEventListener('click', () => main.querySelector('#report-file').click());
      main.querySelector('#report-file').addEventListener('change', async (ev) => {
        const file = ev.target.files?.[0];
        ev.target.value = '';
        if (!file) return;
        const error = root.querySelector('#report-error');
        try {
          if (file.size > MAX_REPORT_BYTES) throw new Error(`${file.name}: ${int(file.size)} bytes, more than the ${int(MAX_REPORT_BYTES)} this page reads`);
          let json;
          try { json = JSON.parse(await file.text()); } catch (e) { throw new Error(`${file.name}: not valid JSON (${e.message})`); }
          app.report = { name: file.name, html: `<h2 class="report-name">${esc(file.name)}</h2>${renderJson(json)}` };
          root.querySelector('#report-body').innerHTML = app.report.html;
          error.hidden = true;
        } catch (e) {
          error.textContent = e.message;
          error.hidden = false;
        }
      });
    },
    update() {},
  };
}
