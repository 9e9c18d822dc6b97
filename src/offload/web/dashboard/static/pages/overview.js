// offload dashboard: the overview page.
"use strict";

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

// The pauses in force: read when the stream is (re)connected, then taken from
// its `control` messages, so a pause made anywhere shows without a request.
let knownPauses = null;

async function drawQueues() {
  const [body, who] = await Promise.all([api("/queues"), me()]);
  if (knownPauses === null) knownPauses = (await api("/pauses")).pauses;
  const rows = body.queues.map((q) => {
    const status = queueStatus(who, knownPauses, q.name);
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
  follow("/stream", {}, (msg) => {
    countOutcome(msg.event);
    drawChart();
    refresh();
  }, () => {
    knownPauses = null;
    refresh();
  }, "job", (msg) => {
    if (msg.pauses) knownPauses = msg.pauses;
    refresh();
  });
}

startPage(overviewPage);
