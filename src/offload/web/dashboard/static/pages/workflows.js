// offload dashboard: the workflows page, each workflow with its progress, live.
"use strict";

const flowRows = new Map();

function flowRow(b) {
  const state = workflowState(b);
  const row = el("tr", { "data-workflow": b.id },
    el("td", {}, idLink(`${cfg.root}/workflows/${b.id}`, b.id)),
    el("td", { text: b.name || "—" }),
    el("td", { class: "state" }, badge(state)),
    el("td", {}, el("progress", { max: Math.max(1, b.total), value: b.ended,
      "aria-label": `progress of workflow ${b.name || b.id}` }), " ",
      el("span", { class: "progress-text", text: progressText(b) })),
    el("td", { class: "counts", text: countsText(b) }),
    el("td", { text: b.tenant }), el("td", { text: when(b.created_at) }));
  flowRows.set(b.id, row);
  return row;
}

let nextFlow = null;

async function loadWorkflows(append = false) {
  const query = new URLSearchParams();
  if (append && nextFlow) query.set("before", nextFlow);
  const body = await api(`/workflows?${query}`);
  nextFlow = body.next_before;
  $("#more").hidden = !nextFlow;
  if (!append) flowRows.clear();
  const rows = body.workflows.map(flowRow);
  const tbody = $("#workflows-table tbody");
  if (append) tbody.append(...rows);
  else if (rows.length) tbody.replaceChildren(...rows);
  else tbody.replaceChildren(el("tr", {}, el("td", { colspan: 7, text: "No workflows yet." })));
}

async function workflowsPage() {
  $("#more").addEventListener("click", () => loadWorkflows(true).catch(report));
  // A workflow is a batch: an event of one of its jobs names it, and only that
  // row is read again; a job of a batch not shown may start a new workflow.
  const dirty = new Set();
  const redraw = throttle(async () => {
    const ids = [...dirty];
    dirty.clear();
    for (const id of ids) {
      const row = flowRows.get(id);
      if (!row) continue;
      try {
        row.replaceWith(flowRow(await api(`/batches/${id}`)));
      } catch (err) {
        report(err);
      }
    }
  }, 200);
  const reload = throttle(() => loadWorkflows().catch(report), 500);
  follow("/stream", {}, (msg) => {
    const id = msg.job && msg.job.batch_id;
    if (!id) return;
    if (flowRows.has(id)) {
      dirty.add(id);
      redraw();
    } else if (["enqueued", "scheduled"].includes(msg.event.kind)) {
      reload();
    }
  }, () => loadWorkflows().catch(report));
}

startPage(workflowsPage);
