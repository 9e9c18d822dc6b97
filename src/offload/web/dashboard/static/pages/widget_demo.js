// offload dashboard: the widget demo page.
"use strict";

function widgetPage() {
  $("#live-text").textContent = "widget below";
  const show = () => {
    const widget = document.createElement("offload-jobs");
    widget.setAttribute("tenant", $("#demo-tenant").value.trim() || "default");
    widget.setAttribute("api", cfg.api);
    if (token()) widget.setAttribute("token", token());
    $("#demo-host").replaceChildren(widget);
  };
  $("#demo-form").addEventListener("submit", (e) => { e.preventDefault(); show(); });
  show();
}

startPage(widgetPage);
