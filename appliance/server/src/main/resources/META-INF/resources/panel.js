// The panel's progressive enhancement: streamed chat, upload progress, crawl status, live dashboard charts.
// No framework, no CDN; served from the appliance. Every state-changing request carries the CSRF token.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const $$ = (sel, el = document) => Array.from(el.querySelectorAll(sel));
const csrf = () => (document.querySelector('meta[name="csrf"]') || {}).content || "";

async function api(method, url, body) {
  const headers = { "X-CSRF-Token": csrf() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!r.ok) {
    let msg = r.status + "";
    try { msg = (await r.json()).error.message; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r.status === 204 ? null : r.json();
}

// ---- dashboard: poll /panel/stats, draw two sparklines
function sparkline(canvas, values) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const max = Math.max(1, ...values);
  ctx.strokeStyle = "#1f6feb";
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / Math.max(1, values.length - 1)) * w;
    const y = h - (v / max) * (h - 4) - 2;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

function dashboard() {
  const tps = [], act = [];
  let last = null;
  async function tick() {
    try {
      const s = await (await fetch("/panel/stats")).json();
      if (last) {
        const dt = (s.at - last.at) / 1000;
        tps.push(Math.max(0, (s.generated - last.generated) / dt));
      }
      last = s;
      act.push(s.active);
      if (tps.length > 60) tps.shift();
      if (act.length > 60) act.shift();
      $("#tps").textContent = tps.length ? tps[tps.length - 1].toFixed(1) : "–";
      for (const k of ["queued", "active", "kv", "kvfree", "hit", "mem", "heap", "disk", "temp", "power", "uptime"]) {
        const el = $("#" + k);
        if (el && s[k] !== undefined) el.textContent = s[k];
      }
      sparkline($("#tps-chart"), tps);
      sparkline($("#active-chart"), act);
    } catch (e) { /* the next tick retries */ }
  }
  tick();
  setInterval(tick, 2000);
}

// ---- chat: stream from /v1/chat/completions, keep the conversation server-side
function chat() {
  let controller = null;
  let messages = [];
  const conv = $("#conversation");
  const show = (role, text) => {
    const div = document.createElement("div");
    div.className = "msg " + role;
    div.textContent = text;
    conv.appendChild(div);
    return div;
  };
  fetch("/panel/conversation").then((r) => r.json()).then((c) => {
    messages = c.messages || [];
    messages.forEach((m) => show(m.role, m.content));
  }).catch(() => {});
  const save = () => api("PUT", "/panel/conversation", { messages }).catch(() => {});
  $("#clear").addEventListener("click", () => { messages = []; conv.textContent = ""; $("#citations").textContent = ""; save(); });
  $("#stop").addEventListener("click", () => controller && controller.abort());
  $("#chat-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = $("#question").value.trim();
    if (!q) return;
    messages.push({ role: "user", content: q });
    show("user", q);
    $("#question").value = "";
    const out = show("assistant", "");
    const collections = $$("#collections option").filter((o) => o.selected).map((o) => o.value);
    // the model the page shows: if another was loaded meanwhile, the server says so instead of answering with it
    const body = { model: $("#chat-model").value, messages, stream: true, max_tokens: parseInt($("#max_tokens").value, 10) || 128 };
    if (collections.length) body.enclave = { collections, top_k: 5 };
    controller = new AbortController();
    $("#send").disabled = true;
    $("#stop").disabled = false;
    const started = performance.now();
    let pieces = 0;
    try {
      const r = await fetch("/v1/chat/completions", {
        method: "POST", signal: controller.signal,
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() }, body: JSON.stringify(body),
      });
      if (!r.ok) throw new Error((await r.json()).error.message);
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 2);
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const ev2 = JSON.parse(data);
          if (ev2.enclave && ev2.enclave.citations) citations(ev2.enclave.citations);
          const d = ev2.choices && ev2.choices[0] && ev2.choices[0].delta;
          if (d && d.content) { out.textContent += d.content; pieces++; }
        }
      }
    } catch (e) {
      if (e.name !== "AbortError") { out.textContent += " [error: " + e.message + "]"; out.classList.add("error"); }
    } finally {
      controller = null;
      $("#send").disabled = false;
      $("#stop").disabled = true;
      const s = (performance.now() - started) / 1000;
      $("#chat-stats").textContent = pieces + " pieces in " + s.toFixed(1) + " s";
      messages.push({ role: "assistant", content: out.textContent });
      save();
    }
  });
  function citations(list) {
    const ol = $("#citations");
    ol.textContent = "";
    for (const c of list) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "/documents/" + c.document_id + "/text?from=" + c.char_start + "&to=" + c.char_end;
      a.target = "_blank";
      a.textContent = (c.title || c.source) + ", page " + c.page_start + (c.page_end !== c.page_start ? "–" + c.page_end : "");
      li.appendChild(a);
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = c.snippet;
      li.appendChild(p);
      ol.appendChild(li);
    }
  }
}

// ---- documents: create collections, upload with progress, crawl with progress, delete, re-index
function documents() {
  $("#new-collection").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const roles = $("#collection-roles").value.split(",").map((s) => s.trim()).filter(Boolean);
    try { await api("POST", "/rag/collections", { name: $("#collection-name").value, read_roles: roles }); location.reload(); }
    catch (e) { alert(e.message); }
  });
  for (const form of $$("form.upload")) {
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const files = $(".upload-input", form).files;
      if (!files.length) return;
      const fd = new FormData();
      for (const f of files) fd.append("file", f, f.name);
      const xhr = new XMLHttpRequest();
      const bar = $(".upload-progress", form), status = $(".upload-status", form);
      bar.hidden = false;
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
      xhr.onload = () => {
        bar.value = 100;
        try {
          const r = JSON.parse(xhr.responseText);
          status.textContent = r.data ? r.data.map((d) => d.source + ": " + d.status + (d.reason ? " (" + d.reason + ")" : "")).join("; ")
            : r.error.message;
        } catch (e) { status.textContent = "upload failed (" + xhr.status + ")"; }
        setTimeout(() => location.reload(), 1200);
      };
      xhr.onerror = () => { status.textContent = "upload failed"; };
      xhr.open("POST", "/rag/collections/" + encodeURIComponent(form.dataset.collection) + "/documents");
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      xhr.send(fd);
    });
  }
  for (const form of $$("form.crawl")) {
    const name = form.dataset.collection;
    const bar = $(".crawl-progress", form), status = $(".crawl-status", form);
    const poll = async () => {
      try {
        const s = await api("GET", "/rag/collections/" + encodeURIComponent(name) + "/crawl");
        bar.hidden = false;
        bar.value = s.files_total ? (100 * s.files_done) / s.files_total : 0;
        status.textContent = s.state + ": " + s.files_done + "/" + s.files_total + " files, " + s.errors + " errors"
          + (s.eta_s !== undefined && s.state === "running" ? ", ETA " + s.eta_s + " s" : "");
        if (s.state === "running") setTimeout(poll, 1000);
      } catch (e) { /* no crawl yet */ }
    };
    poll();
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { await api("POST", "/rag/collections/" + encodeURIComponent(name) + "/crawl", { path: $(".crawl-path", form).value }); poll(); }
      catch (e) { status.textContent = e.message; }
    });
    $(".crawl-stop", form).addEventListener("click", () => api("DELETE", "/rag/collections/" + encodeURIComponent(name) + "/crawl").catch(() => {}));
  }
  for (const b of $$("button.delete-doc")) {
    b.addEventListener("click", async () => {
      if (!confirm("Delete this document from the index?")) return;
      await api("DELETE", "/rag/documents/" + b.dataset.id).catch((e) => alert(e.message));
      location.reload();
    });
  }
  for (const b of $$("button.reindex")) {
    b.addEventListener("click", async () => { await api("POST", "/rag/documents/" + b.dataset.id + "/reindex").catch((e) => alert(e.message)); location.reload(); });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "dashboard") dashboard();
  if (page === "chat") chat();
  if (page === "documents") documents();
});
