#!/usr/bin/env node
// Encodes a UTF-8 file with Hugging Face's tokenizers (Rust, npm @anush008/tokenizers) and prints
// the ids on one line: node tests/ref/hf_encode.js tokenizer.json FILE
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require(path.resolve(".npm-local/node_modules/@anush008/tokenizers"));
(async () => {
  const tk = Tokenizer.fromFile(process.argv[2]);
  const e = await tk.encode(fs.readFileSync(process.argv[3], "utf8"), null, { addSpecialTokens: false });
  process.stdout.write(e.getIds().join(" ") + "\n");
})();
