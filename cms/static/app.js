// Loa Làng web UI: small plain script, no build step. Every change goes through the JSON
// API with the session's CSRF token (from the page's <meta name="csrf">).
"use strict";

const csrf = () => document.querySelector('meta[name="csrf"]')?.content || "";
// API messages in the page's language, whatever the browser's own setting.
const lang = () => document.documentElement.lang || "vi";

function show(el, text, ok) {
  const box = el.querySelector(".msg") || el.parentElement.querySelector(".msg");
  if (!box) { if (!ok) alert(text); return; }
  box.textContent = text;
  box.className = "msg " + (ok ? "ok" : "error");
}

async function api(method, url, body) {
  const opts = { method, headers: { "X-CSRF-Token": csrf(), "Accept-Language": lang() }, credentials: "same-origin" };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const res = await fetch(url, opts);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { message: text }; }
  if (!res.ok) throw new Error((data && data.message) || res.statusText);
  return data;
}

// Form fields -> JSON. data-type: int, ints (checked boxes -> [n]), bool, lines (-> [s]);
// dotted names nest ("targets.villages").
function formJson(form) {
  const out = {};
  const get = path => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), out);
  const set = (path, value) => {
    const keys = path.split(".");
    let o = out;
    keys.slice(0, -1).forEach(k => { o = o[k] = o[k] || {}; });
    o[keys[keys.length - 1]] = value;
  };
  form.querySelectorAll("[name]").forEach(el => {
    const type = el.dataset.type || "";
    if (el.name === "csrf" || el.type === "file" || el.closest(".hidden")) return;
    if (type === "ints") {
      const cur = get(el.name) || [];
      if (el.checked) cur.push(parseInt(el.value, 10));
      set(el.name, cur);
      return;
    }
    if (el.type === "checkbox" && type === "bool") { set(el.name, el.checked); return; }
    if (el.type === "checkbox") return;
    if (el.value === "" && el.dataset.optional !== undefined) return;
    if (type === "int") set(el.name, parseInt(el.value, 10));
    else if (type === "num") set(el.name, parseFloat(el.value));
    else set(el.name, el.value);
  });
  return out;
}

function after(form, data) {
  const go = form.dataset.next;
  const msg = form.dataset.ok || "OK";
  if (data && data.enrollment_code) {
    // Shown once: the technician types it on the node (`speaker-node enroll`).
    show(form, msg + " " + data.enrollment_code, true);
    return;
  }
  show(form, msg, true);
  if (go) setTimeout(() => { location.href = go.replace("{id}", data && data.id); }, 400);
  else setTimeout(() => location.reload(), 400);
}

// A time of day as people write it in Vietnam -> HH:MM: "6h30", "6h", "6:30", "06.30",
// "17g15" all work; anything else is left as typed for the server to explain.
function clockTime(t) {
  const m = /^(\d{1,2})\s*(?:h|g|giờ|:|\.)\s*(\d{1,2})?\s*(?:p|phút)?$/i.exec(t.trim());
  if (!m) return t;
  const h = parseInt(m[1], 10), min = parseInt(m[2] || "0", 10);
  if (h > 23 || min > 59) return t;
  return String(h).padStart(2, "0") + ":" + String(min).padStart(2, "0");
}

// Schedule editor: plain choices -> a rule object of CONTRACT.md.
function scheduleBody(form) {
  const f = formJson(form);
  const kind = f.rule_kind;
  const times = (f.times || "").split(/[ ,;]+/).filter(Boolean).map(clockTime);
  const offset = form.dataset.offset || "+07:00";
  let rule;
  if (kind === "once") rule = { once: f.once + ":00" + offset };
  else if (kind === "daily") rule = { daily: times };
  else if (kind === "weekly") rule = { weekly: { days: [...form.querySelectorAll('[name="day"]:checked')].map(e => e.value), times } };
  else rule = { monthly: { days: (f.month_days || "").split(/[ ,;]+/).filter(Boolean).map(Number), times } };
  if (kind !== "once" && f.from) rule.from = f.from;
  if (kind !== "once" && f.until) rule.until = f.until;
  const body = {
    title: f.title, priority: f.priority, rule, volume: parseInt(f.volume || "100", 10),
    content_ids: f.content_ids || [], targets: { villages: (f.targets && f.targets.villages) || [], groups: (f.targets && f.targets.groups) || [] },
  };
  if (f.repeat) body.repeat = parseInt(f.repeat, 10);
  if (f.pause_s) body.pause_ms = Math.round(parseFloat(f.pause_s) * 1000);
  if (f.gap_s) body.gap_ms = Math.round(parseFloat(f.gap_s) * 1000);
  if (f.chime_id) body.chime_id = parseInt(f.chime_id, 10);
  return body;
}

// Emergency form: an approved item or typed text; the whole commune or chosen villages.
function emergencyBody(form) {
  const f = formJson(form);
  const body = {};
  if (f.source === "item") body.content_id = f.content_id;
  else { body.text = f.text; if (f.title) body.title = f.title; }
  const all = form.querySelector('[name="all"]');
  body.targets = all && all.checked ? "all" : { villages: (f.targets && f.targets.villages) || [] };
  if (f.repeat) body.repeat = f.repeat;
  return body;
}

function upload(form) {
  const bar = form.querySelector("progress");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.dataset.upload);
  xhr.setRequestHeader("X-CSRF-Token", csrf());
  xhr.setRequestHeader("Accept-Language", lang());
  xhr.upload.onprogress = e => { if (e.lengthComputable && bar) { bar.max = e.total; bar.value = e.loaded; } };
  xhr.onload = () => {
    let data = {};
    try { data = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    if (xhr.status >= 200 && xhr.status < 300) after(form, data);
    else show(form, data.message || xhr.statusText, false);
  };
  xhr.onerror = () => show(form, form.dataset.neterr || "Network error", false);
  xhr.send(new FormData(form));
}

document.addEventListener("submit", async e => {
  const form = e.target;
  if (!form.dataset.api && !form.dataset.upload && !form.dataset.schedule && !form.dataset.emergency) return;
  e.preventDefault();
  if (form.dataset.confirm && !confirm(form.dataset.confirm)) return;
  if (form.dataset.upload) return upload(form);
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    const body = form.dataset.schedule ? scheduleBody(form) : form.dataset.emergency ? emergencyBody(form) : formJson(form);
    if (body.duration_min !== undefined) { body.duration_ms = Math.round(parseFloat(body.duration_min) * 60000); delete body.duration_min; }
    const data = await api(form.dataset.method || "POST", form.dataset.api || form.dataset.schedule || form.dataset.emergency, body);
    after(form, data);
  } catch (err) {
    show(form, err.message, false);
  } finally {
    if (button) button.disabled = false;
  }
});

document.addEventListener("click", async e => {
  const d = e.target.closest("button[data-delete]");
  if (d) {
    if (!confirm(d.dataset.confirm || "?")) return;
    try { await api("DELETE", d.dataset.delete); location.reload(); } catch (err) { alert(err.message); }
    return;
  }
  const b = e.target.closest("button[data-post]");
  if (!b) return;
  if (b.dataset.confirm && !confirm(b.dataset.confirm)) return;
  let body = {};
  if (b.dataset.prompt) {
    const reason = prompt(b.dataset.prompt);
    if (reason === null) return;
    body = { reason };
  }
  b.disabled = true;
  try {
    const data = await api("POST", b.dataset.post, body);
    const panel = b.dataset.codePanel && document.getElementById(b.dataset.codePanel);
    if (panel && data && data.enrollment_code) {
      // Shown once, with the command that enrols the node (no reload: it would be lost).
      const code = data.enrollment_code;
      panel.replaceChildren(
        Object.assign(document.createElement("p"), { textContent: panel.dataset.intro + " " + code }),
        Object.assign(document.createElement("p"), { textContent: panel.dataset.run }),
        Object.assign(document.createElement("pre"), {
          textContent: "speaker-node enroll --server " + location.origin + " --code " + code + " --state /var/lib/loa-node",
        }));
      panel.classList.remove("hidden");
      b.disabled = false;
      return;
    }
    if (b.dataset.next) location.href = b.dataset.next; else location.reload();
  } catch (err) {
    alert(err.message);
    b.disabled = false;
  }
});

// Schedule editor: show the inputs the chosen rule needs.
function ruleFields() {
  const sel = document.querySelector('select[name="rule_kind"]');
  if (!sel) return;
  document.querySelectorAll("[data-rule]").forEach(el => {
    el.classList.toggle("hidden", !el.dataset.rule.split(" ").includes(sel.value));
  });
}
// Emergency form: show the inputs of the chosen source.
function sourceFields() {
  const sel = document.querySelector('select[name="source"]');
  if (!sel) return;
  document.querySelectorAll("[data-source]").forEach(el => el.classList.toggle("hidden", el.dataset.source !== sel.value));
}

// An emergency's live page: the reach count and every node's state, from the server's events.
function followReach() {
  const box = document.querySelector("[data-reach]");
  if (!box || !window.EventSource) return;
  const labels = JSON.parse(box.dataset.labels || "{}");
  const time = t => t ? new Date(t).toLocaleString(lang() === "en" ? "en-GB" : "vi-VN", { timeZone: box.dataset.tz, hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";
  const events = new EventSource(box.dataset.reach);
  events.addEventListener("reach", ev => {
    const e = JSON.parse(ev.data);
    box.querySelector("#reached").textContent = e.reached;
    box.querySelector("#total").textContent = e.total;
    const body = box.querySelector("#reach-nodes tbody");
    body.replaceChildren(...e.nodes.map(n => {
      const row = document.createElement("tr");
      row.dataset.node = n.node_id;
      const label = labels[n.state] || { class: "draft", text: n.state };
      const link = document.createElement("a");
      link.href = "/ui/nodes/" + n.node_id;
      link.textContent = n.name;
      const badge = document.createElement("span");
      badge.className = "badge " + label.class;
      badge.textContent = label.text;
      for (const content of [link, n.village, badge, time(n.reached_at), n.message]) {
        const cell = document.createElement("td");
        cell.append(content);
        row.append(cell);
      }
      return row;
    }));
  });
}

// Speaking live: the microphone as WebM Opus over a WebSocket, with a level meter.
function liveMic() {
  const box = document.getElementById("mic");
  if (!box) return;
  const start = box.querySelector("#mic-start"), stop = box.querySelector("#mic-stop");
  const meter = box.querySelector("#mic-level"), status = box.querySelector("#mic-status");
  const priority = box.querySelector("#mic-priority"), reach = box.querySelector("#mic-reach");
  // Sent here from the emergency form: the emergency level is already chosen.
  const asked = new URLSearchParams(location.search).get("priority");
  if (priority && asked) priority.value = asked;
  let media = null, rec = null, ws = null, ctx = null;
  const say = (text, ok) => { status.textContent = text; status.className = "msg " + (ok ? "ok" : "error"); };
  const end = text => {
    if (rec && rec.state !== "inactive") rec.stop();
    if (ws && ws.readyState <= 1) ws.close();
    if (media) media.getTracks().forEach(t => t.stop());
    if (ctx) ctx.close();
    media = rec = ws = ctx = null;
    meter.value = 0;
    reach.classList.add("hidden");
    start.disabled = false; stop.disabled = true;
    if (text) say(text, false);
  };
  start.addEventListener("click", async () => {
    const villages = [...box.querySelectorAll('[name="mic-village"]:checked')].map(e => e.value);
    if (!villages.length) return say(box.dataset.fail, false);
    start.disabled = true;
    try {
      media = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    } catch (_) { return end(box.dataset.fail); }
    box.dataset.openedAt = String(Date.now()); // when the microphone opened (for measuring)
    ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    ctx.createMediaStreamSource(media).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const level = () => {
      if (!ctx) return;
      analyser.getFloatTimeDomainData(samples);
      let sum = 0; for (const s of samples) sum += s * s;
      meter.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      requestAnimationFrame(level);
    };
    level();
    const q = new URLSearchParams({ villages: villages.join(","), csrf: box.dataset.csrf });
    if (priority) q.set("priority", priority.value);
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/live/mic?" + q);
    ws.onopen = () => {
      rec = new MediaRecorder(media, { mimeType: "audio/webm;codecs=opus", audioBitsPerSecond: 32000 });
      rec.ondataavailable = e => { if (e.data.size && ws && ws.readyState === 1) ws.send(e.data); };
      rec.start(100);
      stop.disabled = false;
      say(box.dataset.on, true);
      // Spoken at emergency level, it is an emergency: link its live reach page.
      if (priority && priority.value === "emergency") setTimeout(async () => {
        try {
          const on = await api("GET", "/api/v1/live");
          const mine = on.find(s => s.emergency_id && s.started_by_name === box.dataset.me);
          if (mine) { reach.href = "/ui/emergency/" + mine.emergency_id; reach.classList.remove("hidden"); }
        } catch (_) { /* the page still works without the link */ }
      }, 500);
    };
    ws.onerror = () => end(box.dataset.fail);
    ws.onclose = () => { if (media) end(box.dataset.off); };
  });
  stop.addEventListener("click", () => { end(null); say(box.dataset.off, true); });
}

document.addEventListener("change", async e => {
  if (e.target.name === "rule_kind") ruleFields();
  if (e.target.name === "source") sourceFields();
  // Choosing a village means those villages, not the whole commune.
  if (e.target.name === "targets.villages" && e.target.checked) {
    const all = e.target.form && e.target.form.querySelector('[name="all"]');
    if (all) all.checked = false;
  }
  const box = e.target.closest("input[data-patch]");
  if (box) {
    try { await api("PATCH", box.dataset.patch, { [box.dataset.field]: box.checked }); }
    catch (err) { alert(err.message); box.checked = !box.checked; }
  }
});
document.addEventListener("DOMContentLoaded", () => { ruleFields(); sourceFields(); followReach(); liveMic(); });
