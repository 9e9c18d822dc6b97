// <offload-jobs tenant="acme" token="…" api="/api/v1" limit="10" link-field="url">:
// a user's jobs, live.
//
// A product page drops this element in to show the jobs it started: a spinner
// while a job waits or runs, its progress and a duration that ticks, the error
// message of a job that failed, and once a job succeeded a download link when its
// result is a URL (or holds one in the field `link-field` names), else an
// "Output" link. A bell counts the jobs that ended since the user last looked and
// opens a list of them; `mode="bell"` shows only the bell, `mode="list"` only
// the list. It opens the live stream first and loads the list when the stream
// says it is ready, so no transition between the two is lost. The token may be a
// signed read-only token (offload.web.scoped), which is what a public page
// should carry.

const WAITING = ["scheduled", "queued", "running"];
const ENDED = ["succeeded", "dead", "cancelled"];
const URL_FIELDS = ["url", "href", "download_url", "link"];

const STYLE = `
  :host { display: block; position: relative; font: 14px/1.4 system-ui, sans-serif; color: #15181d;
          --line: #c9ced6; --muted: #4a5260; --accent: #0b57d0; --card: #fff; }
  ul { list-style: none; margin: 0; padding: 0; }
  li { display: grid; grid-template-columns: 20px 1fr auto; gap: 2px 8px; align-items: center;
       padding: 8px; border-bottom: 1px solid var(--line); }
  .task { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .meta { grid-column: 2 / 4; color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
  .error { grid-column: 2 / 4; color: #b3261e; font-size: 13px; overflow-wrap: anywhere; }
  .spinner { width: 14px; height: 14px; border: 2px solid var(--line); border-top-color: var(--accent);
             border-radius: 50%; animation: spin 0.8s linear infinite; }
  @media (prefers-reduced-motion: reduce) { .spinner { animation-duration: 3s; } }
  @keyframes spin { to { transform: rotate(360deg); } }
  .ok { color: #146c2e; } .bad { color: #b3261e; } .off { color: #7a4d00; }
  progress { grid-column: 2 / 4; width: 100%; height: 8px; }
  a { color: var(--accent); font-weight: 600; }
  .empty { color: var(--muted); padding: 8px; margin: 0; }
  .bar { display: flex; justify-content: flex-end; position: relative; }
  .bell { position: relative; font: inherit; background: transparent; color: inherit; border: 1px solid var(--line);
          border-radius: 999px; padding: 4px 12px; cursor: pointer; }
  .bell:focus-visible, a:focus-visible { outline: 3px solid #f9ab00; outline-offset: 2px; }
  .icon { width: 16px; height: 16px; fill: currentColor; vertical-align: -3px; }
  .count { display: inline-block; min-width: 18px; margin-left: 6px; padding: 0 5px; border-radius: 9px;
           background: #b3261e; color: #fff; font-size: 12px; font-weight: 700; text-align: center; }
  .count[hidden] { display: none; }
  .popover { position: absolute; right: 0; top: calc(100% + 6px); z-index: 10; width: min(360px, 90vw);
             background: var(--card); border: 1px solid var(--line); border-radius: 8px;
             box-shadow: 0 8px 24px rgba(0, 0, 0, 0.18); max-height: 420px; overflow: auto; }
  .popover[hidden], .inline[hidden], .bar[hidden] { display: none; }
  .popover h2 { font-size: 14px; margin: 0; padding: 8px; border-bottom: 1px solid var(--line); }
  li.unread { box-shadow: inset 3px 0 0 var(--accent); }
  /* last, so the dark colours win over the light ones above */
  @media (prefers-color-scheme: dark) {
    :host { color: #e6e8ec; --line: #3a404b; --muted: #a9b0bb; --accent: #8ab4f8; --card: #1b1e25; }
    .ok { color: #6dd58c; } .bad, .error { color: #f2b8b5; } .off { color: #f6c26b; }
  }
`;

class OffloadJobs extends HTMLElement {
  constructor() {
    super();
    this.jobs = new Map();
    this.links = new Map();
    this.source = null;
    this.seen = new Set();
    this.root = this.attachShadow({ mode: "open" });
  }

  get api() { return (this.getAttribute("api") || "/api/v1").replace(/\/$/, ""); }
  get token() { return this.getAttribute("token") || ""; }
  get tenant() { return this.getAttribute("tenant") || ""; }
  get limit() { return Number(this.getAttribute("limit") || 10); }
  get mode() { return this.getAttribute("mode") || "both"; }
  get linkField() { return this.getAttribute("link-field") || ""; }
  get seenKey() { return `offload-seen:${this.api}:${this.tenant}`; }

  connectedCallback() {
    this.root.innerHTML = `
      <div class="bar" part="bar">
        <button type="button" class="bell" part="bell" aria-expanded="false" aria-haspopup="true">
          <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z"/></svg> Jobs<span class="count" part="count" hidden></span></button>
        <div class="popover" part="popover" role="region" aria-label="Finished jobs" hidden>
          <h2>Finished jobs</h2><ul class="recent"></ul><p class="empty none">Nothing new.</p></div>
      </div>
      <section class="inline" aria-label="Your jobs" aria-live="polite">
        <ul part="list" class="list"></ul><p class="empty" part="empty">No jobs yet.</p></section>`;
    this.style_();
    this.root.querySelector(".bar").hidden = this.mode === "list";
    this.root.querySelector(".inline").hidden = this.mode === "bell";
    this.seen = new Set(JSON.parse(localStorage.getItem(this.seenKey) || "[]"));
    this.wireBell();
    this.listen();
  }

  // A constructed style sheet, not a <style> element: a page whose
  // Content-Security-Policy allows no inline styles still draws the widget.
  style_() {
    if ("adoptedStyleSheets" in this.root && "replaceSync" in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
      this.root.adoptedStyleSheets = [sheet];
      return;
    }
    const style = document.createElement("style");
    style.textContent = STYLE;
    this.root.prepend(style);
  }

  disconnectedCallback() {
    if (this.source) this.source.close();
    clearInterval(this.ticker);
  }

  headers() {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  query(extra = {}) {
    const q = new URLSearchParams(extra);
    if (this.tenant) q.set("tenant", this.tenant);
    return q;
  }

  listen() {
    const q = this.query();
    if (this.token) q.set("token", this.token);
    this.source = new EventSource(`${this.api}/stream?${q}`);
    this.source.addEventListener("ready", () => this.load());
    this.source.addEventListener("job", (msg) => {
      const data = JSON.parse(msg.data);
      this.update(data.job, data.event);
    });
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  async load() {
    const response = await fetch(`${this.api}/jobs?${this.query({ limit: this.limit })}`,
                                 { headers: this.headers() });
    if (!response.ok) return;
    const body = await response.json();
    const first = this.jobs.size === 0 && !localStorage.getItem(this.seenKey);
    for (const job of body.jobs) {
      this.jobs.set(job.id, { ...this.jobs.get(job.id), ...job });
      // A first visit has nothing unread: only what ends from now on counts.
      if (first && ENDED.includes(job.state)) this.seen.add(job.id);
    }
    if (first) this.saveSeen();
    this.render();
  }

  update(job, event) {
    if (!job || (this.tenant && job.tenant !== this.tenant)) return;
    const known = this.jobs.get(job.id) || {};
    // The stream's snapshot carries no error; the dead event's data does.
    const error = event && event.data && event.data.error ? event.data.error : known.error;
    this.jobs.set(job.id, { ...known, ...job, error });
    this.render();
  }

  // Only the durations change each second; redrawing everything would take the
  // keyboard focus away from a link the user is on.
  tick() {
    for (const node of this.root.querySelectorAll("[data-duration]")) {
      const job = this.jobs.get(node.dataset.duration);
      if (job) node.textContent = metaText(job);
    }
  }

  visible() {
    return [...this.jobs.values()].sort((a, b) => (a.id < b.id ? 1 : -1)).slice(0, this.limit);
  }

  unread() {
    return this.visible().filter((job) => ENDED.includes(job.state) && !this.seen.has(job.id));
  }

  render() {
    const jobs = this.visible();
    this.root.querySelector(".list").replaceChildren(...jobs.map((job) => this.item(job)));
    this.root.querySelector(".inline .empty").hidden = jobs.length > 0;
    const ended = jobs.filter((job) => ENDED.includes(job.state));
    this.root.querySelector(".recent").replaceChildren(...ended.map((job) => this.item(job)));
    this.root.querySelector(".none").hidden = ended.length > 0;
    const count = this.unread().length;
    const badge = this.root.querySelector(".count");
    badge.hidden = count === 0;
    badge.textContent = String(count);
    this.root.querySelector(".bell").setAttribute("aria-label",
      count ? `Jobs: ${count} finished since you last looked` : "Jobs: nothing new");
    for (const job of jobs) if (job.state === "succeeded" && !this.links.has(job.id)) this.findLink(job);
  }

  wireBell() {
    const bell = this.root.querySelector(".bell");
    const pop = this.root.querySelector(".popover");
    const close = () => {
      pop.hidden = true;
      bell.setAttribute("aria-expanded", "false");
    };
    bell.addEventListener("click", () => {
      const opening = pop.hidden;
      pop.hidden = !opening;
      bell.setAttribute("aria-expanded", String(opening));
      if (opening) {
        // The items keep their unread mark while the list is open; the count
        // goes, as a notification centre does once it has been opened.
        this.render();
        for (const job of this.unread()) this.seen.add(job.id);
        this.saveSeen();
        this.root.querySelector(".count").hidden = true;
      }
    });
    this.root.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !pop.hidden) {
        close();
        bell.focus();
      }
    });
    document.addEventListener("click", (e) => { if (!e.composedPath().includes(this)) close(); });
  }

  saveSeen() {
    const ids = [...this.seen].slice(-200);
    localStorage.setItem(this.seenKey, JSON.stringify(ids));
  }

  item(job) {
    const li = document.createElement("li");
    li.dataset.job = job.id;
    li.dataset.state = job.state;
    if (ENDED.includes(job.state) && !this.seen.has(job.id)) li.classList.add("unread");
    li.append(this.icon(job), this.text("span", "task", job.task.split(".").pop()), this.outcome(job));
    if (job.state === "running" && job.progress !== null && job.progress !== undefined) {
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = job.progress;
      bar.setAttribute("aria-label", `${job.task} progress`);
      li.append(bar);
    }
    if (job.state === "dead" && job.error) li.append(this.text("span", "error", job.error.message || job.error.type));
    const meta = this.text("span", "meta", metaText(job));
    meta.dataset.duration = job.id;
    li.append(meta);
    return li;
  }

  icon(job) {
    if (WAITING.includes(job.state)) {
      const spin = this.text("span", "spinner", "");
      spin.setAttribute("role", "img");
      spin.setAttribute("aria-label", job.state);
      return spin;
    }
    const marks = { succeeded: ["✓", "ok"], dead: ["✗", "bad"], cancelled: ["–", "off"] };
    const [mark, cls] = marks[job.state] || ["?", ""];
    const icon = this.text("span", cls, mark);
    icon.setAttribute("role", "img");
    icon.setAttribute("aria-label", job.state);
    return icon;
  }

  outcome(job) {
    if (job.state !== "succeeded") return this.text("span", "", "");
    const found = this.links.get(job.id);
    if (found) {
      const link = document.createElement("a");
      link.href = found;
      link.textContent = "Download";
      link.className = "download";
      link.setAttribute("part", "download");
      link.setAttribute("download", "");
      link.rel = "noopener";
      return link;
    }
    const link = document.createElement("a");
    link.href = `${this.api}/jobs/${job.id}/output`;
    link.textContent = "Output";
    link.className = "output";
    link.setAttribute("part", "output");
    if (this.token) link.addEventListener("click", (e) => this.openOutput(e, link.href));
    return link;
  }

  // The result is read once per job; a URL in it (or in the field the page
  // names) becomes the download link. Only http(s) and same-site paths count,
  // so a result cannot turn the link into script.
  async findLink(job) {
    this.links.set(job.id, null);
    const response = await fetch(`${this.api}/jobs/${job.id}/output`, { headers: this.headers() });
    if (!response.ok) return;
    const url = safeUrl(pickUrl(await response.json(), this.linkField));
    if (!url) return;
    this.links.set(job.id, url);
    this.render();
  }

  async openOutput(event, url) {
    // A plain link cannot carry the bearer header, so fetch and show the result.
    event.preventDefault();
    const response = await fetch(url, { headers: this.headers() });
    const blob = new Blob([await response.text()], { type: "application/json" });
    window.open(URL.createObjectURL(blob), "_blank", "noopener");
  }

  text(tag, cls, value) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    node.textContent = value;
    return node;
  }
}

function pickUrl(result, field) {
  if (typeof result === "string") return result;
  if (!result || typeof result !== "object") return null;
  for (const key of field ? [field] : URL_FIELDS) {
    if (typeof result[key] === "string") return result[key];
  }
  return null;
}

function safeUrl(value) {
  if (!value || !/^(https?:\/\/|\/)/i.test(value)) return null;
  try {
    const url = new URL(value, location.href);
    return ["http:", "https:"].includes(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

function metaText(job) {
  return `${job.state} · ${duration(job)}`;
}

function duration(job) {
  if (!job.started_at) return "waiting";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  const seconds = Math.max(0, (end - new Date(job.started_at)) / 1000);
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

if (!customElements.get("offload-jobs")) customElements.define("offload-jobs", OffloadJobs);
