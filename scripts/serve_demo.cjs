// make demo, serving part: a few requests through the official `openai` npm client against a
// running `braid serve` (base model, each tenant's adapter, streaming), printing the answers and
// the PARDEN guard's verdicts.  Usage: node scripts/serve_demo.cjs BASE_URL BASE_MODEL KEY:ADAPTER...
'use strict';
const path = require('path');
const OpenAI = require(path.join(__dirname, '..', '.npm-local', 'node_modules', 'openai'));
const [baseURL, baseModel, ...tenants] = process.argv.slice(2);

function verdict(g) {
  if (!g) return 'guard off';
  return g.flagged ? `FLAGGED by PARDEN (score ${g.score === null ? 'n/a' : g.score.toFixed(3)}): answer withheld`
                   : `passed PARDEN (score ${g.score.toFixed(3)})`;
}

async function main() {
  for (const t of tenants) {
    const [key, adapter] = t.split(':');
    const client = new OpenAI({ baseURL, apiKey: key, maxRetries: 0 });
    const ids = (await client.models.list()).data.map((m) => m.id);
    console.log(`\ntenant key ${key.slice(0, 8)}...: models ${ids.join(', ')}`);
    const prompts = { code: 'int main(int argc, char **argv)\n{\n', law: 'The licensee shall' };
    for (const model of [baseModel, adapter]) {
      const prompt = prompts[adapter] || 'The';
      const r = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0 });
      console.log(`\n[${model}] ${JSON.stringify(prompt)} ->\n${JSON.stringify(r.choices[0].text)}`);
      console.log(`  ${r.usage.completion_tokens} tokens, finish ${r.choices[0].finish_reason}; ${verdict(r.braid_guard)}`);
    }
  }
  const [key, adapter] = tenants[0].split(':');
  const client = new OpenAI({ baseURL, apiKey: key, maxRetries: 0 });
  process.stdout.write(`\n[${adapter}, streamed chat] `);
  const stream = await client.chat.completions.create({
    model: adapter, stream: true, max_tokens: 24, temperature: 0.7, seed: 1,
    messages: [{ role: 'user', content: 'Write a C function that adds two numbers.' }] });
  let guard = null;
  for await (const c of stream) {
    if (c.choices.length && c.choices[0].delta.content) process.stdout.write(c.choices[0].delta.content);
    if (c.braid_guard) guard = c.braid_guard;
  }
  console.log(`\n  (stream ended; ${verdict(guard)}; with --guard the text arrives after the verdict)`);
  try {
    await new OpenAI({ baseURL, apiKey: 'sk-not-a-tenant', maxRetries: 0 }).completions.create({ model: baseModel, prompt: 'x' });
  } catch (e) {
    console.log(`\nunknown key -> HTTP ${e.status}: ${e.message}`);
  }
}
main().catch((e) => { console.error('serve demo client failed: ' + (e && e.stack || e)); process.exit(1); });
