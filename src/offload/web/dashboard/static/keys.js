// Keyboard navigation of the dashboard: `g` then a letter goes to a page, `/`
// focuses the search, `j`/`k` walk the rows of the main table and Enter opens
// the focused row, `?` lists the keys. Keys typed into a field are left alone.
"use strict";

(() => {
  const root = document.body.dataset.root;
  const PAGES = { o: "/", j: "/jobs", b: "/batches", w: "/workflows", s: "/schedules", q: "/queues", d: "/dead" };
  let pending = false;

  function typing(target) {
    return target.closest("input, select, textarea, [contenteditable]") !== null;
  }

  function rows() {
    return [...document.querySelectorAll("main table tbody tr")].filter((r) => r.querySelector("a"));
  }

  function move(step) {
    const all = rows();
    if (!all.length) return;
    const at = all.findIndex((r) => r.classList.contains("kbd"));
    const next = all[Math.min(all.length - 1, Math.max(0, at + step))];
    all.forEach((r) => r.classList.remove("kbd"));
    next.classList.add("kbd");
    next.querySelector("a").focus();
  }

  function help() {
    const dialog = document.getElementById("keys-dialog");
    if (!dialog.open) dialog.showModal();
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (document.querySelector("dialog[open]")) return;
    const key = event.key;
    if (pending) {
      pending = false;
      if (PAGES[key]) location.href = root + PAGES[key];
      return;
    }
    const actions = {
      g: () => { pending = true; setTimeout(() => { pending = false; }, 1500); },
      "/": () => { const f = document.querySelector("main input"); if (f) f.focus(); },
      j: () => move(1),
      k: () => move(-1),
      "?": help,
    };
    if (actions[key]) {
      event.preventDefault();
      actions[key]();
    }
  }

  document.addEventListener("keydown", onKey);
  document.getElementById("keys-open").addEventListener("click", help);
})();
