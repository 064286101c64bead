// Streams a completion from /v1/completions (Server-Sent Events) into the page. No framework, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
let controller = null;

async function loadModel() {
  try {
    const r = await fetch("/v1/models");
    const body = await r.json();
    $("model").textContent = body.data.map((m) => m.id).join(", ");
  } catch (e) {
    $("model").textContent = "model unavailable";
  }
}

async function generate(event) {
  event.preventDefault();
  const output = $("output");
  output.textContent = $("prompt").value;
  output.classList.remove("error");
  $("stats").textContent = "";
  controller = new AbortController();
  $("go").disabled = true;
  $("stop").disabled = false;
  const started = performance.now();
  let pieces = 0;
  let firstAt = 0;
  try {
    const response = await fetch("/v1/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        prompt: $("prompt").value,
        max_tokens: Number($("max_tokens").value),
        temperature: Number($("temperature").value),
        stream: true,
      }),
      signal: controller.signal,
    });
    if (!response.ok) {
      const err = await response.json();
      throw new Error(err.error ? err.error.message : response.statusText);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let finish = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const choice = chunk.choices[0];
        if (choice && choice.text) {
          if (!firstAt) firstAt = performance.now();
          output.textContent += choice.text;
          pieces++;
        }
        if (choice && choice.finish_reason) finish = choice.finish_reason;
      }
    }
    const secs = (performance.now() - started) / 1000;
    $("stats").textContent = `${pieces} chunks in ${secs.toFixed(2)} s` +
      (firstAt ? `, first after ${((firstAt - started)).toFixed(0)} ms` : "") + (finish ? ` · ${finish}` : "");
  } catch (e) {
    if (e.name !== "AbortError") {
      output.classList.add("error");
      output.textContent += "\n[" + e.message + "]";
    } else {
      $("stats").textContent = "stopped";
    }
  } finally {
    $("go").disabled = false;
    $("stop").disabled = true;
    controller = null;
  }
}

$("ask").addEventListener("submit", generate);
$("stop").addEventListener("click", () => controller && controller.abort());
loadModel();
