// Drives a running Enclave with the official openai and ollama npm clients; prints one JSON line of results.
// Usage: node clients.mjs http://127.0.0.1:PORT MODEL
import {Ollama} from 'ollama';
import OpenAI from 'openai';

const [base, model] = process.argv.slice(2);
const out = {};
const openai = new OpenAI({baseURL: base + '/v1', apiKey: 'unused'});
const plain = await openai.chat.completions.create({model, messages: [{role: 'user', content: 'Once upon a time'}], max_tokens: 20, temperature: 0});
out.openai_plain = plain.choices[0].message.content;
let streamed = '';
for await (const chunk of await openai.chat.completions.create({model, messages: [{role: 'user', content: 'Once upon a time'}], max_tokens: 20, temperature: 0, stream: true})) {
    streamed += chunk.choices[0]?.delta?.content ?? '';
}
out.openai_stream = streamed;
const ollama = new Ollama({host: base});
out.ollama_tags = (await ollama.list()).models.map(m => m.name);
out.ollama_generate = (await ollama.generate({model, prompt: 'Once upon a time', options: {temperature: 0, num_predict: 20, repeat_penalty: 1}})).response;
let chat = '';
for await (const part of await ollama.chat({model, messages: [{role: 'user', content: 'Once upon a time'}], stream: true, options: {temperature: 0, num_predict: 20, repeat_penalty: 1}})) {
    chat += part.message.content;
}
out.ollama_chat_stream = chat;
console.log(JSON.stringify(out));
