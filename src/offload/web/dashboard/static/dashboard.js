// offload dashboard: reads the JSON API, follows the live stream, no build step.
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

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function duration(job) {
  if (!job.started_at) return "—";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  const seconds = Math.max(0, (end - new Date(job.started_at)) / 1000);
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function badge(state) {
  return el("span", { class: `badge state-${state}`, text: state });
}

function jobLink(id) {
  return el("a", { href: `${cfg.root}/jobs/${id}`, class: "mono", text: id.slice(0, 8) + "…", title: id });
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

function setupToken(start) {
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

function follow(path, params, onJob, onReady) {
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
  source.addEventListener("job", (msg) => onJob(JSON.parse(msg.data)));
  source.addEventListener("error", () => {
    dot.classList.remove("on");
    label.textContent = "reconnecting…";
  });
  window.addEventListener("pagehide", () => source.close());
  return source;
}

async function act(path, doneText) {
  try {
    await api(path, { method: "POST", body: "{}" });
    notice(doneText);
    return true;
  } catch (err) {
    notice(err.message, true);
    return false;
  }
}

// ---- overview ------------------------------------------------------------------

const MINUTE = 60 * 1000;
const WINDOW = 30;

function emptyBuckets() {
  return Array.from({ length: WINDOW }, () => ({ ok: 0, dead: 0 }));
}

function bucketOf(iso, now) {
  const age = Math.floor((now - new Date(iso)) / MINUTE);
  return age >= 0 && age < WINDOW ? WINDOW - 1 - age : -1;
}

const outcomes = [];

function countOutcome(event) {
  if (event.kind === "succeeded" || event.kind === "dead") outcomes.push({ kind: event.kind, at: event.at });
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function drawChart() {
  const now = Date.now();
  const buckets = emptyBuckets();
  for (const o of outcomes) {
    const i = bucketOf(o.at, now);
    if (i >= 0) buckets[i][o.kind === "succeeded" ? "ok" : "dead"] += 1;
  }
  const width = 600, height = 160, pad = 20;
  const peak = Math.max(1, ...buckets.map((b) => b.ok + b.dead));
  const step = (width - pad) / WINDOW;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "bars",
    preserveAspectRatio: "none" });
  const totals = buckets.reduce((t, b) => ({ ok: t.ok + b.ok, dead: t.dead + b.dead }), { ok: 0, dead: 0 });
  const title = svg("title", {});
  title.textContent = `${totals.ok} succeeded and ${totals.dead} dead in the last ${WINDOW} minutes`;
  chart.append(title);
  const points = [];
  buckets.forEach((b, i) => {
    const x = pad + i * step;
    const okH = (b.ok / peak) * (height - pad);
    const deadH = (b.dead / peak) * (height - pad);
    chart.append(svg("rect", { x, y: height - okH, width: step - 2, height: okH, class: "ok" }));
    chart.append(svg("rect", { x, y: height - okH - deadH, width: step - 2, height: deadH, class: "bad" }));
    const all = b.ok + b.dead;
    if (all) points.push(`${x + step / 2},${height - (b.dead / all) * (height - pad)}`);
  });
  if (points.length > 1) chart.append(svg("polyline", { points: points.join(" "), class: "rate" }));
  chart.append(svg("line", { x1: pad, y1: height, x2: width, y2: height, class: "axis" }));
  $("#chart").replaceChildren(chart);
  const all = totals.ok + totals.dead;
  const rate = all ? ((totals.dead / all) * 100).toFixed(1) : "0.0";
  $("#chart-summary").textContent = `${title.textContent}; failure rate ${rate}%.`;
}

async function loadHistory() {
  // The feed is read oldest first; a bounded number of pages keeps a large
  // store from stalling the page, at the cost of older minutes in the chart.
  let after = 0;
  for (let page = 0; page < 20; page += 1) {
    const body = await api(`/events?after=${after}&limit=500`);
    body.events.forEach(countOutcome);
    if (body.events.length < 500) break;
    after = body.cursor;
  }
}

async function drawQueues() {
  const body = await api("/queues");
  const states = ["scheduled", "queued", "running", "succeeded", "cancelled", "dead"];
  const rows = body.queues.map((q) => el("tr", {},
    el("th", { scope: "row", text: q.name }),
    ...states.map((s) => el("td", { class: "num", text: String(q.counts[s]) }))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, text: "No jobs yet." })));
  $("#queues-table tbody").replaceChildren(...rows);
}

async function drawWorkers() {
  const body = await api("/workers");
  const items = body.workers.map((w) => el("li", {},
    el("span", { class: "mono", text: w.id }), ` — ${w.running} running on ${w.queues.join(", ")}`));
  if (!items.length) items.push(el("li", { text: "No worker is running a job right now." }));
  $("#workers-list").replaceChildren(...items);
}

async function overviewPage() {
  const refresh = throttle(() => Promise.all([drawQueues(), drawWorkers()]).catch(report), 300);
  await loadHistory();
  drawChart();
  setInterval(drawChart, 15000);
  follow("/stream", {}, (msg) => {
    countOutcome(msg.event);
    drawChart();
    refresh();
  }, () => refresh());
}

// ---- jobs ----------------------------------------------------------------------

const jobRows = new Map();

function progressCell(job) {
  if (job.progress === null || job.progress === undefined) return el("td", { text: "—" });
  return el("td", {}, el("progress", { max: 1, value: job.progress,
    "aria-label": `progress of ${job.id}` }), ` ${Math.round(job.progress * 100)}%`);
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

function filters() {
  const form = new FormData($("#filters"));
  const query = new URLSearchParams();
  for (const key of ["state", "queue", "tenant"]) if (form.get(key)) query.set(key, form.get(key));
  const search = (form.get("search") || "").trim();
  return { query, search };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
let nextBefore = null;

async function loadJobs(append = false) {
  const { query, search } = filters();
  if (UUID.test(search)) {
    location.href = `${cfg.root}/jobs/${search.toLowerCase()}`;
    return;
  }
  if (search) query.set("task", search);
  if (append && nextBefore) query.set("before", nextBefore);
  const body = await api(`/jobs?${query}`);
  nextBefore = body.next_before;
  $("#more").hidden = !nextBefore;
  if (!append) jobRows.clear();
  const rows = body.jobs.map(jobRow);
  const tbody = $("#jobs-table tbody");
  if (append) tbody.append(...rows);
  else tbody.replaceChildren(...rows);
}

function updateRow(job) {
  const row = jobRows.get(job.id);
  if (!row) return false;
  row.replaceWith(jobRow({ ...job }));
  return true;
}

async function jobsPage() {
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); loadJobs().catch(report); });
  $("#more").addEventListener("click", () => loadJobs(true).catch(report));
  const reload = throttle(() => loadJobs().catch(report), 500);
  follow("/stream", {}, (msg) => {
    if (!msg.job || !updateRow(msg.job)) reload();
  }, () => loadJobs().catch(report));
}

// ---- one job -------------------------------------------------------------------

let current = null;

function fact(name, value) {
  return [el("dt", { text: name }), el("dd", { text: value })];
}

function drawJob(job) {
  current = { ...(current || {}), ...job };
  const j = current;
  $("#job-state").replaceWith(Object.assign(badge(j.state), { id: "job-state" }));
  $("#cancel").disabled = ENDED.includes(j.state) || j.cancel_requested;
  $("#retry").disabled = !["dead", "cancelled"].includes(j.state);
  $("#job-progress").value = j.progress || (j.state === "succeeded" ? 1 : 0);
  $("#progress-text").textContent = j.progress === null || j.progress === undefined
    ? "" : `${Math.round(j.progress * 100)}% ${j.progress_message || ""}`;
  $("#job-facts").replaceChildren(
    ...fact("Task", j.task), ...fact("Queue", j.queue), ...fact("Tenant", j.tenant),
    ...fact("Attempts", `${j.attempts} of ${j.max_attempts ?? "?"}`),
    ...fact("Created", when(j.created_at)), ...fact("Started", when(j.started_at)),
    ...fact("Finished", when(j.finished_at)), ...fact("Duration", duration(j)),
    ...fact("Worker", j.worker_id || "—"));
}

function drawDetail(job) {
  drawJob(job);
  $("#job-args").textContent = pretty(job.args);
  $("#job-result").textContent = pretty(job.result);
  $("#job-checkpoint").textContent = pretty(job.checkpoint);
  $("#job-error").textContent = job.error ? `${job.error.type}: ${job.error.message}` : "—";
  $("#job-traceback").textContent = (job.error && job.error.traceback) || "";
}

function timelineItem(event) {
  const data = Object.keys(event.data || {}).length ? ` ${JSON.stringify(event.data)}` : "";
  return el("li", { "data-kind": event.kind },
    el("time", { datetime: event.at, text: when(event.at) }), " ",
    el("strong", { text: event.kind }), el("span", { class: "muted", text: data }));
}

async function jobPage() {
  const id = cfg.jobId;
  let body;
  try {
    body = await api(`/jobs/${id}`);
  } catch (err) {
    notice(err.status === 404 ? "No such job (or not visible with this token)." : err.message, true);
    return;
  }
  drawDetail(body);
  $("#timeline").replaceChildren(...body.events.map(timelineItem));
  const last = body.events.length ? body.events[body.events.length - 1].id : 0;
  const refetch = throttle(() => api(`/jobs/${id}`).then(drawDetail).catch(report), 100);
  $("#cancel").addEventListener("click", async () => {
    if (await act(`/jobs/${id}/cancel`, "Cancellation requested.")) refetch();
  });
  $("#retry").addEventListener("click", async () => {
    if (await act(`/jobs/${id}/retry`, "Queued again.")) refetch();
  });
  follow(`/jobs/${id}/stream`, { after: last }, (msg) => {
    $("#timeline").append(timelineItem(msg.event));
    if (msg.job) drawJob(msg.job);
    if (msg.event.kind !== "progress") refetch();
  });
}

// ---- dead letter ---------------------------------------------------------------

function deadRow(job) {
  const error = job.error ? `${job.error.type}: ${job.error.message}` : "—";
  const retry = el("button", { type: "button", class: "secondary",
    "aria-label": `Retry job ${job.id}`, text: "Retry" });
  retry.addEventListener("click", () => act(`/jobs/${job.id}/retry`, "Queued again.").then(loadDead));
  return el("tr", { "data-job": job.id }, el("td", {}, jobLink(job.id)), el("td", { text: job.task }),
    el("td", { text: error }), el("td", { text: job.tenant }), el("td", { text: when(job.finished_at) }),
    el("td", {}, retry));
}

async function loadDead() {
  const body = await api("/dead?limit=200");
  const rows = body.jobs.map(deadRow);
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, text: "The dead letter is empty." })));
  $("#dead-table tbody").replaceChildren(...rows);
}

async function deadPage() {
  $("#purge").addEventListener("click", async () => {
    if (!confirm("Delete every dead job for good?")) return;
    try {
      const body = await api("/dead/purge", { method: "POST", body: "{}" });
      notice(`Purged ${body.purged} dead job(s).`);
      await loadDead();
    } catch (err) {
      notice(err.message, true);
    }
  });
  const reload = throttle(() => loadDead().catch(report), 300);
  follow("/stream", {}, (msg) => {
    if (["dead", "retried"].includes(msg.event.kind)) reload();
  }, () => loadDead().catch(report));
}

// ---- widget demo ---------------------------------------------------------------

function widgetPage() {
  $("#live-text").textContent = "widget below";
  const show = () => {
    const widget = document.createElement("offload-jobs");
    widget.setAttribute("tenant", $("#demo-tenant").value.trim() || "default");
    widget.setAttribute("api", cfg.api);
    if (token()) widget.setAttribute("token", token());
    $("#demo-host").replaceChildren(widget);
  };
  $("#demo-form").addEventListener("submit", (e) => { e.preventDefault(); show(); });
  show();
}

// ---- start ---------------------------------------------------------------------

function report(err) {
  notice(err.message || String(err), true);
}

const PAGES = { overview: overviewPage, jobs: jobsPage, job: jobPage, dead: deadPage, widget_demo: widgetPage };

setupToken(() => {
  const page = PAGES[cfg.page];
  if (page) Promise.resolve(page()).catch(report);
});
