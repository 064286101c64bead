// A minimal OpenAI-compatible chat server over llama.cpp (node-llama-cpp 3.22.1, prebuilt CPU binaries), standing in
// for llama-server (not installable here) so that `./enclave loadtest` can drive both engines on the same GGUF file.
// Like `llama-server -np N -c N*CTX`: N parallel sequences in one context, decoded together by llama.cpp's batching;
// a request takes a free sequence, preferring the one its conversation used before (llama-server's prompt cache).
// Usage: node server.mjs MODEL.gguf [port=8091] [threads=2] [parallel=8] [ctxPerSequence=2048]
import http from "node:http";
import path from "node:path";
import {getLlama, LlamaChatSession} from "node-llama-cpp";

const [modelPath, portArg = "8091", threadsArg = "2", parallelArg = "8", ctxArg = "2048"] = process.argv.slice(2);
const threads = Number(threadsArg), parallel = Number(parallelArg), ctxPerSeq = Number(ctxArg);
const llama = await getLlama({gpu: false, build: "never", maxThreads: threads, logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const context = await model.createContext({contextSize: ctxPerSeq * parallel, sequences: parallel, threads,
    batchSize: 512, flashAttention: false});
const modelId = path.basename(modelPath).replace(/\.gguf$/, "");

const free = [];       // idle sequences: {seq, key}
const waiting = [];    // resolvers of requests waiting for a sequence
for (let i = 0; i < parallel; i++) free.push({seq: context.getSequence(), key: null});

function acquire(key) {
    if (free.length > 0) {
        const i = Math.max(0, free.findIndex((s) => s.key === key));
        return Promise.resolve(free.splice(i, 1)[0]);
    }
    return new Promise((resolve) => waiting.push(resolve));
}

function release(slot) {
    const next = waiting.shift();
    if (next) next(slot);
    else free.push(slot);
}

async function chat(req, res, body) {
    const messages = body.messages ?? [];
    const last = messages[messages.length - 1];
    const history = [];
    for (const m of messages.slice(0, -1)) {
        if (m.role === "system") history.push({type: "system", text: m.content});
        else if (m.role === "user") history.push({type: "user", text: m.content});
        else history.push({type: "model", response: [m.content]});
    }
    // the conversation's key: its first user message (follow-up turns repeat it)
    const key = (messages.find((m) => m.role === "user") ?? {}).content ?? null;
    const slot = await acquire(key);
    slot.key = key;
    const id = "chatcmpl-" + Math.random().toString(36).slice(2);
    const send = (obj) => res.write("data: " + JSON.stringify(obj) + "\n\n");
    res.writeHead(200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"});
    let completion = 0;
    try {
        const session = new LlamaChatSession({contextSequence: slot.seq, autoDisposeSequence: false});
        session.setChatHistory(history);
        await session.prompt(last?.content ?? "", {
            maxTokens: body.max_tokens ?? body.max_completion_tokens ?? 64,
            temperature: body.temperature ?? 1,
            onToken: (tokens) => { completion += tokens.length; },
            onTextChunk: (text) => send({id, object: "chat.completion.chunk", model: modelId,
                choices: [{index: 0, delta: {content: text}, finish_reason: null}]})
        });
        session.dispose({disposeSequence: false});
        send({id, object: "chat.completion.chunk", model: modelId, choices: [{index: 0, delta: {}, finish_reason: "stop"}]});
        send({id, object: "chat.completion.chunk", model: modelId, choices: [], usage: {completion_tokens: completion}});
        res.end("data: [DONE]\n\n");
    } catch (e) {
        res.end("data: " + JSON.stringify({error: {message: String(e)}}) + "\n\n");
    } finally {
        release(slot);
    }
}

http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/v1/models") {
        res.writeHead(200, {"Content-Type": "application/json"});
        res.end(JSON.stringify({object: "list", data: [{id: modelId, object: "model"}]}));
        return;
    }
    if (req.method === "POST" && req.url === "/v1/chat/completions") {
        let data = "";
        req.on("data", (c) => data += c);
        req.on("end", () => chat(req, res, JSON.parse(data)).catch((e) => { res.statusCode = 500; res.end(String(e)); }));
        return;
    }
    res.writeHead(404);
    res.end();
}).listen(Number(portArg), "127.0.0.1", () => console.log(`llama.cpp (node-llama-cpp) serving ${modelId} on 127.0.0.1:${portArg}, ${parallel} sequences`));
