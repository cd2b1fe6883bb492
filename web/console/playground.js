// The playground: one prompt to one model, or to two side by side, streamed.
import { stream } from './api.js';

const $ = id => document.getElementById(id);
let controllers = [];

export function setModels(ids) {
  for (const sel of [$('model-a'), $('model-b')]) {
    const keep = sel.value;
    sel.replaceChildren(...ids.map(id => new Option(id, id)));
    if (ids.includes(keep)) sel.value = keep;
  }
  if (ids.length > 1 && $('model-b').value === $('model-a').value) $('model-b').value = ids[1];
}

function num(id) {
  const v = $(id).value.trim();
  return v === '' ? undefined : Number(v);
}

// The request body for one model from the form.
function body(model) {
  const chat = $('mode').value === 'chat';
  const b = { model, temperature: num('temperature'), top_p: num('top-p'), max_tokens: num('max-tokens') };
  const stop = $('stop').value.replace(/\\n/g, '\n');
  if (stop) b.stop = stop;
  const prompt = $('prompt').value;
  if (chat) {
    b.messages = [];
    if ($('system').value.trim()) b.messages.push({ role: 'system', content: $('system').value });
    b.messages.push({ role: 'user', content: prompt });
  } else {
    b.prompt = prompt;
  }
  return [chat ? '/v1/chat/completions' : '/v1/completions', b];
}

function pane(model) {
  const box = document.createElement('article');
  box.className = 'answer';
  box.setAttribute('aria-busy', 'true');
  const h = document.createElement('h3');
  h.textContent = model;
  const pre = document.createElement('pre');
  pre.className = 'text';
  const verdict = document.createElement('div');
  verdict.hidden = true;
  const stats = document.createElement('div');
  stats.className = 'stats';
  stats.textContent = 'waiting…';
  const err = document.createElement('p');
  err.className = 'error';
  err.setAttribute('role', 'alert');
  err.hidden = true;
  box.append(h, pre, verdict, stats, err);
  return { box, pre, verdict, stats, err };
}

async function run(model, p) {
  const [path, b] = body(model);
  const ctl = new AbortController();
  controllers.push(ctl);
  const t0 = performance.now();
  let ttft = null, usage = null, finish = null;
  try {
    await stream(path, b, chunk => {
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices && chunk.choices[0];
      if (!c) return;
      const piece = c.text ?? (c.delta && c.delta.content) ?? '';
      if (piece) {
        if (ttft === null) ttft = performance.now() - t0;
        p.pre.textContent += piece;
      }
      if (c.finish_reason) finish = c.finish_reason;
      const g = chunk.braid_guard || c.braid_guard;
      if (g) {
        p.verdict.hidden = false;
        p.verdict.className = 'verdict ' + (g.flagged ? 'flagged' : 'pass');
        p.verdict.textContent = `PARDEN ${g.flagged ? 'flagged' : 'pass'}` +
          (g.score === null || g.score === undefined ? '' : ` · score ${Number(g.score).toFixed(3)}`) +
          (g.error ? ` · ${g.error}` : '');
      }
    }, ctl.signal);
    const total = performance.now() - t0;
    p.stats.textContent = [
      usage ? `${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens` : null,
      ttft === null ? 'no text' : `first token ${ttft.toFixed(0)} ms`,
      `total ${total.toFixed(0)} ms`,
      finish ? `finish: ${finish}` : null,
    ].filter(Boolean).join(' · ');
  } catch (e) {
    p.stats.textContent = '';
    p.err.hidden = false;
    p.err.textContent = e.name === 'AbortError' ? 'stopped' : e.message;
  } finally {
    p.box.setAttribute('aria-busy', 'false');
  }
}

async function send(ev) {
  if (ev) ev.preventDefault();
  if (!$('prompt').value.trim() || $('send').disabled) return;
  const models = [$('model-a').value];
  if ($('side').checked) models.push($('model-b').value);
  const panes = models.map(pane);
  $('answers').replaceChildren(...panes.map(p => p.box));
  $('send').disabled = true;
  $('stop-btn').disabled = false;
  controllers = [];
  await Promise.all(models.map((m, i) => run(m, panes[i])));
  $('send').disabled = false;
  $('stop-btn').disabled = true;
}

export function initPlayground() {
  $('play-form').addEventListener('submit', send);
  $('prompt').addEventListener('keydown', ev => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) send(ev);
  });
  $('side').addEventListener('change', () => { $('model-b').disabled = !$('side').checked; });
  $('mode').addEventListener('change', () => { $('system-row').hidden = $('mode').value !== 'chat'; });
  $('stop-btn').addEventListener('click', () => controllers.forEach(c => c.abort()));
}
