// offload dashboard: the batches page.
"use strict";

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
  }, () => loadBatches().catch(report), "job", (msg) => {
    // A finished batch comes with its final record: its row is redrawn as is.
    const row = msg.batch && batchRows.get(msg.batch.id);
    if (row) row.replaceWith(batchRow(msg.batch));
  });
}

startPage(batchesPage);
