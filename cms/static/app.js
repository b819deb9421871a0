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
    if (type === "lines") set(el.name, el.value.split(/[\s,;]+/).filter(Boolean));
    else if (type === "int") set(el.name, parseInt(el.value, 10));
    else if (type === "num") set(el.name, parseFloat(el.value));
    else set(el.name, el.value);
  });
  return out;
}

// What happened, said after every action: the message is kept across the reload or the
// next page, and shown at the top of it.
const saved = () => (lang() === "en" ? "Saved." : "Đã lưu.");
function flash(text) {
  try { sessionStorage.setItem("loa-flash", text); } catch (_) { /* private mode: shown in place only */ }
}
// A short message at the bottom of the screen, for actions that keep the page as it is.
function toast(text) {
  if (!text) return;
  document.getElementById("toast")?.remove();
  const box = Object.assign(document.createElement("div"), { id: "toast", className: "msg ok", textContent: text });
  box.setAttribute("role", "status");
  document.body.append(box);
  setTimeout(() => box.remove(), 4000);
}
function showFlash() {
  let text = null;
  try { text = sessionStorage.getItem("loa-flash"); sessionStorage.removeItem("loa-flash"); } catch (_) { return; }
  const title = document.querySelector("main h1");
  if (!text || !title) return;
  const box = Object.assign(document.createElement("div"), { id: "flash", className: "msg ok", textContent: text });
  box.setAttribute("role", "status");
  title.after(box);
}

function after(form, data) {
  const go = form.dataset.next;
  const msg = form.dataset.ok || saved();
  if (data && data.enrollment_code) {
    // Shown once: the technician types it on the node (`speaker-node enroll`).
    show(form, msg + " " + data.enrollment_code, true);
    return;
  }
  if (data && data.token) {
    // An API token, shown once: no reload, or it would be lost.
    show(form, msg + " " + data.token, true);
    return;
  }
  if (form.dataset.command !== undefined) return commandSent(form, data);
  show(form, msg, true);
  flash(msg);
  if (go) setTimeout(() => { location.href = go.replace("{id}", data && data.id); }, 400);
  else setTimeout(() => location.reload(), 400);
}

// Pages that follow a changing state (a node, the fleet) refresh that part by themselves.
async function refresh(box) {
  try {
    const res = await fetch(box.dataset.refresh, { credentials: "same-origin", headers: { "Accept-Language": lang() } });
    if (res.ok) { box.innerHTML = await res.text(); labelCells(box); }
  } catch (_) { /* offline for a moment: the next round tries again */ }
  return box;
}
const refreshNode = () => { const box = document.getElementById("node-now"); return box ? refresh(box) : null; };

// A remote command: said sent, then its result as the node reports it, without a reload.
function commandSent(form, data) {
  if (!data || !data.delivered) return show(form, form.dataset.undelivered, false);
  show(form, form.dataset.ok, true);
  let tries = 0;
  const look = async () => {
    const box = await refreshNode();
    const row = box && box.querySelector('tr[data-done="' + data.id + '"]');
    if (row) {
      const cells = [...row.cells].slice(1).map(c => c.textContent).filter(Boolean);
      return show(form, cells.join(": "), row.dataset.ok === "true");
    }
    if (++tries < 30) setTimeout(look, 1000);
  };
  setTimeout(look, 300);
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

// A date as Vietnamese write it (25/12/2026, 5/1/2027) -> ISO; ISO passes as it is.
function isoDate(d) {
  const m = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$/.exec(d.trim());
  if (/^\d{4}-\d{2}-\d{2}$/.test(d.trim())) return d.trim();
  const day = m && new Date(Date.UTC(+m[3], +m[2] - 1, +m[1]));
  if (!day || day.getUTCDate() !== +m[1] || day.getUTCMonth() !== +m[2] - 1) {
    throw new Error(lang() === "en" ? "Write dates as dd/mm/yyyy, e.g. 25/12/2026: " + d : "Ngày phải viết dạng dd/mm/yyyy, ví dụ 25/12/2026: " + d);
  }
  return m[3] + "-" + m[2].padStart(2, "0") + "-" + m[1].padStart(2, "0");
}
// A time that must be one: said plainly when it is not.
function strictTime(t) {
  const hm = clockTime(t);
  if (!/^\d{2}:\d{2}$/.test(hm)) {
    throw new Error(lang() === "en" ? "Not a time of day: " + t + " (e.g. 6h30 or 17:30)" : "Giờ không hợp lệ: " + t + " (ví dụ 6h30 hoặc 17:30)");
  }
  return hm;
}

// Schedule editor: plain choices -> a rule object of CONTRACT.md.
function scheduleBody(form) {
  const f = formJson(form);
  const kind = f.rule_kind;
  const times = (f.times || "").split(/[ ,;]+/).filter(Boolean).map(strictTime);
  const offset = form.dataset.offset || "+07:00";
  if (f.from) f.from = isoDate(f.from);
  if (f.until) f.until = isoDate(f.until);
  let rule;
  if (kind === "once") rule = { once: isoDate(f.once_date || "") + "T" + strictTime(f.once_time || "") + ":00" + offset };
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

function upload(form, data) {
  const bar = form.querySelector("progress");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.dataset.upload || form.dataset.record);
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
  xhr.send(data || new FormData(form));
}

// Typed announcements: heard before saving, in the chosen voice and speed.
async function previewSpeech(button) {
  const form = button.form, audio = document.getElementById("tts-audio");
  const f = formJson(form);
  const label = button.textContent;
  button.disabled = true;
  button.textContent = button.dataset.busy;
  try {
    const res = await fetch("/api/v1/content/tts/preview", {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Accept-Language": lang(), "Content-Type": "application/json" },
      body: JSON.stringify({ text: f.text, voice: f.voice, speed: f.speed }),
    });
    if (!res.ok) {
      let data = {};
      try { data = await res.json(); } catch (_) { /* not JSON */ }
      throw new Error(data.message || res.statusText);
    }
    if (audio.src) URL.revokeObjectURL(audio.src);
    audio.src = URL.createObjectURL(await res.blob());
    audio.classList.remove("hidden");
    show(form, "", true);
    form.querySelector(".msg").className = "msg hidden";
    audio.play().catch(() => { /* autoplay refused: the player is there */ });
  } catch (err) {
    show(form, err.message, false);
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

// Recording an announcement in the browser: 16-bit mono WAV, heard back, then uploaded
// like a file (the server checks it as any upload).
function wav(chunks, rate) {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + n * 2));
  const text = (o, s) => [...s].forEach((ch, i) => view.setUint8(o + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + n * 2, true); text(8, "WAVEfmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, n * 2, true);
  let o = 44;
  for (const c of chunks) for (const x of c) { view.setInt16(o, Math.max(-1, Math.min(1, x)) * 0x7fff, true); o += 2; }
  return new Blob([view], { type: "audio/wav" });
}
function recorder() {
  const box = document.getElementById("recorder");
  if (!box) return;
  const start = box.querySelector("#rec-start"), stop = box.querySelector("#rec-stop");
  const meter = box.querySelector("#rec-level"), clock = box.querySelector("#rec-time");
  const audio = box.querySelector("#rec-audio"), form = box.querySelector("#record-form");
  const MAX_S = 600;
  let media = null, ctx = null, node = null, chunks = [], rate = 48000, take = null;
  const halt = () => {
    if (node) node.disconnect();
    if (media) media.getTracks().forEach(t => t.stop());
    if (ctx) ctx.close();
    media = ctx = node = null;
    meter.value = 0;
    start.disabled = false; stop.disabled = true;
  };
  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      media = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    } catch (_) { halt(); return show(form, box.dataset.fail, false); }
    ctx = new AudioContext();
    rate = ctx.sampleRate;
    chunks = [];
    node = ctx.createScriptProcessor(4096, 1, 1);
    node.onaudioprocess = e => {
      const x = new Float32Array(e.inputBuffer.getChannelData(0));
      chunks.push(x);
      let sum = 0; for (const v of x) sum += v * v;
      meter.value = Math.min(1, Math.sqrt(sum / x.length) * 4);
      const secs = Math.floor(chunks.length * 4096 / rate);
      clock.textContent = Math.floor(secs / 60) + ":" + String(secs % 60).padStart(2, "0");
      if (secs >= MAX_S) stop.click();
    };
    ctx.createMediaStreamSource(media).connect(node);
    node.connect(ctx.destination);
    stop.disabled = false;
  });
  stop.addEventListener("click", () => {
    halt();
    take = wav(chunks, rate);
    if (audio.src) URL.revokeObjectURL(audio.src);
    audio.src = URL.createObjectURL(take);
    audio.classList.remove("hidden");
  });
  form.addEventListener("submit", e => {
    e.preventDefault();
    if (!take) return show(form, box.dataset.empty, false);
    const data = new FormData(form);
    data.delete("csrf");
    data.append("file", take, "ghi-am.wav");
    upload(form, data);
  });
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
    try { await api("DELETE", d.dataset.delete); flash(d.dataset.ok || saved()); location.reload(); } catch (err) { alert(err.message); }
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
    flash(b.dataset.ok || saved());
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
    labelCells(box);
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
    try {
      await api("PATCH", box.dataset.patch, { [box.dataset.field]: box.checked });
      toast(box.checked ? box.dataset.on : box.dataset.off);
    } catch (err) { alert(err.message); box.checked = !box.checked; }
  }
});
document.addEventListener("click", e => {
  if (e.target.id === "tts-preview") previewSpeech(e.target);
  if (e.target.closest("[data-print]")) window.print();
  // Schedule editor: a picked time joins the list; presets tick their days.
  const add = e.target.closest("[data-add-time]");
  if (add) {
    const pick = document.getElementById("s-time-pick"), list = document.getElementById(add.dataset.addTime);
    if (pick.value && !list.value.split(/[ ,;]+/).map(clockTime).includes(pick.value)) {
      list.value = list.value.trim() ? list.value.trim().replace(/,$/, "") + ", " + pick.value : pick.value;
    }
  }
  const preset = e.target.closest("[data-days]");
  if (preset) {
    const days = preset.dataset.days.split(" ");
    preset.form.querySelectorAll('[name="day"]').forEach(b => { b.checked = days.includes(b.value); });
  }
});
// Phones: each cell carries its column's heading, shown above it when a row is a card.
function labelCells(root) {
  root.querySelectorAll("table").forEach(t => {
    const heads = [...t.querySelectorAll("thead th")].map(th => th.textContent.trim());
    if (!heads.length) return;
    t.querySelectorAll("tbody tr").forEach(tr => [...tr.cells].forEach((td, i) => {
      if (heads[i]) td.dataset.label = heads[i];
    }));
  });
}
document.addEventListener("click", e => {
  const toggle = e.target.closest(".menu-toggle");
  if (!toggle) return;
  const open = toggle.closest("header").classList.toggle("open");
  toggle.setAttribute("aria-expanded", String(open));
});

document.addEventListener("DOMContentLoaded", () => {
  labelCells(document);
  showFlash(); ruleFields(); sourceFields(); followReach(); liveMic(); recorder();
  document.querySelectorAll("[data-refresh]").forEach(box => setInterval(() => refresh(box), 5000));
});
