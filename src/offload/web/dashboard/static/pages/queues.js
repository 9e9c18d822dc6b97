// offload dashboard: the queues page.
"use strict";

function toggle(label, scope, paused) {
  const verb = paused ? "Resume" : "Pause";
  const button = el("button", { type: "button", class: paused ? null : "secondary",
    "aria-label": `${verb} ${label}`, text: verb });
  button.addEventListener("click", async () => {
    button.disabled = true;
    await act(paused ? "/resume" : "/pause", `${paused ? "Resumed" : "Paused"} ${label}.`, scope);
    knownPauses = null; // read now: the page's own change must not wait for its message
    await drawControls().catch(report);
  });
  return button;
}

function statusCell(text) {
  return el("td", { class: "status" }, text ? pausedBadge(text) : el("span", { class: "muted", text: "running" }));
}

// The pauses in force: read when the stream is (re)connected, then taken from
// its `control` messages (a pause or resume made here, by the CLI or by another
// operator), so no request follows one.
let knownPauses = null;

async function drawControls() {
  const [who, queues, tenants] = await Promise.all([me(), api("/queues"), api("/tenants")]);
  if (knownPauses === null) knownPauses = (await api("/pauses")).pauses;
  const all = knownPauses;
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
  follow("/stream", {}, () => refresh(), () => {
    knownPauses = null;
    refresh();
  }, "job", (msg) => {
    if (msg.pauses) knownPauses = msg.pauses;
    refresh();
  });
}

startPage(queuesPage);
