// llama.cpp (npm node-llama-cpp@3.21.1, its prebuilt CPU binary) greedy-decodes a GGUF:
//   node tests/ref/gguf_oracle.mjs NODE_MODULES_DIR FILE.gguf "PROMPT IDS" N
// prints the N new token ids on one line (tests/test_lm_gguf.c compares them with braid's);
//   node tests/ref/gguf_oracle.mjs NODE_MODULES_DIR FILE.gguf --tokenize TEXT
// prints the ids llama.cpp's tokenizer (from the file's metadata) gives TEXT, no BOS, special
// tokens not parsed.
import {join} from "node:path";
import {pathToFileURL} from "node:url";
const [dir, path, ids, n] = process.argv.slice(2);
const {getLlama} = await import(pathToFileURL(join(dir, "node-llama-cpp", "dist", "index.js")).href);
const llama = await getLlama({build: "never", gpu: false, logLevel: "error"});
const model = await llama.loadModel({modelPath: path});
if (ids === "--tokenize") {
  console.log(Array.from(model.tokenize(n, false)).join(" "));
  process.exit(0);
}
const ctx = await model.createContext({contextSize: 64, batchSize: 64, threads: 1});
const out = [];
for await (const t of ctx.getSequence().evaluate(ids.split(" ").map(Number), {temperature: 0})) {
  out.push(t);
  if (out.length >= Number(n)) break;
}
console.log(out.join(" "));
process.exit(0);
