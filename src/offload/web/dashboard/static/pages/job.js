// offload dashboard: the job page.
"use strict";

let current = null;
let history_ = [];

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
  released: "Released", discarded: "Discarded",
};

// One line a person reads: what the event says in words; the raw data stays one
// click away, without the traceback the Error card shows once.
function eventMessage(event) {
  const d = event.data || {};
  if (d.error) return `${d.error.type}: ${d.error.message}`;
  if (event.kind === "progress") return `${Math.round((d.progress || 0) * 100)}%${d.message ? ` — ${d.message}` : ""}`;
  if (event.kind === "snoozed") return `put off ${d.delay} s (${d.reason})`;
  if (d.reason) return d.reason;
  // A dependent waits with a due time far in the future until its parents end.
  if (d.run_at && d.run_at.startsWith("2200-")) return "waiting for its parents";
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

startPage(jobPage);
