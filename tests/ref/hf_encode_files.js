#!/usr/bin/env node
// Hugging Face tokenizers (Rust, npm @anush008/tokenizers) as the oracle for whole files:
//   node tests/ref/hf_encode_files.js tokenizer.json FILE...
// One JSON line per file: {"file", "ids", "ms" (encode time), "roundtrip" (decode(encode(x)) == x)}.
// Files are read as UTF-8; added tokens in the text are matched (as HF always does), no BOS/EOS.
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require(path.resolve(".npm-local/node_modules/@anush008/tokenizers"));
(async () => {
  const tk = Tokenizer.fromFile(process.argv[2]);
  for (const f of process.argv.slice(3)) {
    const text = fs.readFileSync(f, "utf8");
    await tk.encode("warm up", null, { addSpecialTokens: false });
    const t0 = process.hrtime.bigint();
    const e = await tk.encode(text, null, { addSpecialTokens: false });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const ids = Array.from(e.getIds());
    const back = await tk.decode(ids, false);
    process.stdout.write(JSON.stringify({ file: f, ids, ms, roundtrip: back === text }) + "\n");
  }
})();
