// llama-bench's pp and tg tests on llama.cpp (node-llama-cpp 3.22.1 prebuilt CPU binaries), for comparison with
// `./enclave bench` on the same file. Usage: node bench.mjs MODEL.gguf [threads=2] [p=128] [n=64] [reps=3]
// Install once (offline afterwards): npm install --omit=optional
import {getLlama} from "node-llama-cpp";

const [modelPath, threadsArg = "2", pArg = "128", nArg = "64", repsArg = "3"] = process.argv.slice(2);
const threads = Number(threadsArg), p = Number(pArg), n = Number(nArg), reps = Number(repsArg);
const llama = await getLlama({gpu: false, build: "never", maxThreads: threads, logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const context = await model.createContext({contextSize: Math.max(512, p + n + 8), batchSize: Math.max(p, 1), threads,
    flashAttention: false});
const seq = context.getSequence();
const vocab = model.tokens.bos ?? 1;
let seed = 42;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
const prompt = Array.from({length: Math.max(p, 1)}, () => rand() % 1000);

async function reset() {
    await seq.eraseContextTokenRanges([{start: 0, end: seq.nextTokenIndex}]);
}

const pp = [], tg = [];
await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, 8)); // warm-up
for (let r = 0; r < reps; r++) {
    if (p > 0) {
        await reset();
        const t0 = performance.now();
        await seq.evaluateWithoutGeneratingNewTokens(prompt);
        pp.push(p / ((performance.now() - t0) / 1000));
    }
    if (n > 0) {
        await reset();
        let count = 0;
        const t0 = performance.now();
        for await (const token of seq.evaluate([prompt[0]], {temperature: 0})) {
            if (++count >= n) break;
        }
        tg.push(n / ((performance.now() - t0) / 1000));
    }
}
const mean = (a) => a.reduce((s, x) => s + x, 0) / Math.max(a.length, 1);
const std = (a) => a.length < 2 ? 0 : Math.sqrt(a.reduce((s, x) => s + (x - mean(a)) ** 2, 0) / (a.length - 1));
console.log(JSON.stringify({engine: "llama.cpp (node-llama-cpp 3.22.1)", model: modelPath, threads,
    pp_tok_s: +mean(pp).toFixed(2), pp_stddev: +std(pp).toFixed(2), tg_tok_s: +mean(tg).toFixed(2), tg_stddev: +std(tg).toFixed(2)}));
await context.dispose();
await model.dispose();
