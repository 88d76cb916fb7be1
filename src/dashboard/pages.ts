// The dashboard's pages as server-rendered HTML (they work with JavaScript off; the script only
// swaps <main> when the SSE stream says something changed). No inline script or style: the CSP
// allows only /assets/*. Stable hooks for tests and scripts: data-testid, data-app, data-phase….
import type { PlanSummary } from "../actions/plan.js";
import { html, type Html } from "./html.js";
import { FLEET_PHASES, type AppActions, type EventView, type FleetFilter, type FleetRow, type HistoryItem, type ObjectView, type ReleaseView } from "./model.js";

export interface PageContext {
  /** The snapshot version the page shows (the SSE stream's); the script compares against it. */
  version: number;
  /** The signed-in user (TokenReview username); undefined: no token, so no buttons. */
  user?: string;
  /** The session's CSRF token, put in every form that posts. */
  csrf?: string;
  /** A one-time message after an action. */
  flash?: string;
  /** When the data was read. */
  readAt?: string;
}

type Nav = "fleet" | "releases" | "events" | "app" | "login";

function layout(ctx: PageContext, nav: Nav, title: string, body: Html): string {
  const link = (href: string, name: Nav, label: string): Html => html`<a href="${href}"${nav === name ? html` aria-current="page"` : ""}>${label}</a>`;
  const who = ctx.user
    ? html`<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="${ctx.csrf ?? ""}"><span data-testid="user">${ctx.user}</span> <button type="submit" data-testid="logout">Sign out</button></form>`
    : html`<a href="/login" data-testid="login-link">Sign in</a>`;
  return `<!doctype html>${
    html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title} · plumber</title><link rel="stylesheet" href="/assets/dashboard.css"><script src="/assets/dashboard.js" defer></script></head>
<body data-version="${String(ctx.version)}"><a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Main"><strong class="brand">plumber</strong> ${link("/", "fleet", "Fleet")} ${link("/releases", "releases", "Releases")} ${link("/events", "events", "Events")}</nav><div class="who">${who}</div></header>
<main id="main" tabindex="-1"><h1>${title}</h1>${ctx.flash ? html`<p class="flash" role="status" data-testid="flash">${ctx.flash}</p>` : ""}${body}${ctx.readAt ? html`<p class="muted" data-testid="read-at">Read at <time datetime="${ctx.readAt}">${ctx.readAt}</time>; updates live.</p>` : ""}</main>
</body></html>`.text
  }`;
}

function phaseBadge(phase: string): Html {
  return html`<span class="badge phase-${phase}">${phase}</span>`;
}

function revisionCell(r: FleetRow): Html {
  if (!r.revision) return html`-`;
  const c = r.commit;
  return html`<code title="${r.revision}">${r.short}</code>${c ? html`<div class="commit"><span data-testid="subject">${c.subject}</span> <span class="muted">${c.author}, ${r.commitAge ?? ""} ago</span></div>` : ""}`;
}

function fleetRowHtml(r: FleetRow): Html {
  return html`<tr data-testid="fleet-row" data-app="${r.app}" data-cluster="${r.cluster}" data-phase="${r.phase}">
<th scope="row" data-label="App"><a href="/apps/${encodeURIComponent(r.app)}">${r.app}</a></th>
<td data-label="Cluster" data-col="cluster">${r.cluster}</td>
<td data-label="Source" data-col="source">${r.source}</td>
<td data-label="Revision" data-col="revision">${revisionCell(r)}</td>
<td data-label="Phase" data-col="phase">${phaseBadge(r.phase)}</td>
<td data-label="Health" data-col="health">${r.health}</td>
<td data-label="Drift" data-col="drift">${r.drift}</td>
<td data-label="Pending" data-col="pending">${r.pending ? html`<code>${r.pending}</code>` : ""}</td>
<td data-label="Last result" data-col="result">${r.lastResult}${r.updatedAgo ? html` <span class="muted"><time datetime="${r.updatedAt ?? ""}">${r.updatedAgo} ago</time></span>` : ""}${r.message ? html`<div class="msg">${r.message}</div>` : ""}</td>
</tr>`;
}

function select(name: string, label: string, options: readonly string[], current: string | undefined): Html {
  return html`<label for="f-${name}">${label}</label> <select id="f-${name}" name="${name}"><option value="">all</option>${options.map((o) => html`<option value="${o}"${o === current ? html` selected` : ""}>${o}</option>`)}</select>`;
}

export function fleetPage(ctx: PageContext, rows: FleetRow[], filter: FleetFilter, clusters: readonly string[], total: number): string {
  const body = html`<form id="filters" method="get" action="/" class="filters" role="search" aria-label="Filter the fleet">
${select("cluster", "Cluster", clusters, filter.cluster)} ${select("state", "State", FLEET_PHASES, filter.phase)} <button type="submit">Filter</button></form>
<p class="muted" data-testid="fleet-count">${rows.length} of ${total} app × cluster pairs, problems first.</p>
<div class="table"><table data-testid="fleet"><caption class="sr-only">Apps by cluster</caption><thead><tr><th scope="col">App</th><th scope="col">Cluster</th><th scope="col">Source</th><th scope="col">Revision</th><th scope="col">Phase</th><th scope="col">Health</th><th scope="col">Drift</th><th scope="col">Pending</th><th scope="col">Last result</th></tr></thead>
<tbody>${rows.map(fleetRowHtml)}</tbody></table></div>${rows.length === 0 ? html`<p data-testid="empty">No app matches.</p>` : ""}`;
  return layout(ctx, "fleet", "Fleet", body);
}

export type PendingView = { revision: string; summary: PlanSummary; gates: string[] } | { revision: string; error: string };

export interface AppPageData {
  row: FleetRow;
  history: HistoryItem[];
  pending?: PendingView;
  drift?: { drifted: string[]; missing: string[]; contested: Record<string, string[]> } | "unknown";
  objects: ObjectView[];
  /** The last failure, with file:line when the revision had a bad manifest. */
  lastError?: string;
  warnings?: string;
  pinnedAt?: string;
  actions: AppActions;
}

function actionForm(ctx: PageContext, app: string, action: string, label: string, fields: Record<string, string> = {}): Html {
  return html`<form method="post" action="/apps/${encodeURIComponent(app)}/${action}" data-testid="action-${action}" class="inline"><input type="hidden" name="csrf" value="${ctx.csrf ?? ""}">${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button type="submit" data-testid="${action}">${label}</button></form>`;
}

function actionsHtml(ctx: PageContext, d: AppPageData): Html {
  if (!ctx.user) return html`<p class="muted" data-testid="no-actions">Sign in with a bearer token to approve, roll back, resume or retry.</p>`;
  const a = d.actions;
  const app = d.row.app;
  return html`<section aria-labelledby="h-actions" data-testid="actions"><h2 id="h-actions">Actions</h2>
${a.approve ? actionForm(ctx, app, "approve", `Approve ${a.approve.slice(0, 12)}`, { revision: a.approve }) : ""}
${a.rollback ? actionForm(ctx, app, "rollback", `Roll back to ${a.rollback.slice(0, 12)}`, { revision: a.rollback }) : ""}
${a.resume ? actionForm(ctx, app, "resume", "Resume (follow the branch)") : ""}
${a.retry ? actionForm(ctx, app, "retry", "Retry") : ""}</section>`;
}

function historyHtml(items: HistoryItem[]): Html {
  if (items.length === 0) return html`<p>No deploys yet.</p>`;
  return html`<ol class="timeline">${items.map(
    (h) => html`<li data-testid="history-item" data-result="${h.result}" data-revision="${h.revision}"><span class="badge result-${h.result}">${h.result}</span> <code>${h.short}</code> <time datetime="${h.finishedAt}">${h.finishedAt}</time>${h.changes ? html` · ${h.changes}` : ""}${h.by ? html` · by <span data-testid="by">${h.by}</span>` : ""}
${h.checks.length ? html`<ul class="checks">${h.checks.map((c) => html`<li data-testid="check" data-passed="${String(c.passed)}">${c.phase}/${c.name}: ${c.passed ? "passed" : c.reason} <code>${c.object}</code></li>`)}</ul>` : ""}
${h.cause ? html`<div class="msg">cause: ${h.cause}</div>` : ""}${h.message ? html`<div class="msg">${h.message.split("\n")[0] ?? ""}</div>` : ""}</li>`,
  )}</ol>`;
}

function pendingHtml(p: PendingView | undefined): Html {
  if (!p) return html`<p data-testid="no-pending">Nothing pending: the cluster is at the branch head.</p>`;
  if ("error" in p) return html`<p>Revision <code>${p.revision.slice(0, 12)}</code> cannot be planned:</p><pre class="error" data-testid="plan-error">${p.error}</pre>`;
  const c = p.summary.counts;
  return html`<p>Revision <code data-testid="pending-revision">${p.revision.slice(0, 12)}</code>: ${c.created} to create, ${c.configured} to configure, ${c.pruned} to prune, ${c.unchanged} unchanged.</p>
${p.gates.length ? html`<ul data-testid="gates">${p.gates.map((g) => html`<li>${g}</li>`)}</ul>` : ""}
${p.summary.changes.length ? html`<pre class="diff" data-testid="diff">${p.summary.changes.map((ch) => html`${ch.diff ? html`${ch.diff}\n` : ""}${ch.verb ? html`<strong>${ch.verb} ${ch.subject}${ch.note ? ` (${ch.note})` : ""}</strong>\n` : ""}${ch.warnings.map((w) => html`! ${ch.subject}: warning: ${w}\n`)}`)}</pre>` : ""}`;
}

function driftHtml(d: AppPageData["drift"]): Html {
  if (d === undefined) return html`<p>Nothing applied, so no drift to look at.</p>`;
  if (d === "unknown") return html`<p>Unknown: the stored hashes were made with another key; the next cycle recomputes them.</p>`;
  if (d.drifted.length + d.missing.length === 0) return html`<p>None: every object is as plumber applied it.</p>`;
  return html`<ul>${d.drifted.map((k) => html`<li data-drift="drifted">${k} drifted${d.contested[k]?.length ? html` (fields taken by ${(d.contested[k] ?? []).join(", ")})` : ""}</li>`)}${d.missing.map((k) => html`<li data-drift="missing">${k} missing</li>`)}</ul>`;
}

function objectsHtml(objects: ObjectView[]): Html {
  if (objects.length === 0) return html`<p>No objects.</p>`;
  return html`<div class="table"><table><thead><tr><th scope="col">Object</th><th scope="col">Health</th><th scope="col">Why</th></tr></thead><tbody>${objects.map(
    (o) => html`<tr data-testid="object" data-health="${o.health}"><th scope="row" data-label="Object"><code>${o.key}</code></th><td data-label="Health"><span class="badge health-${o.health}">${o.health}</span></td><td data-label="Why">${o.reason}${o.message ? `: ${o.message}` : ""}</td></tr>`,
  )}</tbody></table></div>`;
}

export function appPage(ctx: PageContext, d: AppPageData): string {
  const r = d.row;
  const body = html`<p data-testid="app-summary" data-app="${r.app}" data-phase="${r.phase}">${phaseBadge(r.phase)} on cluster <strong>${r.cluster}</strong>, following <strong>${r.source}</strong>, at ${revisionCell(r)}${d.pinnedAt ? html` — <strong data-testid="pinned">pinned at <code>${d.pinnedAt.slice(0, 12)}</code></strong>` : ""}</p>
${r.message ? html`<p class="msg" data-testid="status-message">${r.message}</p>` : ""}
${actionsHtml(ctx, d)}
${d.lastError ? html`<section aria-labelledby="h-error" data-testid="last-error"><h2 id="h-error">Last error</h2><pre class="error">${d.lastError}</pre></section>` : ""}
<section aria-labelledby="h-pending" data-testid="pending"><h2 id="h-pending">Pending plan</h2>${pendingHtml(d.pending)}</section>
<section aria-labelledby="h-drift" data-testid="drift"><h2 id="h-drift">Live drift</h2>${driftHtml(d.drift)}</section>
<section aria-labelledby="h-objects" data-testid="objects"><h2 id="h-objects">Objects</h2>${objectsHtml(d.objects)}</section>
${d.warnings ? html`<section aria-labelledby="h-warn"><h2 id="h-warn">Warnings</h2><pre>${d.warnings}</pre></section>` : ""}
<section aria-labelledby="h-history" data-testid="history"><h2 id="h-history">History</h2>${historyHtml(d.history)}</section>`;
  return layout(ctx, "app", r.app, body);
}

export function releasesPage(ctx: PageContext, releases: ReleaseView[]): string {
  const body = releases.length
    ? html`${releases.map(
        (r) => html`<section data-testid="release" data-release="${r.name}" aria-labelledby="rel-${r.name}"><h2 id="rel-${r.name}">${r.name}</h2>
<p><code>${r.schedule}</code> in ${r.timezone} → ${r.target}${r.suspend ? html` <span class="badge phase-Halted">suspended</span>` : ""}</p>
<p data-testid="next-revision">Next run takes: ${"revision" in r.nextRevision ? html`<code>${r.nextRevision.revision.slice(0, 12)}</code> (${r.nextRevision.from})` : html`nothing: ${r.nextRevision.none}`}</p>
${r.next.length ? html`<table class="compact"><caption>Next fire times</caption><thead><tr><th scope="col">${r.timezone}</th><th scope="col">UTC</th></tr></thead><tbody>${r.next.map((n) => html`<tr data-testid="next-fire"><td>${n.local}</td><td><time datetime="${n.utc}">${n.utc}</time></td></tr>`)}</tbody></table>` : html`<p>No upcoming runs.</p>`}
${ctx.user ? html`<form method="post" action="/releases/${encodeURIComponent(r.name)}/run" class="inline" data-testid="action-release-now"><input type="hidden" name="csrf" value="${ctx.csrf ?? ""}"><button type="submit" data-testid="release-now">Release now</button></form>` : ""}
${r.runs.length ? html`<div class="table"><table><caption>Last runs</caption><thead><tr><th scope="col">Slot</th><th scope="col">Trigger</th><th scope="col">Result</th><th scope="col">Run</th><th scope="col">Version</th><th scope="col">Finished</th><th scope="col">Message</th></tr></thead><tbody>${r.runs.map(
          (h) => html`<tr data-testid="release-run" data-result="${h.result}"><td data-label="Slot">${h.slot}</td><td data-label="Trigger">${h.trigger}${h.by ? ` by ${h.by}` : ""}</td><td data-label="Result">${h.result}</td><td data-label="Run"><code>${h.run}</code></td><td data-label="Version"><code>${h.revision}</code></td><td data-label="Finished">${h.finishedAt}</td><td data-label="Message">${h.message}</td></tr>`,
        )}</tbody></table></div>` : html`<p>No runs yet.</p>`}</section>`,
      )}`
    : html`<p data-testid="empty">No scheduled releases in the config.</p>`;
  return layout(ctx, "releases", "Releases", body);
}

export function eventsPage(ctx: PageContext, events: EventView[]): string {
  const body = events.length
    ? html`<ol class="events">${events.map(
        (e) => html`<li data-testid="event" data-kind="${e.kind}" data-subject="${e.subject}"><time datetime="${e.at}">${e.at}</time> <span class="badge kind-${e.kind}">${e.kind}</span> <strong>${e.subject}</strong> <span class="muted">${e.cluster}</span> ${e.text}</li>`,
      )}</ol>`
    : html`<p data-testid="empty">No events yet.</p>`;
  return layout(ctx, "events", "Events", body);
}

export function loginPage(ctx: PageContext, error?: string): string {
  const body = html`${error ? html`<p class="error" role="alert" data-testid="login-error">${error}</p>` : ""}
<p>Paste a Kubernetes bearer token (e.g. <code>kubectl create token NAME</code>). plumber checks it with a TokenReview and keeps it only in memory for this session; each action is authorised with a SubjectAccessReview.</p>
<form method="post" action="/login" data-testid="login-form"><label for="token">Bearer token</label><br><input id="token" name="token" type="password" autocomplete="off" required size="40"> <button type="submit" data-testid="login">Sign in</button></form>`;
  return layout(ctx, "login", "Sign in", body);
}

export function messagePage(ctx: PageContext, title: string, message: string, testid: string): string {
  return layout(ctx, "app", title, html`<p data-testid="${testid}" role="alert">${message}</p><p><a href="/">Back to the fleet</a></p>`);
}
