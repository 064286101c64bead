// Launch to first token on llama.cpp (node-llama-cpp 3.22.1 prebuilt CPU binaries), for comparison with
// `/usr/bin/time ./enclave generate --model FILE --prompt Hello -n 1`. Usage: /usr/bin/time node first-token.mjs MODEL.gguf [threads=2]
// Prints the time from process start to the first generated token; run it under /usr/bin/time for the whole process.
import {getLlama} from "node-llama-cpp";

const [modelPath, threadsArg = "2"] = process.argv.slice(2);
const threads = Number(threadsArg);
const llama = await getLlama({gpu: false, build: "never", maxThreads: threads, logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const loaded = performance.now();
const context = await model.createContext({contextSize: 512, threads, flashAttention: false});
const seq = context.getSequence();
const tokens = model.tokenize("Hello", true);
for await (const token of seq.evaluate(tokens, {temperature: 0})) {
    process.stdout.write(model.detokenize([token]) + "\n");
    break;
}
console.log(`first token ${(performance.now() / 1000).toFixed(2)} s after launch (model loaded at ${(loaded / 1000).toFixed(2)} s)`);
process.exit(0);
