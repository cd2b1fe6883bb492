#!/usr/bin/env node
// Peer for `braid bench tokenizer`: times npm tiktoken's encode_ordinary on a UTF-8 file.
// usage: node bench/tiktoken_encode.js FILE ENCODING NODE_MODULES_DIR
// Prints one JSON line: tokens, checksum (h = h*31 + id mod 2^32), wall and CPU seconds.
const fs = require("fs");
const path = require("path");
const [file, encName, nm] = process.argv.slice(2);
const { get_encoding } = require(path.resolve(nm, "tiktoken"));
const text = fs.readFileSync(file, "utf8");
const enc = get_encoding(encName);
enc.encode_ordinary(text.slice(0, 200000)); // warm-up (WASM compile, caches)
const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
const ids = enc.encode_ordinary(text);
const wall = Number(process.hrtime.bigint() - t0) / 1e9, cu = process.cpuUsage(c0);
let h = 0;
for (let i = 0; i < ids.length; i++) h = (Math.imul(h, 31) + ids[i]) >>> 0;
enc.free();
console.log(JSON.stringify({ tokens: ids.length, checksum: h, wall_s: wall, cpu_s: (cu.user + cu.system) / 1e6,
                             bytes: Buffer.byteLength(text) }));
