// llama.cpp (npm node-llama-cpp@3.21.1, its prebuilt CPU binary) timed the way
// `braid bench infer --gguf FILE` times braid:
//   node bench/infer/llama_bench.mjs NODE_MODULES_DIR FILE.gguf THREADS PREFILL DECODE [MAX_S]
// Prefill: PREFILL tokens (the same ids braid uses) evaluated as one batch; decode: DECODE
// greedy steps of one token each (end-of-generation tokens do not stop it), or fewer when MAX_S
// seconds of decoding have passed (decode_steps says how many ran).  Prints one JSON
// line like braid's (CPU seconds: the whole process, every thread); peak_rss_mib is the whole node process's (node itself included).
import {join} from "node:path";
import {pathToFileURL} from "node:url";
import {readFileSync} from "node:fs";

const [dir, path, threadsArg, prefillArg, decodeArg] = process.argv.slice(2);
const threads = Number(threadsArg), np = Number(prefillArg), nd = Number(decodeArg);
const maxS = Number(process.argv[7] || 1e9);
const {getLlama} = await import(pathToFileURL(join(dir, "node-llama-cpp", "dist", "index.js")).href);
const llama = await getLlama({build: "never", gpu: false, logLevel: "error", maxThreads: threads});
let t0 = performance.now();
const model = await llama.loadModel({modelPath: path, useMmap: true});
const ctx = await model.createContext({contextSize: 1024, batchSize: np, threads: {ideal: threads, min: threads}});
const loadS = (performance.now() - t0) / 1e3;
const seq = ctx.getSequence();
const V = 32000; // bench/infer/run.sh's models (braid bench infer --make)
const toks = Array.from({length: np}, (_, i) => (i * 7919 + 13) % V);
// prefill: one batch, logits of the last token only (as braid's prefill), its greedy token
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
t0 = performance.now();
let c0 = cpu();
const out = await seq.controlledEvaluate(toks.map((t, i) => i === np - 1 ? [t, {generateNext: {token: true}}] : t));
const prefillS = (performance.now() - t0) / 1e3, prefillCpu = cpu() - c0;
// decode: DECODE steps of one token, each fed the previous greedy token
const gen = seq.evaluate([out[np - 1].next.token], {temperature: 0, yieldEogToken: true});
let n = 0;
t0 = performance.now();
c0 = cpu();
while (n < nd && (performance.now() - t0) / 1e3 < maxS && !(await gen.next()).done) n++;
const decodeS = (performance.now() - t0) / 1e3, decodeCpu = cpu() - c0;
await gen.return();
let hwm = 0;
for (const line of readFileSync("/proc/self/status", "utf8").split("\n"))
  if (line.startsWith("VmHWM:")) hwm = Number(line.split(/\s+/)[1]) / 1024;
console.log(JSON.stringify({engine: "llama.cpp", file: path, threads, prefill: np, decode: nd, load_s: +loadS.toFixed(3),
  prefill_tok_s: +(np / prefillS).toFixed(2), decode_tok_s: +(n / decodeS).toFixed(2),
  prefill_cpu_s: +prefillCpu.toFixed(3), decode_cpu_s: +decodeCpu.toFixed(3), decode_steps: n, peak_rss_mib: +hwm.toFixed(1)}));
process.exit(0);
