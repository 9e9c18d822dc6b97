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
// "batch" on a batch's stream. `onPauses` receives the `pauses` messages the
// stream sends when a pause starts or ends.
function follow(path, params, onMessage, onReady, kind = "job", onPauses = null) {
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
  if (onPauses) source.addEventListener("pauses", (msg) => onPauses(JSON.parse(msg.data)));
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
const runs = [];
const startedAt = new Map();

// Run time is read from the feed: a job's last `started` event to its
// `succeeded`, so the figures need no API of their own and follow the stream.
function countOutcome(event) {
  if (event.kind === "started") startedAt.set(event.job_id, new Date(event.at));
  if (event.kind === "succeeded" || event.kind === "dead") outcomes.push({ kind: event.kind, at: event.at });
  if (event.kind === "succeeded" && startedAt.has(event.job_id)) {
    runs.push({ at: event.at, seconds: (new Date(event.at) - startedAt.get(event.job_id)) / 1000 });
    startedAt.delete(event.job_id);
  }
}

function svg(tag, attrs, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function seconds(value) {
  if (value === null) return "—";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  return value < 60 ? `${value.toFixed(1)} s` : `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
}

function countBuckets(now) {
  const buckets = emptyBuckets();
  for (const o of outcomes) {
    const i = bucketOf(o.at, now);
    if (i >= 0) buckets[i][o.kind === "succeeded" ? "ok" : "dead"] += 1;
  }
  return buckets;
}

function drawStats(totals, now) {
  const all = totals.ok + totals.dead;
  const recent = runs.filter((r) => bucketOf(r.at, now) >= 0).map((r) => r.seconds).sort((a, b) => a - b);
  $("#stat-ok").textContent = String(totals.ok);
  $("#stat-dead").textContent = String(totals.dead);
  $("#stat-rate").replaceChildren(`${(all / WINDOW).toFixed(1)}`, el("small", { text: " jobs/min" }));
  $("#stat-failure").textContent = all ? `${((totals.dead / all) * 100).toFixed(1)}%` : "—";
  for (const p of [50, 95, 99]) $(`#stat-p${p}`).textContent = seconds(percentile(recent, p));
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// The chart is drawn at the container's width (not stretched), so its labels
// keep their shape; each minute has a hover target that shows its figures.
function drawChart() {
  const now = Date.now();
  const buckets = countBuckets(now);
  const totals = buckets.reduce((t, b) => ({ ok: t.ok + b.ok, dead: t.dead + b.dead }), { ok: 0, dead: 0 });
  drawStats(totals, now);
  const box = $("#chart");
  const width = Math.max(320, box.clientWidth || 800), height = 240;
  const left = 40, right = 48, top = 10, bottom = 26;
  const plotH = height - top - bottom;
  const peak = Math.max(2, ...buckets.map((b) => b.ok + b.dead));
  const step = (width - left - right) / WINDOW;
  const y = (v) => top + plotH - (v / peak) * plotH;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "bars",
    "aria-labelledby": "chart-summary" });
  for (const v of [0, Math.round(peak / 2), peak]) {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid-line" }));
    chart.append(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, String(v)));
  }
  for (const r of [0, 50, 100]) {
    chart.append(svg("text", { x: width - right + 6, y: top + plotH - (r / 100) * plotH + 4 }, `${r}%`));
  }
  const tip = el("div", { class: "tip", hidden: true, role: "tooltip", id: "chart-tip" });
  const points = [];
  buckets.forEach((b, i) => {
    const x = left + i * step;
    const startMs = now - (WINDOW - i) * MINUTE;
    chart.append(svg("rect", { x: x + 1, y: y(b.ok), width: step - 2, height: plotH + top - y(b.ok), class: "ok" }));
    chart.append(svg("rect", { x: x + 1, y: y(b.ok + b.dead), width: step - 2, height: y(b.ok) - y(b.ok + b.dead), class: "bad" }));
    const all = b.ok + b.dead;
    if (all) points.push(`${x + step / 2},${top + plotH - (b.dead / all) * plotH}`);
    if (i % 5 === 0 || i === WINDOW - 1) {
      chart.append(svg("text", { x: x + step / 2, y: height - 8, "text-anchor": "middle" }, i === WINDOW - 1 ? "now" : clock(startMs)));
    }
    const label = `${clock(startMs)}: ${b.ok} succeeded, ${b.dead} dead` +
      (all ? `, ${((b.dead / all) * 100).toFixed(0)}% failed` : "");
    const hit = svg("rect", { x, y: top, width: step, height: plotH, class: "hit", "data-minute": i });
    hit.append(svg("title", {}, label));
    hit.addEventListener("mouseenter", () => {
      tip.textContent = label;
      tip.hidden = false;
      tip.style.left = `${((x + step / 2) / width) * 100}%`;
      tip.classList.toggle("end", i > WINDOW * 0.7);
      tip.style.top = `${y(all) + 0}px`;
    });
    hit.addEventListener("mouseleave", () => { tip.hidden = true; });
    chart.append(hit);
  });
  if (points.length > 1) chart.append(svg("polyline", { points: points.join(" "), class: "rate" }));
  chart.append(svg("line", { x1: left, y1: top + plotH, x2: width - right, y2: top + plotH, class: "axis" }));
  box.replaceChildren(chart, tip);
  const all = totals.ok + totals.dead;
  const rate = all ? ((totals.dead / all) * 100).toFixed(1) : "0.0";
  $("#chart-summary").textContent =
    `${totals.ok} succeeded and ${totals.dead} dead in the last ${WINDOW} minutes; failure rate ${rate}%.`;
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

const STATES = ["scheduled", "queued", "running", "succeeded", "cancelled", "dead"];

async function drawQueues() {
  const [body, pauses, who] = await Promise.all([api("/queues"), api("/pauses"), me()]);
  const rows = body.queues.map((q) => {
    const status = queueStatus(who, pauses.pauses, q.name);
    return el("tr", { "data-queue": q.name },
      el("th", { scope: "row" }, el("a", { href: `${cfg.root}/jobs?queue=${encodeURIComponent(q.name)}`, text: q.name }),
        status ? " " : "", status ? pausedBadge(status) : ""),
      ...STATES.map((s) => el("td", { class: `num${s === "dead" && q.counts[s] ? " state-dead" : ""}`, text: String(q.counts[s]) })));
  });
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

async function drawAllTime() {
  const body = await api("/stats?days=1");
  const t = body.total;
  const facts = [["Processed", t.processed], ["Succeeded", t.succeeded], ["Failed (dead)", t.failed],
    ["Cancelled", t.cancelled]].flatMap(([name, n]) =>
    [el("dt", { text: name }), el("dd", { text: n.toLocaleString() })]);
  $("#stats-totals").replaceChildren(...facts);
  const today = body.days[body.days.length - 1];
  $("#stats-today").textContent =
    `Today (UTC): ${today.processed.toLocaleString()} processed, ${today.failed.toLocaleString()} failed.`;
}

async function overviewPage() {
  const refresh = throttle(() => Promise.all([drawQueues(), drawWorkers()]).catch(report), 300);
  await loadHistory();
  drawChart();
  // Totals read every ended job not purged yet, so they refresh slowly.
  drawAllTime().catch(report);
  setInterval(() => drawAllTime().catch(report), 60000);
  setInterval(drawChart, 15000);
  window.addEventListener("resize", throttle(drawChart, 200));
  // Pauses come as `pauses` messages on the stream, so nothing polls for them.
  follow("/stream", {}, (msg) => {
    countOutcome(msg.event);
    drawChart();
    refresh();
  }, () => refresh(), "job", () => refresh());
}

// ---- jobs ----------------------------------------------------------------------

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

const JOB_FILTERS = ["search", "state", "queue", "tenant"];

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
  if (!append && !rows.length) rows.push(el("tr", {}, el("td", { colspan: 8, text: "No job matches these filters." })));
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
  const form = $("#filters");
  filtersFromAddress(form, JOB_FILTERS);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    filtersToAddress(form, JOB_FILTERS);
    loadJobs().catch(report);
  });
  $("#more").addEventListener("click", () => loadJobs(true).catch(report));
  const reload = throttle(() => loadJobs().catch(report), 500);
  follow("/stream", {}, (msg) => {
    if (!msg.job || !updateRow(msg.job)) reload();
  }, () => loadJobs().catch(report));
}

// ---- one job -------------------------------------------------------------------

let current = null;
let history_ = [];

function fact(name, value) {
  return [el("dt", { text: name }), el("dd", { text: value })];
}

// The job row forgets its worker once the lease is released, and a retried
// job's times describe its last attempt only; the events keep both.
function lastRun(job) {
  const starts = history_.filter((e) => e.kind === "started");
  const start = starts.length ? starts[starts.length - 1] : null;
  const worker = job.worker_id || (start && start.data && start.data.worker) || null;
  const startedAt = job.started_at || (start && start.at) || null;
  const endKinds = ["succeeded", "dead", "cancelled", "failed", "retry_scheduled"];
  const end = history_.filter((e) => endKinds.includes(e.kind) && (!start || e.id > start.id)).pop();
  const finishedAt = ENDED.includes(job.state) ? (job.finished_at || (end && end.at)) : null;
  return { worker, startedAt, finishedAt };
}

function drawJob(job) {
  current = { ...(current || {}), ...job };
  const j = current;
  const run = lastRun(j);
  $("#job-state").replaceWith(Object.assign(badge(j.state), { id: "job-state" }));
  $("#cancel").hidden = ENDED.includes(j.state);
  $("#cancel").disabled = ENDED.includes(j.state) || j.cancel_requested;
  $("#retry").hidden = !["dead", "cancelled"].includes(j.state);
  $("#retry").disabled = !["dead", "cancelled"].includes(j.state);
  const value = j.state === "succeeded" ? 1 : (j.progress || 0);
  $("#job-progress").value = value;
  const shown = j.state === "succeeded" || (j.progress !== null && j.progress !== undefined);
  $("#progress-text").textContent = shown ? `${Math.round(value * 100)}% ${j.progress_message || ""}` : "";
  $("#job-facts").replaceChildren(
    ...fact("Task", j.task), ...fact("Queue", j.queue), ...fact("Tenant", j.tenant),
    ...fact("Attempts", `${j.attempts} of ${j.max_attempts ?? "?"}`),
    ...fact("Created", when(j.created_at)), ...fact("Started", when(run.startedAt)),
    ...fact("Finished", when(run.finishedAt)),
    ...fact("Duration", duration({ started_at: run.startedAt, finished_at: run.finishedAt })),
    ...fact("Worker", run.worker || "—"));
}

function drawDetail(job) {
  drawJob(job);
  $("#job-args").textContent = pretty(job.args);
  $("#job-result").textContent = pretty(job.result);
  $("#job-checkpoint").textContent = pretty(job.checkpoint);
  $("#error-card").hidden = !job.error;
  $("#job-error").textContent = job.error ? `${job.error.type}: ${job.error.message}` : "";
  $("#job-traceback").textContent = (job.error && job.error.traceback) || "No traceback was recorded.";
}

const KIND_TEXT = {
  enqueued: "Enqueued", scheduled: "Scheduled", started: "Started", progress: "Progress",
  succeeded: "Succeeded", failed: "Failed", retry_scheduled: "Retry scheduled", dead: "Dead",
  cancelled: "Cancelled", cancel_requested: "Cancel requested", retried: "Retried",
  snoozed: "Snoozed", requeued: "Requeued", lease_expired: "Lease expired", checkpoint: "Checkpoint saved",
};

// One line a person reads: what the event says in words; the raw data stays one
// click away, without the traceback the Error card shows once.
function eventMessage(event) {
  const d = event.data || {};
  if (d.error) return `${d.error.type}: ${d.error.message}`;
  if (event.kind === "progress") return `${Math.round((d.progress || 0) * 100)}%${d.message ? ` — ${d.message}` : ""}`;
  if (event.kind === "snoozed") return `put off ${d.delay} s (${d.reason})`;
  if (d.run_at && ["retry_scheduled", "scheduled", "enqueued"].includes(event.kind)) return `due ${when(d.run_at)}`;
  return "";
}

function withoutTraceback(data) {
  if (!data || !data.error || !data.error.traceback) return data;
  return { ...data, error: { ...data.error, traceback: "(shown in the Error card)" } };
}

function timelineItem(event) {
  const d = event.data || {};
  const meta = [d.attempt !== undefined && d.attempt !== null ? `attempt ${d.attempt}` : "",
    d.worker ? `worker ${d.worker}` : ""].filter(Boolean).join(" · ");
  const message = eventMessage(event);
  const item = el("li", { "data-kind": event.kind },
    el("div", { class: "line" },
      el("span", { class: "kind", text: KIND_TEXT[event.kind] || event.kind }),
      el("time", { datetime: event.at, class: "meta", text: when(event.at) }),
      meta ? el("span", { class: "meta", text: meta }) : ""),
    message ? el("span", { class: "msg", text: message, title: message }) : "");
  if (Object.keys(d).length) {
    item.append(el("details", {}, el("summary", { text: "Details" }),
      el("pre", { text: JSON.stringify(withoutTraceback(d), null, 2) })));
  }
  return item;
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
  history_ = body.events.slice();
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
  setInterval(() => { if (current && !ENDED.includes(current.state)) drawJob({}); }, 1000);
  follow(`/jobs/${id}/stream`, { after: last }, (msg) => {
    history_.push(msg.event);
    $("#timeline").append(timelineItem(msg.event));
    if (msg.job) drawJob(msg.job);
    if (msg.event.kind !== "progress") refetch();
  });
}

// ---- dead letter ---------------------------------------------------------------

const DEAD_FILTERS = ["task", "queue", "tenant"];

function deadQuery() {
  const data = new FormData($("#filters"));
  const query = new URLSearchParams();
  for (const key of DEAD_FILTERS) {
    const value = String(data.get(key) || "").trim();
    if (value) query.set(key, value);
  }
  return query;
}

function deadRow(job) {
  const error = job.error ? `${job.error.type}: ${job.error.message}` : "—";
  const retry = el("button", { type: "button", class: "secondary",
    "aria-label": `Retry job ${job.id}`, text: "Retry" });
  retry.addEventListener("click", () => act(`/jobs/${job.id}/retry`, "Queued again.").then(loadDead));
  return el("tr", { "data-job": job.id }, el("td", {}, jobLink(job.id)), el("td", { text: job.task }),
    el("td", { class: "error", text: error }), el("td", { text: job.queue }), el("td", { text: job.tenant }),
    el("td", { text: when(job.finished_at) }), el("td", {}, retry));
}

async function loadDead() {
  const query = deadQuery();
  query.set("state", "dead");
  query.set("limit", "200");
  const body = await api(`/jobs?${query}`);
  const rows = body.jobs.map(deadRow);
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, text: "The dead letter is empty." })));
  $("#dead-table tbody").replaceChildren(...rows);
  $("#dead-count").textContent = body.jobs.length
    ? `${body.jobs.length}${body.next_before ? "+" : ""} dead job(s) shown` : "";
  $("#retry-all").disabled = !body.jobs.length;
}

async function retryAll() {
  const scope = deadQuery().toString();
  if (!confirm(`Queue again every dead job${scope ? " matching the filter" : ""}?`)) return;
  try {
    const body = await api("/dead/retry", { method: "POST", body: JSON.stringify(Object.fromEntries(deadQuery())) });
    notice(`Queued ${body.retried} dead job(s) again.`);
  } catch (err) {
    notice(err.message, true);
  }
  await loadDead();
}

async function purgeDead() {
  if (!confirm("Delete every dead job for good?")) return;
  try {
    const body = await api("/dead/purge", { method: "POST", body: "{}" });
    notice(`Deleted ${body.purged} dead job(s).`);
  } catch (err) {
    notice(err.message, true);
  }
  await loadDead();
}

async function deadPage() {
  const form = $("#filters");
  filtersFromAddress(form, DEAD_FILTERS);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    filtersToAddress(form, DEAD_FILTERS);
    loadDead().catch(report);
  });
  $("#retry-all").addEventListener("click", retryAll);
  $("#purge").addEventListener("click", purgeDead);
  const reload = throttle(() => loadDead().catch(report), 300);
  follow("/stream", {}, (msg) => {
    if (["dead", "retried"].includes(msg.event.kind)) reload();
  }, () => loadDead().catch(report));
}

// ---- batches -------------------------------------------------------------------

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

function batchLabel(b) {
  return b.name ? `batch ${b.name}` : `batch ${b.id}`;
}

const batchRows = new Map();

function batchRow(b) {
  const row = el("tr", { "data-batch": b.id },
    el("td", {}, idLink(`${cfg.root}/batches/${b.id}`, b.id)),
    el("td", { text: b.name || "—" }),
    el("td", { class: "state" }, batchBadge(b)),
    el("td", {}, el("progress", { max: Math.max(1, b.total), value: b.ended,
      "aria-label": `progress of ${batchLabel(b)}` }), " ", el("span", { class: "progress-text", text: progressText(b) })),
    el("td", { class: "counts", text: countsText(b) }),
    el("td", { text: b.tenant }), el("td", { text: when(b.created_at) }));
  batchRows.set(b.id, row);
  return row;
}

let nextBatch = null;

async function loadBatches(append = false) {
  const query = new URLSearchParams();
  if ($("#f-unfinished").value) query.set("unfinished", "true");
  if (append && nextBatch) query.set("before", nextBatch);
  const body = await api(`/batches?${query}`);
  nextBatch = body.next_before;
  $("#more").hidden = !nextBatch;
  if (!append) batchRows.clear();
  const rows = body.batches.map(batchRow);
  const tbody = $("#batches-table tbody");
  if (append) tbody.append(...rows);
  else if (rows.length) tbody.replaceChildren(...rows);
  else tbody.replaceChildren(el("tr", {}, el("td", { colspan: 7, text: "No batches yet." })));
}

async function batchesPage() {
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); loadBatches().catch(report); });
  $("#more").addEventListener("click", () => loadBatches(true).catch(report));
  // A job event names its batch; only that row is fetched again, unless the
  // batch is new to this page, which reloads the list.
  const dirty = new Set();
  const redraw = throttle(async () => {
    const ids = [...dirty];
    dirty.clear();
    for (const id of ids) {
      try {
        const row = batchRows.get(id);
        if (row) row.replaceWith(batchRow(await api(`/batches/${id}`)));
      } catch (err) {
        report(err);
      }
    }
  }, 200);
  const reload = throttle(() => loadBatches().catch(report), 500);
  follow("/stream", {}, (msg) => {
    const id = msg.job && msg.job.batch_id;
    if (!id) return;
    if (batchRows.has(id)) {
      dirty.add(id);
      redraw();
    } else {
      reload();
    }
  }, () => loadBatches().catch(report));
}

// ---- one batch -----------------------------------------------------------------

let nextBatchJob = null;

function drawBatch(b) {
  $("#batch-state").replaceWith(Object.assign(batchBadge(b), { id: "batch-state" }));
  $("#cancel").disabled = b.done;
  const bar = $("#batch-progress");
  bar.max = Math.max(1, b.total);
  bar.value = b.ended;
  $("#progress-text").textContent = progressText(b);
  for (const s of STATES) $(`#count-${s}`).textContent = String(b.counts[s]);
  const then = b.then.length ? b.then.map((t) => t.task).join(", ") : "—";
  const continuations = b.continuation_ids.length
    ? el("span", {}, ...b.continuation_ids.flatMap((id, i) => (i ? [", ", jobLink(id)] : [jobLink(id)])))
    : "—";
  $("#batch-facts").replaceChildren(
    ...fact("Name", b.name || "—"), ...fact("Tenant", b.tenant),
    ...fact("Created", when(b.created_at)), ...fact("Finished", when(b.finished_at)),
    ...fact("Then", then), el("dt", { text: "Continuation jobs" }), el("dd", {}, continuations));
}

async function loadBatchJobs(id, append = false) {
  const query = new URLSearchParams({ limit: "100" });
  if (append && nextBatchJob) query.set("before", nextBatchJob);
  const body = await api(`/batches/${id}/jobs?${query}`);
  nextBatchJob = body.next_before;
  $("#more").hidden = !nextBatchJob;
  if (!append) jobRows.clear();
  const rows = body.jobs.map(jobRow);
  const tbody = $("#jobs-table tbody");
  if (append) tbody.append(...rows);
  else tbody.replaceChildren(...rows);
}

async function batchPage() {
  const id = cfg.batchId;
  try {
    drawBatch(await api(`/batches/${id}`));
  } catch (err) {
    notice(err.status === 404 ? "No such batch (or not visible with this token)." : err.message, true);
    return;
  }
  const refetch = throttle(() => api(`/batches/${id}`).then(drawBatch).catch(report), 100);
  const reload = throttle(() => loadBatchJobs(id).catch(report), 300);
  $("#more").addEventListener("click", () => loadBatchJobs(id, true).catch(report));
  $("#cancel").addEventListener("click", async () => {
    if (!confirm("Cancel every job of this batch that has not ended?")) return;
    if (await act(`/batches/${id}/cancel`, "Cancelled the batch's waiting jobs; running ones were asked to stop.")) {
      refetch();
      reload();
    }
  });
  follow(`/batches/${id}/stream`, {}, (msg) => {
    if (msg.batch) drawBatch(msg.batch);
    else refetch();
    // Continuations belong to the batch but are not among its jobs.
    if (msg.job && msg.job.batch_id === id && !updateRow(msg.job)) reload();
  }, (ready) => {
    if (ready.batch) drawBatch(ready.batch);
    loadBatchJobs(id).catch(report);
  }, "batch");
}

// ---- schedules -----------------------------------------------------------------

let scheduleTimer = null;

function scheduleRow(s) {
  const firings = s.upcoming.length
    ? el("ol", { class: "plain" }, ...s.upcoming.map((t) => el("li", {}, el("time", { datetime: t, text: when(t) }))))
    : "never";
  return el("tr", { "data-schedule": `${s.tenant}/${s.id}` },
    el("th", { scope: "row" }, s.id,
      s.description ? el("div", { class: "muted schedule-description", text: s.description }) : ""),
    el("td", { text: s.tenant }), el("td", { text: s.task }),
    el("td", {}, el("code", { text: s.cron })), el("td", { text: s.timezone }), el("td", { class: "firings" }, firings),
    el("td", {}, s.last_job_id ? jobLink(s.last_job_id) : "—"));
}

async function loadSchedules() {
  const body = await api("/schedules?next=3");
  const rows = body.schedules.map(scheduleRow);
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, text: "No schedules." })));
  $("#schedules-table tbody").replaceChildren(...rows);
  // A firing moves the schedule on; read it again just after the next one.
  const due = body.schedules.filter((s) => s.next_run_at).map((s) => new Date(s.next_run_at) - Date.now());
  clearTimeout(scheduleTimer);
  if (due.length) scheduleTimer = setTimeout(() => loadSchedules().catch(report),
    Math.min(Math.max(0, Math.min(...due)) + 1000, 3600 * 1000));
}

async function schedulesPage() {
  const reload = throttle(() => loadSchedules().catch(report), 1000);
  follow("/stream", {}, (msg) => {
    if (msg.event.kind === "enqueued") reload();
  }, () => loadSchedules().catch(report));
}

// ---- queues: pause and resume --------------------------------------------------

function toggle(label, scope, paused) {
  const verb = paused ? "Resume" : "Pause";
  const button = el("button", { type: "button", class: paused ? null : "secondary",
    "aria-label": `${verb} ${label}`, text: verb });
  button.addEventListener("click", async () => {
    button.disabled = true;
    await act(paused ? "/resume" : "/pause", `${paused ? "Resumed" : "Paused"} ${label}.`, scope);
    await drawControls().catch(report);
  });
  return button;
}

function statusCell(text) {
  return el("td", { class: "status" }, text ? pausedBadge(text) : el("span", { class: "muted", text: "running" }));
}

async function drawControls() {
  const [who, pauses, queues, tenants] = await Promise.all(
    [me(), api("/pauses"), api("/queues"), api("/tenants")]);
  const all = pauses.pauses;
  const everything = exactPause(all, { tenant: null, queue: null });
  $("#everything").hidden = !who.admin;
  if (who.admin) {
    $("#everything-status").replaceChildren(everything
      ? pausedBadge(`paused since ${when(everything.at)}`) : el("span", { text: "Running." }));
    $("#everything-action").replaceChildren(toggle("everything", { tenant: null, queue: null }, !!everything));
  }
  $("#queues-scope").textContent = who.admin
    ? "Pausing a queue here pauses it for every tenant."
    : `Pausing a queue here pauses it for tenant ${who.tenant} only.`;
  const queueRows = queues.queues.map((q) => {
    const scope = { tenant: who.admin ? null : who.tenant, queue: q.name };
    return el("tr", { "data-queue": q.name },
      el("th", { scope: "row", text: q.name }), statusCell(queueStatus(who, all, q.name)),
      ...STATES.map((s) => el("td", { class: "num", text: String(q.counts[s]) })),
      el("td", {}, toggle(`queue ${q.name}`, scope, !!exactPause(all, scope))));
  });
  if (!queueRows.length) queueRows.push(el("tr", {}, el("td", { colspan: 9, text: "No jobs yet." })));
  $("#queues-table tbody").replaceChildren(...queueRows);
  const names = tenants.tenants.map((t) => t.name);
  if (!who.admin && !names.includes(who.tenant)) names.push(who.tenant);
  const jobs = Object.fromEntries(tenants.tenants.map((t) => [t.name, t.jobs]));
  const tenantRows = names.map((name) => {
    const scope = { tenant: name, queue: null };
    const paused = all.some((p) => p.tenant === null && p.queue === null) || !!exactPause(all, scope);
    return el("tr", { "data-tenant": name },
      el("th", { scope: "row", text: name }), statusCell(paused ? "paused" : null),
      el("td", { class: "num", text: String(jobs[name] || 0) }),
      el("td", {}, toggle(`tenant ${name}`, scope, !!exactPause(all, scope))));
  });
  if (!tenantRows.length) tenantRows.push(el("tr", {}, el("td", { colspan: 4, text: "No tenants yet." })));
  $("#tenants-table tbody").replaceChildren(...tenantRows);
  const items = all.map((p) => el("li", { "data-scope": describeScope(p) },
    el("strong", { text: describeScope(p) }), ` since ${when(p.at)} `,
    who.admin || p.tenant === who.tenant ? toggle(describeScope(p), { tenant: p.tenant, queue: p.queue }, true) : ""));
  if (!items.length) items.push(el("li", { text: "Nothing is paused." }));
  $("#pauses-list").replaceChildren(...items);
}

async function queuesPage() {
  const refresh = throttle(() => drawControls().catch(report), 300);
  follow("/stream", {}, () => refresh(), () => refresh(), "job", () => refresh());
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

const PAGES = {
  overview: overviewPage, jobs: jobsPage, job: jobPage, dead: deadPage, batches: batchesPage, batch: batchPage,
  schedules: schedulesPage, queues: queuesPage, widget_demo: widgetPage,
};

setupToken(() => {
  const page = PAGES[cfg.page];
  if (page) Promise.resolve(page()).catch(report);
});
