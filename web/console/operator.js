// The operator view (admin keys): GET /v1/status every two seconds, charts, adapters, tenants.
import { call } from './api.js';
import { lineChart } from './chart.js';

const $ = id => document.getElementById(id);
let timer = null;

function mb(b) { return (b / 1e6).toFixed(b < 1e7 ? 2 : 0) + ' MB'; }
function ms(s) { return s === null || s === undefined ? '-' : (s * 1000).toFixed(0) + ' ms'; }

function card(k, v, frac) {
  const c = document.createElement('div');
  c.className = 'card';
  const vv = document.createElement('div');
  vv.className = 'v';
  vv.textContent = v;
  const kk = document.createElement('div');
  kk.className = 'k';
  kk.textContent = k;
  c.append(vv, kk);
  if (frac !== undefined) {
    const m = document.createElement('div');
    m.className = 'meter';
    const f = document.createElement('div');
    f.style.width = Math.min(100, Math.max(0, frac * 100)).toFixed(1) + '%';
    m.append(f);
    c.append(m);
  }
  return c;
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text;
  row.append(td);
  return td;
}

function render(st) {
  const a = st.adapters, q = st.queue, kv = st.kv_pages, lat = st.latency, g = st.guard;
  const budget = a.budget_bytes > 0 ? ` of ${mb(a.budget_bytes)}` : ' (no limit)';
  $('cards').replaceChildren(
    card('adapters loaded', String(a.loaded)),
    card('adapter memory' + budget, mb(a.bytes), a.budget_bytes > 0 ? a.bytes / a.budget_bytes : undefined),
    card('cold starts · evictions', `${a.cold_starts} · ${a.evictions.lru + a.evictions.idle + a.evictions.unload}`),
    card('queued · running', `${q.waiting} · ${q.running}`),
    card('KV pages used', `${kv.used} / ${kv.total}`, kv.total ? kv.used / kv.total : 0),
    card(`latency p50 / p99 (last ${Math.round(lat.window_s)} s)`, `${ms(lat.p50)} / ${ms(lat.p99)}`),
    card('time to first token p50', ms(lat.ttft_p50)),
    card('guard pass · flagged · error', g.enabled ? `${g.pass} · ${g.flagged} · ${g.error}` : 'off'),
  );
  const s = st.series;
  const p = v => v === null ? null : v * 1000;
  $('charts').replaceChildren(
    lineChart('generated tokens/s', s.t, [{ name: 'now', color: '#2457c5', values: s.tokens_per_s }]),
    lineChart('requests', s.t, [{ name: 'queued', color: '#c55a24', values: s.queue },
                                { name: 'running', color: '#1e7d3a', values: s.running }]),
    lineChart('KV pages used', s.t, [{ name: 'now', color: '#7a3dc5', values: s.kv_used }]),
    lineChart('latency (10 s window)', s.t, [{ name: 'p50', color: '#2457c5', values: s.p50.map(p) },
                                             { name: 'p99', color: '#b3261e', values: s.p99.map(p) }], ' ms'),
  );
  const body = $('adapters').tBodies[0];
  body.replaceChildren(...a.list.map(ad => {
    const tr = document.createElement('tr');
    tr.dataset.name = ad.name;
    cell(tr, ad.name);
    cell(tr, ad.owner || 'shared');
    cell(tr, ad.state);
    cell(tr, ad.bytes ? mb(ad.bytes) : '-');
    cell(tr, String(ad.pins));
    cell(tr, ad.state === 'ready' ? ad.idle_s.toFixed(0) + ' s' : '-');
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'Unload';
    b.setAttribute('aria-label', `Unload ${ad.name}`);
    b.addEventListener('click', () => unload(ad.name));
    cell(tr, '').append(b);
    return tr;
  }));
  $('tenants').tBodies[0].replaceChildren(...st.tenants.map(t => {
    const tr = document.createElement('tr');
    cell(tr, t.name + (t.admin ? ' (admin)' : ''));
    cell(tr, String(t.requests));
    cell(tr, `${t.prompt_tokens} + ${t.generation_tokens}`);
    cell(tr, t.tpm ? `${t.tokens_last_minute} / ${t.tpm} tpm` : String(t.tokens_last_minute));
    cell(tr, [t.rps ? `${t.rps} rps` : null, t.tpm ? `${t.tpm} tpm` : null, `weight ${t.weight}`]
      .filter(Boolean).join(', '));
    return tr;
  }));
}

export async function refresh() {
  try {
    render(await call('GET', '/v1/status'));
    $('ops-error').hidden = true;
    return true;
  } catch (e) {
    $('ops-error').hidden = false;
    $('ops-error').textContent = e.message;
    return false;
  }
}

async function unload(name) {
  try {
    await call('DELETE', '/v1/adapters/' + encodeURIComponent(name));
    $('load-result').textContent = `unloaded ${name}`;
  } catch (e) {
    $('load-result').textContent = e.message;
  }
  await refresh();
}

export function initOperator(onChange) {
  $('load-form').addEventListener('submit', async ev => {
    ev.preventDefault();
    const name = $('load-name').value.trim();
    try {
      await call('POST', '/v1/adapters', { name, path: $('load-path').value.trim(), shared: $('load-shared').checked });
      $('load-result').textContent = `loaded ${name}`;
    } catch (e) {
      $('load-result').textContent = e.message;
    }
    await refresh();
    onChange();
  });
}

export function startPolling() { stopPolling(); timer = setInterval(refresh, 2000); return refresh(); }
export function stopPolling() { if (timer) clearInterval(timer); timer = null; }
