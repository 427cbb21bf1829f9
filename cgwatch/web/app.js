// cgwatch's web page: the containers with live CPU and memory charts against their limits, and a
// form that changes limits through the same authenticated API as curl and the CLI.
// No framework, no build step. The token lives in sessionStorage (this tab only) and travels in
// the Authorization header; never in a URL or a cookie. Every value from the API is written as
// text (textContent), never as HTML.
"use strict";

const TOKEN_KEY = "cgwatch.token";
const POLL_MS = 2000;
const HISTORY = 150;                        // samples kept per container: 5 minutes at 2 s
const SPARK_SPAN = 45;                      // samples a table sparkline shows: 90 s
// Rows in the table at once: a page, so 3000 containers cost 100 rows' DOM and 200 sparklines a
// poll, not 3000 and 6000 (bench/web_bench.py: first paint at 3000). The filter narrows the rest.
const PAGE_SIZE = 100;
const BY_NAME = new Intl.Collator();         // localeCompare's order, without a collator per call
const NOT_CONTAINERS = new Set(["raw", "systemd"]);
const COLORS = { cpu: "#2f6fdb", mem: "#2a9d6f", limit: "#c0392b", throttled: "#e67e22", oom: "#c0392b",
                 grid: "#e3e6ea", text: "#5f6b7a" };

const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  timer: null,
  prev: new Map(),       // cgroup -> {c, t}: the previous reading, for rates
  collection: null,      // the last listing's "collection": the next asks for a newer one
  history: new Map(),    // cgroup -> [{cpu, mem, throttled, oomNew}]
  rows: new Map(),       // cgroup -> <tr>
  latest: new Map(),     // cgroup -> {c, cpu, throttled}
  selected: null,        // cgroup of the container in the detail panel
  page: 0,               // which PAGE_SIZE rows of the filtered, sorted containers are shown
  limitFields: null,     // the limits form's fields, from openapi.json: [{name, id, label, kind, ...}]
};

class Unauthorized extends Error {}

async function api(method, path, body) {
  const headers = { "Authorization": "Bearer " + state.token };
  const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (resp.status === 401) throw new Unauthorized((data && data.message) || "the agent refused the token");
  if (!resp.ok) {
    const err = new Error((data && data.message) || ("HTTP " + resp.status));
    err.status = resp.status;
    throw err;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// Numbers

function humanBytes(n) {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n, i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? v.toFixed(0) + " B" : v.toFixed(1) + " " + units[i];
}

function pct(v) { return v === null || v === undefined ? "-" : v.toFixed(1) + "%"; }

function delta(a, b) {
  if (a === null || a === undefined || b === null || b === undefined || b < a) return null;
  return b - a;
}

function get(obj, ...keys) {
  for (const k of keys) { if (obj === null || obj === undefined) return null; obj = obj[k]; }
  return obj === undefined ? null : obj;
}

function shortName(name) { return /^[0-9a-f]{64}$/.test(name) ? name.slice(0, 12) : name; }

// Rates between two readings of one container, only when it is the same cgroup (same start):
// a recreated container never shows a fake delta.
function rates(prev, c, now) {
  const out = { cpu: null, throttled: null, oomNew: 0 };
  if (!prev || prev.c.started_at !== c.started_at) return out;
  const seconds = (now - prev.t) / 1000;
  const used = delta(get(prev.c, "usage", "cpu", "usage_ns"), get(c, "usage", "cpu", "usage_ns"));
  if (used !== null && seconds > 0) out.cpu = used / 1e9 / seconds * 100;
  if (get(c, "limits", "cpu_quota_us") !== null) {
    const periods = delta(get(prev.c, "usage", "cpu", "periods"), get(c, "usage", "cpu", "periods"));
    const throttled = delta(get(prev.c, "usage", "cpu", "throttled_periods"),
                            get(c, "usage", "cpu", "throttled_periods"));
    if (periods !== null && throttled !== null) out.throttled = periods ? throttled / periods * 100 : 0;
  }
  out.oomNew = delta(get(prev.c, "usage", "memory", "oom_kills"), get(c, "usage", "memory", "oom_kills")) || 0;
  return out;
}

function memoryUsed(c) {
  const ws = get(c, "usage", "memory", "working_set_bytes");
  return ws !== null ? ws : get(c, "usage", "memory", "usage_bytes");
}

// ---------------------------------------------------------------------------------------------
// Charts (canvas): a line of samples, the limit as a dashed line, markers for throttling and OOM kills.

function drawChart(canvas, allPoints, opts) {
  const points = opts.big ? allPoints : allPoints.slice(-SPARK_SPAN);
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * ratio)) { canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio); }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  const values = points.map(opts.value);
  let max = opts.floor || 1;
  for (const v of values) if (v !== null && v > max) max = v;
  if (opts.limit !== null && opts.limit !== undefined && opts.limit > max) max = opts.limit;
  max *= 1.1;
  const pad = opts.big ? 18 : 2;
  const span = opts.big ? HISTORY : SPARK_SPAN;
  const x = (i) => w - 2 - (values.length - 1 - i) * (w - 4) / (span - 1);
  const y = (v) => h - 2 - (v / max) * (h - pad - 2);
  if (opts.big) {
    g.strokeStyle = COLORS.grid; g.lineWidth = 1;
    for (let k = 1; k <= 4; k++) { const yy = y(max / 1.1 * k / 4); g.beginPath(); g.moveTo(0, yy); g.lineTo(w, yy); g.stroke(); }
    g.fillStyle = COLORS.text; g.font = "11px sans-serif";
    g.fillText(opts.label(max / 1.1), 4, 12);
  }
  // Markers first, under the line.
  points.forEach((p, i) => {
    if (opts.throttled && p.throttled) {
      g.fillStyle = COLORS.throttled;
      g.fillRect(x(i) - 1, h - 2 - Math.max(3, (h - pad) * Math.min(p.throttled, 100) / 100 * 0.3), 3,
                 Math.max(3, (h - pad) * Math.min(p.throttled, 100) / 100 * 0.3));
    }
    if (opts.oom && p.oomNew) {
      g.strokeStyle = COLORS.oom; g.lineWidth = 2;
      g.beginPath(); g.moveTo(x(i), 0); g.lineTo(x(i), h); g.stroke();
    }
  });
  if (opts.limit !== null && opts.limit !== undefined) {
    g.strokeStyle = COLORS.limit; g.lineWidth = 1; g.setLineDash([4, 3]);
    g.beginPath(); g.moveTo(0, y(opts.limit)); g.lineTo(w, y(opts.limit)); g.stroke();
    g.setLineDash([]);
    if (opts.big) { g.fillStyle = COLORS.limit; g.fillText("limit " + opts.label(opts.limit), w - 110, y(opts.limit) - 3); }
  }
  g.strokeStyle = opts.color; g.lineWidth = opts.big ? 2 : 1.5;
  g.beginPath();
  let started = false;
  values.forEach((v, i) => {
    if (v === null) { started = false; return; }
    if (!started) { g.moveTo(x(i), y(v)); started = true; } else g.lineTo(x(i), y(v));
  });
  g.stroke();
}

function cpuChartOpts(c, big) {
  const cpus = get(c, "limits", "cpus");
  return { value: (p) => p.cpu, limit: cpus === null ? null : cpus * 100, floor: 100, color: COLORS.cpu,
           throttled: true, big, label: (v) => v.toFixed(0) + "%" };
}

function memChartOpts(c, big) {
  return { value: (p) => p.mem, limit: get(c, "limits", "memory_limit_bytes"), floor: 1 << 20, color: COLORS.mem,
           oom: true, big, label: humanBytes };
}

// ---------------------------------------------------------------------------------------------
// The table

function cell(tr, cls, text) {
  const td = document.createElement("td");
  td.className = cls;
  if (text !== undefined) td.textContent = text;
  tr.appendChild(td);
  return td;
}

function makeRow(c) {
  const tr = document.createElement("tr");
  tr.dataset.id = c.id;
  tr.dataset.cgroup = c.cgroup;
  tr.tabIndex = 0;
  const name = cell(tr, "name");
  const strong = document.createElement("strong");
  const small = document.createElement("small");
  name.append(strong, document.createElement("br"), small);
  cell(tr, "num cpu");
  cell(tr, "chart").appendChild(Object.assign(document.createElement("canvas"), { className: "spark cpu-chart", width: 140, height: 34 }));
  cell(tr, "num mem");
  cell(tr, "chart").appendChild(Object.assign(document.createElement("canvas"), { className: "spark mem-chart", width: 140, height: 34 }));
  cell(tr, "num throttled");
  cell(tr, "num oom");
  cell(tr, "num pids");
  tr.addEventListener("click", () => select(c.cgroup));
  tr.addEventListener("keydown", (e) => { if (e.key === "Enter") select(c.cgroup); });
  return tr;
}

function fillRow(tr, c, r, history) {
  tr.querySelector(".name strong").textContent = shortName(c.name);
  tr.querySelector(".name small").textContent = c.runtime + (c.image ? " · " + c.image : "") + " · " + c.cgroup;
  tr.querySelector(".name").title = c.id;
  tr.querySelector(".cpu").textContent = r.cpu === null ? "-" : r.cpu.toFixed(1);
  const cpus = get(c, "limits", "cpus");
  tr.querySelector(".cpu").title = cpus === null ? "no CPU limit" : "limit " + cpus + " CPUs";
  const mem = memoryUsed(c), limit = get(c, "limits", "memory_limit_bytes");
  tr.querySelector(".mem").textContent = humanBytes(mem) + " / " + (limit === null ? "unlimited" : humanBytes(limit));
  const thr = tr.querySelector(".throttled");
  thr.textContent = r.throttled === null ? "-" : pct(r.throttled);
  thr.classList.toggle("warn", !!r.throttled);
  const oom = tr.querySelector(".oom");
  const kills = get(c, "usage", "memory", "oom_kills");
  oom.textContent = kills === null ? "-" : String(kills);
  oom.classList.toggle("bad", !!kills);
  const pids = get(c, "usage", "tasks", "pids_current") ?? get(c, "usage", "tasks", "threads");
  const pidsMax = get(c, "limits", "pids_max");
  tr.querySelector(".pids").textContent = (pids === null ? "-" : pids) + (pidsMax === null ? "" : " / " + pidsMax);
  tr.classList.toggle("selected", state.selected === c.cgroup);
  drawChart(tr.querySelector(".cpu-chart"), history, cpuChartOpts(c, false));
  drawChart(tr.querySelector(".mem-chart"), history, memChartOpts(c, false));
}

function visible(c) {
  if (!$("show-all").checked && NOT_CONTAINERS.has(c.runtime)) return false;
  const q = $("filter").value.trim().toLowerCase();
  return !q || [c.name, c.id, c.cgroup].some((v) => (v || "").toLowerCase().includes(q));
}

function sortKey(entry) {
  const by = $("sort").value;
  if (by === "cpu") return -(entry.cpu || 0);
  if (by === "memory") return -(memoryUsed(entry.c) || 0);
  return 0;
}

function render() {
  const body = $("containers").tBodies[0];
  const matching = [...state.latest.values()].filter((e) => visible(e.c));
  matching.sort((a, b) => sortKey(a) - sortKey(b) || BY_NAME.compare(a.c.name, b.c.name));
  const pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
  state.page = Math.min(Math.max(state.page, 0), pages - 1);
  const first = state.page * PAGE_SIZE;
  const entries = matching.slice(first, first + PAGE_SIZE);
  renderPager(first, entries.length, matching.length, pages);
  const wanted = new Set(entries.map((e) => e.c.cgroup));
  for (const [cgroup, tr] of state.rows) if (!wanted.has(cgroup)) { tr.remove(); state.rows.delete(cgroup); }
  entries.forEach((e, i) => {
    let tr = state.rows.get(e.c.cgroup);
    if (!tr) { tr = makeRow(e.c); state.rows.set(e.c.cgroup, tr); }
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    fillRow(tr, e.c, e, state.history.get(e.c.cgroup) || []);
  });
  $("empty").hidden = entries.length > 0;
  renderDetail();
}

function renderPager(first, shown, matching, pages) {
  $("page-info").textContent = matching === 0 ? "" :
    (first + 1) + "–" + (first + shown) + " of " + matching + (matching < state.latest.size ? " matching" : "");
  $("prev").disabled = state.page === 0;
  $("next").disabled = state.page >= pages - 1;
  $("pager").hidden = pages <= 1;
}

function turnPage(by) {
  state.page += by;
  render();
}

function update(containers, now) {
  const seen = new Set();
  for (const c of containers) {
    seen.add(c.cgroup);
    const r = rates(state.prev.get(c.cgroup), c, now);
    const prev = state.prev.get(c.cgroup);
    let h = state.history.get(c.cgroup);
    if (!h || (prev && prev.c.started_at !== c.started_at)) { h = []; state.history.set(c.cgroup, h); }
    h.push({ cpu: r.cpu, mem: memoryUsed(c), throttled: r.throttled, oomNew: r.oomNew });
    if (h.length > HISTORY) h.shift();
    state.prev.set(c.cgroup, { c, t: now });
    state.latest.set(c.cgroup, { c, cpu: r.cpu, throttled: r.throttled });
  }
  for (const cgroup of [...state.latest.keys()]) {
    if (!seen.has(cgroup)) { state.latest.delete(cgroup); state.prev.delete(cgroup); state.history.delete(cgroup); }
  }
  render();
}

// ---------------------------------------------------------------------------------------------
// The detail panel and the limits form

// The form's inputs are the LimitRequest properties the API's own description marks with
// x-cgwatch-form (cgwatch/limits/fields.py declares them once, for the API, the CLI and this page).
function buildLimitForm(openapi) {
  const properties = get(openapi, "components", "schemas", "LimitRequest", "properties") || {};
  const fields = [];
  for (const [name, schema] of Object.entries(properties)) {
    const form = schema["x-cgwatch-form"];
    if (!form) continue;
    const label = Object.assign(document.createElement("label"), { htmlFor: form.id, textContent: form.label });
    const input = Object.assign(document.createElement("input"), { id: form.id, placeholder: "e.g. " + form.example,
                                                                   spellcheck: false });
    if (form.inputmode) input.inputMode = form.inputmode;
    $("limit-submit").before(label, input);
    fields.push({ name, ...form });
  }
  state.limitFields = fields;
}

function limitText(v, unit) {
  if (v === null) return "unlimited";
  return unit === "bytes" ? humanBytes(v) : String(v);
}

function select(cgroup) {
  const changed = state.selected !== cgroup;
  state.selected = cgroup;
  if (changed) {
    const e = state.latest.get(cgroup);
    $("limit-ref").value = e ? e.c.id : "";
    for (const f of state.limitFields || []) $(f.id).value = "";
    $("limit-result").textContent = "";
    $("limit-result").className = "";
  }
  render();
  $("detail").scrollIntoView({ block: "nearest" });
}

function limitsText(l) {
  return "CPUs " + (l.cpus === null ? "unlimited" : l.cpus) +
    ", memory " + (l.memory_limit_bytes === null ? "unlimited" : humanBytes(l.memory_limit_bytes)) +
    ", PIDs " + (l.pids_max === null ? "unlimited" : l.pids_max);
}

function renderDetail() {
  const e = state.selected && state.latest.get(state.selected);
  $("detail").hidden = !e;
  if (!e) return;
  const c = e.c;
  $("detail-name").textContent = shortName(c.name);
  $("detail-meta").textContent = c.runtime + " · " + c.id + " · cgroup " + c.cgroup +
    (c.image ? " · image " + c.image : "") + " · now: " + limitsText(c.limits);
  for (const f of state.limitFields || []) $(f.id).placeholder = limitText(c.limits[f.current], f.unit);
  const h = state.history.get(c.cgroup) || [];
  drawChart($("detail-cpu"), h, cpuChartOpts(c, true));
  drawChart($("detail-mem"), h, memChartOpts(c, true));
}

function fieldValue(id, kind) {
  const raw = $(id).value.trim();
  if (raw === "") return undefined;
  if (raw.toLowerCase() === "unlimited") return null;
  if (kind === "int" && /^-?\d+$/.test(raw)) return Number(raw);
  return raw;  // the API validates and says what is wrong
}

async function submitLimits(event) {
  event.preventDefault();
  const result = $("limit-result");
  const ref = $("limit-ref").value;
  const body = {};
  const fields = state.limitFields || [];
  for (const f of fields) {
    const v = fieldValue(f.id, f.kind);
    if (v !== undefined) body[f.name] = v;
  }
  if (!ref || Object.keys(body).length === 0) {
    result.textContent = "Give at least one limit.";
    result.className = "error";
    return;
  }
  $("limit-submit").disabled = true;
  result.textContent = "Applying…";
  result.className = "";
  try {
    const reply = await api("PATCH", "/api/v1/containers/" + encodeURIComponent(ref) + "/limits", body);
    result.textContent = "Applied (" + reply.applied_via + "): " + limitsText(reply.limits) +
      (reply.notes && reply.notes.length ? ". " + reply.notes.join(" ") : "");
    result.className = "ok";
    for (const f of fields) $(f.id).value = "";
    refreshNow();
  } catch (e) {
    if (e instanceof Unauthorized) { logout(e.message); return; }
    result.textContent = "Refused: " + e.message;
    result.className = "error";
  } finally {
    $("limit-submit").disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Polling, login, logout

function setStatus(text, bad) {
  $("status").textContent = text;
  $("status").classList.toggle("error", !!bad);
}

async function poll() {
  state.timer = null;
  try {
    if (state.limitFields === null) buildLimitForm(await api("GET", "/api/v1/openapi.json"));
    // A collection begun after the last one (rates over a reading served twice would be 0), timed
    // when the agent read it.
    const after = state.collection != null ? "?after=" + encodeURIComponent(state.collection) : "";
    const data = await api("GET", "/api/v1/containers" + after);
    state.collection = data.collection;
    update(data.containers, data.collected_at != null ? data.collected_at * 1000 : performance.now());
    setStatus("updated " + new Date().toLocaleTimeString());
  } catch (e) {
    if (e instanceof Unauthorized) { logout(e.message); return; }
    setStatus("cannot read the agent: " + e.message, true);
  }
  if (state.token && state.timer === null) state.timer = setTimeout(poll, POLL_MS);
}

function refreshNow() {
  if (state.timer !== null) { clearTimeout(state.timer); state.timer = null; }
  poll();
}

async function showHost() {
  try {
    const resp = await fetch("/healthz", { cache: "no-store", credentials: "omit" });
    const h = await resp.json();
    const docker = h.docker === null ? "Docker integration off" : (h.docker.connected ? "Docker connected" : "Docker not connected");
    $("host").textContent = "cgroup " + h.cgroup_mode + " · " + docker;
  } catch (e) {
    $("host").textContent = "";
  }
}

function login(token) {
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("login").hidden = true;
  $("main").hidden = false;
  $("forget").hidden = false;
  $("login-error").hidden = true;
  refreshNow();
}

function logout(message) {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.timer !== null) { clearTimeout(state.timer); state.timer = null; }
  $("main").hidden = true;
  $("forget").hidden = true;
  $("login").hidden = false;
  $("token").value = "";
  $("login-error").textContent = message || "";
  $("login-error").hidden = !message;
  setStatus("");
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    if (token) login(token);
  });
  $("forget").addEventListener("click", () => logout(""));
  $("limits-form").addEventListener("submit", submitLimits);
  for (const id of ["filter", "show-all", "sort"]) $(id).addEventListener("input", () => { state.page = 0; render(); });
  $("prev").addEventListener("click", () => turnPage(-1));
  $("next").addEventListener("click", () => turnPage(1));
  showHost();
  if (state.token) login(state.token);
});
