// offload dashboard: the jobs page.
"use strict";

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

startPage(jobsPage);
