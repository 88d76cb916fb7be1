// The dashboard's HTML: everything from the cluster or git is escaped, Secrets stay masked in the
// pending diff (the plan code `plumber plan` uses), buttons only with a session, hooks are stable.
import { describe, expect, it } from "vitest";
import { describePlan } from "../../src/actions/plan.js";
import { escapeHtml, html } from "../../src/dashboard/html.js";
import { appPage, eventsPage, fleetPage, loginPage, releasesPage, type AppPageData } from "../../src/dashboard/pages.js";
import type { FleetRow } from "../../src/dashboard/model.js";
import type { Plan } from "../../src/engine/engine.js";
import type { KubeObject } from "../../src/types.js";

const EVIL = `<img src=x onerror="alert(1)">`;

function row(over: Partial<FleetRow> = {}): FleetRow {
  return { app: "tasks", cluster: "prod", source: "main", short: "aaaaaaaaaaaa", revision: "a".repeat(40), phase: "Ready", health: "Healthy", drift: "none", lastResult: "Applied", message: "", ...over };
}

function appData(over: Partial<AppPageData> = {}): AppPageData {
  return { row: row(), history: [], objects: [], actions: { resume: false, retry: false }, ...over };
}

describe("escaping", () => {
  it("escapes every interpolated value, and keeps markup made by html itself", () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&`)).toBe("&#60;a href=&#34;x&#34; onclick=&#39;y&#39;&#62;&#38;");
    expect(html`<p>${EVIL}</p>`.text).toBe(`<p>${escapeHtml(EVIL)}</p>`);
    expect(html`<div>${html`<b>${"<i>"}</b>`}</div>`.text).toBe("<div><b>&#60;i&#62;</b></div>");
    expect(html`${["<", html`<br>`, 3, undefined, false]}`.text).toBe("&#60;<br>3");
  });

  it("a commit subject, a message or an app name from the cluster never becomes markup on any page", () => {
    const r = row({ app: `x"${EVIL}`, message: EVIL, commit: { subject: EVIL, author: EVIL, committedAt: "2026-12-01T00:00:00Z" }, commitAge: "1h" });
    const pages = [
      fleetPage({ version: 1 }, [r], {}, ["prod"], 1),
      appPage({ version: 1, user: EVIL, csrf: `"><script>` }, appData({ row: r, lastError: EVIL, history: [{ revision: "b".repeat(40), short: "b", result: "Failed", startedAt: "", finishedAt: "", changes: "", checks: [], message: EVIL, by: EVIL }] })),
      eventsPage({ version: 1 }, [{ at: "", kind: "deploy", subject: EVIL, cluster: "prod", revision: "", text: EVIL }]),
      releasesPage({ version: 1 }, [{ name: EVIL, schedule: EVIL, timezone: "UTC", suspend: false, target: "p/ci", next: [], nextRevision: { none: EVIL }, runs: [] }]),
      loginPage({ version: 1 }, EVIL),
    ];
    for (const p of pages) {
      expect(p).not.toContain("<img");
      expect(p).not.toContain("<script>");
      expect(p).not.toMatch(/<script(?! src="\/assets\/dashboard\.js" defer><\/script>)/);
    }
  });
});

describe("pages", () => {
  it("the fleet carries stable hooks and the filter form keeps the current choice", () => {
    const p = fleetPage({ version: 7 }, [row({ phase: "Halted", app: "a" }), row({ app: "b" })], { cluster: "prod", phase: "Halted" }, ["prod", "staging"], 5);
    expect(p).toContain('<body data-version="7">');
    expect(p).toContain('data-testid="fleet-row" data-app="a" data-cluster="prod" data-phase="Halted"');
    expect(p).toContain('<option value="prod" selected>');
    expect(p).toContain('<option value="Halted" selected>');
    expect(p).toContain("2 of 5 app × cluster pairs");
    expect(p).toContain('<label for="f-cluster">');
  });

  it("no session, no buttons; with one, each form carries the CSRF token", () => {
    const data = appData({ actions: { approve: "c".repeat(40), rollback: "d".repeat(40), resume: true, retry: true } });
    const anon = appPage({ version: 1 }, data);
    expect(anon).not.toContain("<form method=\"post\" action=\"/apps/");
    expect(anon).toContain('data-testid="no-actions"');
    const signed = appPage({ version: 1, user: "ada", csrf: "tok" }, data);
    for (const a of ["approve", "rollback", "resume", "retry"]) expect(signed).toContain(`action="/apps/tasks/${a}" data-testid="action-${a}"`);
    expect(signed.match(/name="csrf" value="tok"/g)).toHaveLength(5); // four actions and sign-out
    expect(signed).toContain(`name="revision" value="${"c".repeat(40)}"`);
    expect(releasesPage({ version: 1 }, [{ name: "n", schedule: "@daily", timezone: "UTC", suspend: false, target: "p/ci", next: [], nextRevision: { none: "x" }, runs: [] }])).not.toContain("release-now");
  });

  it("the pending diff is the plan's, with Secret values masked", () => {
    const live: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name: "creds", namespace: "ci" }, data: { password: "b2xkLXNlY3JldA==" } };
    const merged: KubeObject = { ...live, data: { password: "aHVudGVyMi12ZXJ5LXNlY3JldA==" } };
    const plan = {
      objects: [{ resource: { subject: "Secret/ci/creds", object: merged }, action: "configured", live, merged }],
      prune: [{ key: "k", subject: "ConfigMap/ci/old", live: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "old", namespace: "ci" }, data: { v: "<1>" } } }],
    } as unknown as Plan;
    const summary = describePlan(plan);
    expect(summary.counts).toEqual({ created: 0, configured: 1, unchanged: 0, pruned: 1 });
    const p = appPage({ version: 1 }, appData({ pending: { revision: "e".repeat(40), summary, gates: ["! tasks: approval: revision eeee needs approval"] } }));
    expect(p).toContain('data-testid="diff"');
    expect(p).toContain("*** (after)");
    expect(p).not.toContain("aHVudGVyMi12ZXJ5LXNlY3JldA==");
    expect(p).not.toContain("b2xkLXNlY3JldA==");
    expect(p).toContain("~ configure Secret/ci/creds");
    expect(p).toContain("- prune ConfigMap/ci/old");
    expect(p).toContain("-  v: &#60;1&#62;");
    expect(p).toContain("0 to create, 1 to configure, 1 to prune, 0 unchanged");
  });
});
