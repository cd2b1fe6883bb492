// The official `openai` npm client against a running braid serve (started by
// tests/test_serve_http.c or scripts/demo.sh).  Usage:
//   node tests/serve/openai_client.cjs BASE_URL KEY BASE_MODEL ADAPTER
// Prints one line per check and exits 1 when any failed.
'use strict';
const path = require('path');
const root = path.resolve(__dirname, '..', '..');
const OpenAI = require(path.join(root, '.npm-local', 'node_modules', 'openai'));

const [baseURL, apiKey, baseModel, adapter] = process.argv.slice(2);
let passed = 0, failed = 0;
function check(ok, what) {
  if (ok) passed++;
  else { failed++; console.log('FAIL ' + what); }
}

async function main() {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  check(ids.includes(baseModel) && ids.includes(adapter), `models.list has ${baseModel} and ${adapter}: ${ids}`);

  for (const model of [baseModel, adapter]) {
    const params = { model, prompt: 'This License', max_tokens: 12, temperature: 0 };
    const r = await client.completions.create(params);
    check(r.object === 'text_completion' && typeof r.choices[0].text === 'string', `${model}: completion shape`);
    check(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12, `${model}: usage ${JSON.stringify(r.usage)}`);
    check(['stop', 'length'].includes(r.choices[0].finish_reason), `${model}: finish_reason ${r.choices[0].finish_reason}`);
    let streamed = '', last = null, chunks = 0;
    const stream = await client.completions.create({ ...params, stream: true });
    for await (const c of stream) {
      chunks++;
      streamed += c.choices[0].text;
      if (c.choices[0].finish_reason) last = c.choices[0].finish_reason;
    }
    check(streamed === r.choices[0].text, `${model}: streamed text equals the non-streamed text ` +
      `(${JSON.stringify(streamed)} vs ${JSON.stringify(r.choices[0].text)})`);
    check(chunks >= 2 && last === r.choices[0].finish_reason, `${model}: ${chunks} chunks, finish ${last}`);

    const messages = [{ role: 'system', content: 'You answer briefly.' }, { role: 'user', content: 'What is free software?' }];
    const cr = await client.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0 });
    check(cr.object === 'chat.completion' && cr.choices[0].message.role === 'assistant' &&
      typeof cr.choices[0].message.content === 'string', `${model}: chat completion shape`);
    let cs = '', role = null;
    const cstream = await client.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0, stream: true,
      stream_options: { include_usage: true } });
    let usage = null;
    for await (const c of cstream) {
      if (c.usage) usage = c.usage;
      if (!c.choices.length) continue;
      if (c.choices[0].delta.role) role = c.choices[0].delta.role;
      if (c.choices[0].delta.content) cs += c.choices[0].delta.content;
    }
    check(role === 'assistant' && cs === cr.choices[0].message.content,
      `${model}: streamed chat equals non-streamed (${JSON.stringify(cs)} vs ${JSON.stringify(cr.choices[0].message.content)})`);
    check(usage && usage.completion_tokens === cr.usage.completion_tokens, `${model}: stream usage ${JSON.stringify(usage)}`);
  }

  try {
    await client.completions.create({ model: 'no-such-adapter', prompt: 'x', max_tokens: 2 });
    check(false, 'unknown model must fail');
  } catch (e) {
    check(e instanceof OpenAI.NotFoundError && e.status === 404, `unknown model: ${e.status} ${e.message}`);
  }
  try {
    const bad = new OpenAI({ baseURL, apiKey: 'sk-wrong-key-000', maxRetries: 0 });
    await bad.completions.create({ model: baseModel, prompt: 'x', max_tokens: 2 });
    check(apiKey === 'none', 'a wrong key must fail when the server has tenants');
  } catch (e) {
    check(e instanceof OpenAI.AuthenticationError && e.status === 401, `wrong key: ${e.status} ${e.message}`);
  }
  try {
    await client.completions.create({ model: baseModel, prompt: 'x', max_tokens: 2, temperature: 7 });
    check(false, 'temperature 7 must fail');
  } catch (e) {
    check(e instanceof OpenAI.BadRequestError && e.status === 400, `bad temperature: ${e.status} ${e.message}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.log('FAIL exception: ' + (e && e.stack || e)); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); });
