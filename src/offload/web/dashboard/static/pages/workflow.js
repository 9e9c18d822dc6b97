// offload dashboard: one workflow drawn as a graph, each step's state live.
"use strict";

const NODE_W = 168, NODE_H = 48, GAP_X = 64, GAP_Y = 18, PAD = 12;
// Past this many steps a drawing is a wall of boxes; the table still lists them.
const MAX_DRAWN = 400;

let flow = null;
const stepOf = new Map(); // job id -> step name
const drawn = new Map(); // step name -> { link, state, row }

// Layers: a step sits one column right of its deepest parent (longest path from
// a root), so every arrow points right. Within a column, steps follow the mean
// position of their parents, which keeps chains straight and crossings few.
function layout(nodes, edges) {
  const parents = new Map(nodes.map((n) => [n.step, []]));
  const children = new Map(nodes.map((n) => [n.step, []]));
  for (const e of edges) {
    if (!parents.has(e.to) || !parents.has(e.from)) continue;
    parents.get(e.to).push(e.from);
    children.get(e.from).push(e.to);
  }
  const level = new Map();
  const waiting = new Map(nodes.map((n) => [n.step, parents.get(n.step).length]));
  const ready = nodes.filter((n) => !waiting.get(n.step)).map((n) => n.step);
  while (ready.length) {
    const step = ready.shift();
    const mine = Math.max(-1, ...parents.get(step).map((p) => level.get(p))) + 1;
    level.set(step, mine);
    for (const child of children.get(step)) {
      waiting.set(child, waiting.get(child) - 1);
      if (!waiting.get(child)) ready.push(child);
    }
  }
  for (const n of nodes) if (!level.has(n.step)) level.set(n.step, 0); // never happens: cycles are refused
  const columns = [];
  for (const n of nodes) (columns[level.get(n.step)] ||= []).push(n.step);
  const row = new Map();
  columns.forEach((column, c) => {
    const mean = (step) => {
      const ps = parents.get(step).map((p) => row.get(p));
      return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0;
    };
    if (c > 0) column.sort((a, b) => mean(a) - mean(b));
    column.forEach((step, i) => row.set(step, i));
  });
  const tallest = Math.max(1, ...columns.map((column) => column.length));
  const height = tallest * (NODE_H + GAP_Y) - GAP_Y + 2 * PAD;
  const place = new Map();
  columns.forEach((column, c) => {
    const offset = (height - 2 * PAD - (column.length * (NODE_H + GAP_Y) - GAP_Y)) / 2;
    column.forEach((step, i) => place.set(step,
      { x: PAD + c * (NODE_W + GAP_X), y: PAD + offset + i * (NODE_H + GAP_Y) }));
  });
  return { place, parents, width: columns.length * (NODE_W + GAP_X) - GAP_X + 2 * PAD, height };
}

function clip(text, size) {
  return text.length > size ? `${text.slice(0, size - 1)}…` : text;
}

function edgePath(from, to) {
  const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x - 6, y2 = to.y + NODE_H / 2;
  const bend = (x2 - x1) / 2;
  return `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
}

function nodeLabel(node) {
  return `step ${node.step}, task ${node.task}: ${node.state}`;
}

function graphNode(node, at) {
  const link = svg("a", { href: `${cfg.root}/jobs/${node.id}`, class: `node state-${node.state}`,
    "data-step": node.step, "aria-label": nodeLabel(node) });
  link.append(svg("title", {}, `${node.step} (${node.task}): ${node.state}`));
  link.append(svg("rect", { x: at.x, y: at.y, width: NODE_W, height: NODE_H, rx: 8 }));
  link.append(svg("text", { x: at.x + 12, y: at.y + 20, class: "step" }, clip(node.step, 20)));
  const state = svg("text", { x: at.x + 12, y: at.y + 38, class: "what" }, `${node.state} · ${clip(node.task, 14)}`);
  link.append(state);
  return { link, state };
}

function drawGraph() {
  const box = $("#graph");
  const nodes = flow.nodes;
  if (nodes.length > MAX_DRAWN) {
    box.replaceChildren(el("p", { text: `${nodes.length} steps are too many to draw; the table below lists them.` }));
    return;
  }
  const { place, width, height } = layout(nodes, flow.edges);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "group",
    class: "dag", "aria-labelledby": "graph-summary" });
  const defs = svg("defs", {});
  const arrow = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  arrow.append(svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }));
  defs.append(arrow);
  chart.append(defs);
  for (const e of flow.edges) {
    if (!place.has(e.from) || !place.has(e.to)) continue;
    chart.append(svg("path", { d: edgePath(place.get(e.from), place.get(e.to)), class: "edge",
      "data-from": e.from, "data-to": e.to, "marker-end": "url(#arrow)" }));
  }
  for (const node of nodes) {
    const { link, state } = graphNode(node, place.get(node.step));
    drawn.set(node.step, { ...(drawn.get(node.step) || {}), link, state });
    chart.append(link);
  }
  box.replaceChildren(chart);
}

function stepRow(node, parents) {
  const after = parents.length ? parents.join(", ") : "—";
  const row = el("tr", { "data-job": node.id, "data-step": node.step },
    el("th", { scope: "row", text: node.step }), el("td", {}, jobLink(node.id)), el("td", { text: node.task }),
    el("td", { class: "state" }, badge(node.state)), el("td", { text: after }),
    el("td", { class: "num", text: String(node.attempts) }), el("td", { text: when(node.finished_at) }));
  return row;
}

function drawSteps() {
  const parents = new Map(flow.nodes.map((n) => [n.step, []]));
  for (const e of flow.edges) if (parents.has(e.to)) parents.get(e.to).push(e.from);
  const rows = flow.nodes.map((node) => {
    const row = stepRow(node, parents.get(node.step));
    drawn.set(node.step, { ...(drawn.get(node.step) || {}), row, parents: parents.get(node.step) });
    return row;
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 7, text: "This workflow has no jobs." })));
  $("#steps-table tbody").replaceChildren(...rows);
}

// The summary is drawn from the counts, whether they come with the workflow or
// with a batch message of the stream.
function drawSummary(counts, finishedAt) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const ended = ENDED.reduce((sum, s) => sum + (counts[s] || 0), 0);
  const state = workflowState({ counts, total, ended });
  $("#flow-state").replaceWith(Object.assign(badge(state), { id: "flow-state" }));
  $("#cancel").hidden = state !== "running";
  $("#cancel").disabled = state !== "running";
  const bar = $("#flow-progress");
  bar.max = Math.max(1, total);
  bar.value = ended;
  $("#progress-text").textContent = total ? `${ended} of ${total} steps ended (${Math.round((ended / total) * 100)}%)` : "";
  for (const s of STATES) $(`#count-${s}`).textContent = String(counts[s] || 0);
  $("#graph-summary").textContent = `${total} steps and ${flow.edges.length} dependencies; ` +
    (STATES.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(", ") || "no jobs") + ".";
  if (finishedAt !== undefined) flow.finished_at = finishedAt;
  $("#flow-facts").replaceChildren(...fact("Name", flow.name || "—"), ...fact("Tenant", flow.tenant),
    ...fact("Created", when(flow.created_at)), ...fact("Finished", when(flow.finished_at)));
}

function countsOf(nodes) {
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const n of nodes) counts[n.state] = (counts[n.state] || 0) + 1;
  return counts;
}

function drawFlow(body) {
  flow = body;
  stepOf.clear();
  for (const n of flow.nodes) stepOf.set(n.id, n.step);
  $("#flow-name").textContent = flow.name ? `Workflow ${flow.name}` : "Workflow";
  drawSteps();
  drawGraph();
  drawSummary(flow.counts && Object.keys(flow.counts).length ? { ...countsOf([]), ...flow.counts } : countsOf(flow.nodes));
}

// A job message changes one step in place (its box, its row), so a focused box
// keeps the focus while the graph runs.
function updateStep(job) {
  const step = stepOf.get(job.id);
  if (step === undefined) return false;
  const node = flow.nodes.find((n) => n.id === job.id);
  Object.assign(node, job, { step });
  const seen = drawn.get(step);
  if (seen && seen.link) {
    seen.link.setAttribute("class", `node state-${node.state}`);
    seen.link.setAttribute("aria-label", nodeLabel(node));
    seen.link.querySelector("title").textContent = `${node.step} (${node.task}): ${node.state}`;
    seen.state.textContent = `${node.state} · ${clip(node.task, 14)}`;
  }
  if (seen && seen.row) {
    const row = stepRow(node, seen.parents);
    seen.row.replaceWith(row);
    seen.row = row;
  }
  return true;
}

async function workflowPage() {
  const id = cfg.workflowId;
  try {
    drawFlow(await api(`/workflows/${id}`));
  } catch (err) {
    notice(err.status === 404 ? "No such workflow (or not visible with this token)." : err.message, true);
    return;
  }
  const refetch = throttle(() => api(`/workflows/${id}`).then(drawFlow).catch(report), 200);
  $("#cancel").addEventListener("click", async () => {
    if (!confirm("Cancel every step of this workflow that has not ended?")) return;
    if (await act(`/workflows/${id}/cancel`, "Cancelled the steps still waiting; running ones were asked to stop.")) refetch();
  });
  // A workflow is a batch, so its stream carries each of its jobs' events with
  // the counts as they are then; a job the page does not know was appended
  // later, and the whole graph is read again.
  follow(`/batches/${id}/stream`, {}, (msg) => {
    if (msg.job && !updateStep(msg.job)) refetch();
    if (msg.batch) drawSummary(msg.batch.counts, msg.batch.finished_at);
  }, () => refetch(), "batch");
}

startPage(workflowPage);
