// <offload-jobs tenant="acme" token="…" api="/api/v1" limit="10">: a user's jobs, live.
//
// A product page drops this element in to show the jobs it started: a spinner
// while a job waits or runs, its progress and duration, and a link to the output
// once it succeeded. It opens the live stream first and loads the list when the
// stream says it is ready, so no transition between the two is lost.

const WAITING = ["scheduled", "queued", "running"];

const STYLE = `
  :host { display: block; font: 14px/1.4 system-ui, sans-serif; color: #15181d; }
  ul { list-style: none; margin: 0; padding: 0; }
  li { display: grid; grid-template-columns: 20px 1fr auto; gap: 4px 8px; align-items: center;
       padding: 8px; border-bottom: 1px solid #c9ced6; }
  .task { font-weight: 600; overflow: hidden; text-overflow: ellipsis; }
  .meta { grid-column: 2 / 4; color: #4a5260; font-size: 12px; }
  .spinner { width: 14px; height: 14px; border: 2px solid #c9ced6; border-top-color: #0b57d0;
             border-radius: 50%; animation: spin 0.8s linear infinite; }
  @media (prefers-reduced-motion: reduce) { .spinner { animation-duration: 3s; } }
  @keyframes spin { to { transform: rotate(360deg); } }
  .ok { color: #146c2e; } .bad { color: #b3261e; } .off { color: #7a4d00; }
  progress { grid-column: 2 / 4; width: 100%; height: 8px; }
  a { color: #0b57d0; }
  .empty { color: #4a5260; padding: 8px; }
`;

class OffloadJobs extends HTMLElement {
  constructor() {
    super();
    this.jobs = new Map();
    this.source = null;
    this.root = this.attachShadow({ mode: "open" });
  }

  get api() { return (this.getAttribute("api") || "/api/v1").replace(/\/$/, ""); }
  get token() { return this.getAttribute("token") || ""; }
  get tenant() { return this.getAttribute("tenant") || ""; }
  get limit() { return Number(this.getAttribute("limit") || 10); }

  connectedCallback() {
    this.root.innerHTML = `<section aria-label="Your jobs" aria-live="polite">
      <ul part="list"></ul><p class="empty" part="empty">No jobs yet.</p></section>`;
    this.style_();
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
    this.source.addEventListener("job", (msg) => this.update(JSON.parse(msg.data).job));
    this.ticker = setInterval(() => this.render(), 1000);
  }

  async load() {
    const response = await fetch(`${this.api}/jobs?${this.query({ limit: this.limit })}`,
                                 { headers: this.headers() });
    if (!response.ok) return;
    const body = await response.json();
    for (const job of body.jobs) this.jobs.set(job.id, { ...this.jobs.get(job.id), ...job });
    this.render();
  }

  update(job) {
    if (!job || (this.tenant && job.tenant !== this.tenant)) return;
    this.jobs.set(job.id, { ...this.jobs.get(job.id), ...job });
    this.render();
  }

  render() {
    const list = this.root.querySelector("ul");
    const jobs = [...this.jobs.values()].sort((a, b) => (a.id < b.id ? 1 : -1)).slice(0, this.limit);
    list.replaceChildren(...jobs.map((job) => this.item(job)));
    this.root.querySelector(".empty").hidden = jobs.length > 0;
  }

  item(job) {
    const li = document.createElement("li");
    li.dataset.job = job.id;
    li.dataset.state = job.state;
    li.append(this.icon(job), this.text("span", "task", job.task.split(".").pop()), this.outcome(job));
    if (job.state === "running" && job.progress !== null && job.progress !== undefined) {
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = job.progress;
      bar.setAttribute("aria-label", `${job.task} progress`);
      li.append(bar);
    }
    li.append(this.text("span", "meta", `${job.state} · ${duration(job)}`));
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
    const link = document.createElement("a");
    link.href = `${this.api}/jobs/${job.id}/output`;
    link.textContent = "Output";
    link.className = "output";
    link.setAttribute("part", "output");
    if (this.token) link.addEventListener("click", (e) => this.openOutput(e, link.href));
    return link;
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

function duration(job) {
  if (!job.started_at) return "waiting";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  const seconds = Math.max(0, (end - new Date(job.started_at)) / 1000);
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

if (!customElements.get("offload-jobs")) customElements.define("offload-jobs", OffloadJobs);
