// offload dashboard: the schedules page.
"use strict";

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

startPage(schedulesPage);
