// offload dashboard, shared by every page: helpers, the token, the JSON API, the
// live stream and the table rows several pages draw. Each page adds its own script
// from pages/ (plain deferred scripts, no build step).
"use strict";

const cfg = document.body.dataset;
const TOKEN_KEY = "offload-token";
const ENDED = ["succeeded", "cancelled", "dead"];

// ---- helpers -------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) node.append(child);
  return node;
}

const $ = (selector) => document.querySelector(selector);

function svg(tag, attrs, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function duration(job) {
  if (!job.started_at) return "—";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  const seconds = Math.max(0, (end - new Date(job.started_at)) / 1000);
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function badge(state) {
  return el("span", { class: `badge state-${state}`, text: state });
}

// UUIDv7 ids begin with their creation time, so rows made together share the
// start; the random tail is what tells them apart, and is what a link shows.
function shortId(id) {
  return [el("span", { class: "head", text: `${id.slice(0, 4)}…`, "aria-hidden": "true" }), id.slice(-8)];
}

function idLink(href, id) {
  return el("a", { href, class: "id", title: id, "aria-label": id }, ...shortId(id));
}

function jobLink(id) {
  return idLink(`${cfg.root}/jobs/${id}`, id);
}

function pretty(value) {
  return value === null || value === undefined ? "—" : JSON.stringify(value, null, 2);
}

function notice(text, isError = false) {
  const box = $("#notice");
  box.textContent = text;
  box.classList.toggle("error", isError);
}

function throttle(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}

// ---- token and API ---------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function askToken(message = "") {
  const dialog = $("#token-dialog");
  $("#token-error").textContent = message;
  if (!dialog.open) dialog.showModal();
  $("#token-input").focus();
}

// A link printed at start (`/?token=…`, as Jupyter does) hands the token over
// once: it moves to this tab's sessionStorage and leaves the address bar, so it
// is neither bookmarked nor shown over a shoulder.
function tokenFromAddress() {
  const url = new URL(location.href);
  const given = url.searchParams.get("token");
  if (!given) return;
  sessionStorage.setItem(TOKEN_KEY, given);
  url.searchParams.delete("token");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

function setupToken(start) {
  tokenFromAddress();
  const form = $("#token-form");
  form.addEventListener("submit", () => {
    sessionStorage.setItem(TOKEN_KEY, $("#token-input").value.trim());
    location.reload();
  });
  const change = $("#token-change");
  if (change) change.addEventListener("click", () => askToken());
  if (cfg.auth === "required" && !token()) askToken();
  else start();
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(cfg.api + path, { ...options, headers });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    askToken("That token was refused.");
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, body || {});
  return body;
}

// `kind` is the SSE event name carrying the data: "job" on job streams,
// "batch" on a batch's stream. `onControl` receives the `control` messages of
// /stream: a pause or resume (`event.kind` "paused"/"resumed", with the
// `pauses` now in force) or a finished batch ("batch_finished", with `batch`).
function follow(path, params, onMessage, onReady, kind = "job", onControl = null) {
  const query = new URLSearchParams(params);
  if (token()) query.set("token", token());
  const source = new EventSource(`${cfg.api}${path}?${query}`);
  const dot = $("#live-dot");
  const label = $("#live-text");
  source.addEventListener("ready", (msg) => {
    dot.classList.add("on");
    label.textContent = "live";
    if (onReady) onReady(JSON.parse(msg.data));
  });
  source.addEventListener(kind, (msg) => onMessage(JSON.parse(msg.data)));
  if (onControl) source.addEventListener("control", (msg) => onControl(JSON.parse(msg.data)));
  source.addEventListener("error", () => {
    dot.classList.remove("on");
    label.textContent = "reconnecting…";
  });
  window.addEventListener("pagehide", () => source.close());
  return source;
}

async function act(path, doneText, body = {}) {
  try {
    await api(path, { method: "POST", body: JSON.stringify(body) });
    notice(doneText);
    return true;
  } catch (err) {
    notice(err.message, true);
    return false;
  }
}

// ---- who is asking, and pauses -----------------------------------------------------

let whoami = null;

function me() {
  if (!whoami) whoami = api("/me");
  return whoami;
}

function covers(pause, tenant, queue) {
  return (pause.tenant === null || pause.tenant === tenant) && (pause.queue === null || pause.queue === queue);
}

function describeScope(scope) {
  if (scope.tenant === null) return scope.queue === null ? "everything" : `queue ${scope.queue} (every tenant)`;
  return scope.queue === null ? `tenant ${scope.tenant}` : `queue ${scope.queue} of tenant ${scope.tenant}`;
}

function exactPause(pauses, scope) {
  return pauses.find((p) => p.tenant === scope.tenant && p.queue === scope.queue);
}

// What a queue's badge says: an admin sees pauses of the queue for every tenant
// (and names tenants paused on it alone); a tenant token sees what holds back
// its own jobs in that queue.
function queueStatus(who, pauses, queue) {
  if (!who.admin) return pauses.some((p) => covers(p, who.tenant, queue)) ? "paused" : null;
  if (pauses.some((p) => p.tenant === null && (p.queue === null || p.queue === queue))) return "paused";
  const some = pauses.filter((p) => p.tenant !== null && p.queue === queue).map((p) => p.tenant);
  return some.length ? `paused for ${some.join(", ")}` : null;
}

function pausedBadge(text) {
  return el("span", { class: "badge paused", text });
}

// ---- lists shared by several pages ---------------------------------------------

const STATES = ["scheduled", "queued", "running", "succeeded", "cancelled", "dead"];

const jobRows = new Map();

function progressCell(job) {
  const value = job.state === "succeeded" ? 1 : job.progress;
  if (value === null || value === undefined) return el("td", { text: "—" });
  return el("td", {}, el("progress", { max: 1, value,
    "aria-label": `progress of ${job.id}` }), ` ${Math.round(value * 100)}%`);
}

function jobRow(job) {
  const row = el("tr", { "data-job": job.id },
    el("td", {}, jobLink(job.id)), el("td", { text: job.task }),
    el("td", { class: "state" }, badge(job.state)), progressCell(job),
    el("td", { text: job.queue }), el("td", { text: job.tenant }),
    el("td", { class: "num", text: String(job.attempts) }), el("td", { text: when(job.created_at) }));
  jobRows.set(job.id, row);
  return row;
}

function updateRow(job) {
  const row = jobRows.get(job.id);
  if (!row) return false;
  row.replaceWith(jobRow({ ...job }));
  return true;
}

// Filters live in the address bar, so a reload, a bookmark or a shared link
// shows the same list.
function filtersFromAddress(form, keys) {
  const params = new URLSearchParams(location.search);
  for (const key of keys) {
    const field = form.elements.namedItem(key);
    if (field && params.has(key)) field.value = params.get(key);
  }
}

function filtersToAddress(form, keys) {
  const data = new FormData(form);
  const params = new URLSearchParams();
  for (const key of keys) {
    const value = String(data.get(key) || "").trim();
    if (value) params.set(key, value);
  }
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : ""));
}

function fact(name, value) {
  return [el("dt", { text: name }), el("dd", { text: value })];
}

function batchState(b) {
  if (b.finished_at) return { text: "finished", state: "succeeded" };
  if (b.done) return { text: "ended", state: "succeeded" };
  return { text: "in progress", state: "running" };
}

function batchBadge(b) {
  const s = batchState(b);
  return el("span", { class: `badge state-${s.state}`, text: s.text });
}

function progressText(b) {
  if (!b.total) return "no jobs yet";
  return `${b.ended} of ${b.total} ended (${Math.round(b.progress * 100)}%)`;
}

function countsText(b) {
  const parts = STATES.filter((s) => b.counts[s]).map((s) => `${b.counts[s]} ${s}`);
  return parts.length ? parts.join(", ") : "—";
}

// A workflow is a batch marked as one; its state is read from the counts as the
// server's `Workflow.state` reads it from its jobs.
function workflowState(b) {
  const c = b.counts;
  if (!b.total || b.ended < b.total) return "running";
  if (c.succeeded === b.total) return "succeeded";
  return c.dead ? "dead" : "cancelled";
}

function batchLabel(b) {
  return b.name ? `batch ${b.name}` : `batch ${b.id}`;
}

// ---- start ---------------------------------------------------------------------

function report(err) {
  notice(err.message || String(err), true);
}

// Each page's script ends by handing its entry point here; shared code runs first
// because deferred scripts run in document order.
function startPage(page) {
  setupToken(() => Promise.resolve(page()).catch(report));
}
