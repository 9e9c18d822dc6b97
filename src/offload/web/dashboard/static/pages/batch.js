// offload dashboard: the batch page.
"use strict";

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

startPage(batchPage);
