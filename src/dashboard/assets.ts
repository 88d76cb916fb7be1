// The dashboard's only stylesheet and script, served from /assets/ (the CSP allows no inline
// code and nothing from elsewhere: the cluster may be offline, and no CDN or font is fetched).

export const DASHBOARD_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #57606a; --line: #d0d7de; --accent: #0550ae;
  --ok: #116329; --warn: #7d4e00; --bad: #a40e26; --info: #0550ae; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9da7b3; --line: #30363d; --accent: #79c0ff;
  --ok: #56d364; --warn: #e3b341; --bad: #ff7b72; --info: #79c0ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: var(--bg); padding: 4px 8px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
header { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 8px; padding: 8px 16px; border-bottom: 1px solid var(--line); }
header nav a { margin-right: 12px; } header nav a[aria-current] { font-weight: 700; text-decoration: none; }
.brand { margin-right: 16px; }
main { padding: 8px 16px 32px; max-width: 1400px; }
h1 { font-size: 1.5rem; margin: 8px 0; } h2 { font-size: 1.15rem; margin: 20px 0 6px; }
.muted { color: var(--muted); font-size: .9em; }
.msg { color: var(--muted); font-size: .9em; overflow-wrap: anywhere; }
.flash { border-left: 4px solid var(--ok); padding: 6px 10px; }
.error { color: var(--bad); white-space: pre-wrap; }
.inline { display: inline-block; margin: 0 8px 8px 0; }
button, select, input { font: inherit; padding: 4px 10px; min-height: 32px; }
.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 8px 0; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); }
table.compact { width: auto; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
pre { overflow-x: auto; padding: 8px; border: 1px solid var(--line); }
.badge { display: inline-block; padding: 0 6px; border: 1px solid currentColor; border-radius: 4px; font-size: .85em; font-weight: 600; }
.phase-Halted, .phase-Failed, .result-Failed, .health-Failed, .health-Missing, .kind-failure { color: var(--bad); }
.phase-WaitingApproval, .phase-Verifying, .health-InProgress, .kind-approval, .kind-rollback, .result-RolledBack { color: var(--warn); }
.phase-Ready, .result-Applied, .health-Current, .kind-deploy { color: var(--ok); }
.phase-Unknown, .kind-release { color: var(--info); }
.timeline, .events { list-style: none; padding: 0; } .timeline > li, .events > li { padding: 6px 0; border-bottom: 1px solid var(--line); }
.checks { margin: 4px 0 0 16px; padding: 0; }
@media (max-width: 720px) {
  .table thead { position: absolute; left: -9999px; }
  .table table, .table tbody, .table tr, .table th, .table td { display: block; width: 100%; }
  .table tr { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 10px; padding: 4px 8px; }
  .table th, .table td { border: 0; padding: 3px 0; }
  .table td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; color: var(--muted); }
}
`;

/**
 * Live updates: the server sends `update` on /api/stream when what the pages show changed; the
 * page is fetched again and its <main> swapped in, the focus and any form being filled kept.
 * Without JavaScript the pages are complete as served.
 */
export const DASHBOARD_JS = `"use strict";
(function () {
  if (!window.EventSource || !window.DOMParser) return;
  var body = document.body;
  var busy = false, again = false;
  function shown() { return Number(body.getAttribute("data-version") || "0"); }
  function refresh(version) {
    if (busy) { again = true; return; }
    var active = document.activeElement;
    if (active && active.closest && active.closest("main form") && active.tagName !== "BUTTON") return;
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Plumber-Refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error(String(r.status))); })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var next = doc.getElementById("main"), cur = document.getElementById("main");
        if (!next || !cur) return;
        cur.innerHTML = next.innerHTML;
        body.setAttribute("data-version", doc.body.getAttribute("data-version") || String(version));
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(shown()); } });
  }
  var es = new EventSource("/api/stream");
  es.addEventListener("update", function (e) {
    var v = 0;
    try { v = JSON.parse(e.data).version; } catch (_) { return; }
    if (v > shown()) refresh(v);
  });
})();
`;
