// braid console: the key, the model list, and which view shows.
import { call, getKey, setKey } from './api.js';
import { initPlayground, setModels } from './playground.js';
import { initOperator, startPolling, stopPolling } from './operator.js';

const $ = id => document.getElementById(id);

function show(view) {
  $('play').hidden = view !== 'play';
  $('ops').hidden = view !== 'ops';
  $('tab-play').setAttribute('aria-pressed', String(view === 'play'));
  $('tab-ops').setAttribute('aria-pressed', String(view === 'ops'));
  if (view === 'ops') startPolling(); else stopPolling();
}

// Lists this key's models; offers the operator view when /v1/status answers.
async function connect() {
  const status = $('key-status');
  status.classList.remove('error');
  try {
    const models = await call('GET', '/v1/models');
    const ids = models.data.map(m => m.id);
    setModels(ids);
    $('model-name').textContent = ids[0] || '';
    status.textContent = `${ids.length} model${ids.length === 1 ? '' : 's'}: ${ids.join(', ')}`;
  } catch (e) {
    setModels([]);
    status.textContent = e.message;
    status.classList.add('error');
    $('tab-ops').hidden = true;
    show('play');
    return;
  }
  let admin = false;
  try { await call('GET', '/v1/status'); admin = true; } catch { admin = false; }
  $('tab-ops').hidden = !admin;
  if (!admin) show('play');
}

function init() {
  $('api-key').value = getKey();
  $('key-form').addEventListener('submit', ev => {
    ev.preventDefault();
    setKey($('api-key').value.trim());
    connect();
  });
  $('key-forget').addEventListener('click', () => { setKey(''); $('api-key').value = ''; connect(); });
  $('tab-play').addEventListener('click', () => show('play'));
  $('tab-ops').addEventListener('click', () => show('ops'));
  initPlayground();
  initOperator(connect);
  connect();
}

init();
