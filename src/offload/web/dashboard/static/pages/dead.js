// offload dashboard: the dead page.
"use strict";

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

startPage(deadPage);
