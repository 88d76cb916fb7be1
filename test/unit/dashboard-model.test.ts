// The dashboard's view models: ordering (problems first), filters, phases, history, releases'
// next revision, the events feed, commit parsing and sessions. Pure, no I/O.
import { describe, expect, it } from "vitest";
import type { AppConfig, ReleaseConfig } from "../../src/config/types.js";
import { parseCommit } from "../../src/dashboard/commit.js";
import { ago, appActions, fleetEvents, fleetRows, historyItems, nextRevisionOf, parseFilter, releaseView, type AppReading, type ReleaseReading } from "../../src/dashboard/model.js";
import { cookieValue, csrfMatches, Sessions } from "../../src/dashboard/sessions.js";
import type { AppState, DeployRecord } from "../../src/state/store.js";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);
const NOW = new Date("2026-12-01T12:00:00Z");

function app(name: string, cluster = "prod"): AppConfig {
  return { name, cluster, repo: "r", branch: "main" } as AppConfig;
}

function reading(name: string, state: Partial<AppState> | undefined, extra: Partial<AppReading> = {}): AppReading {
  return { config: app(name, extra.config?.cluster), ...(state ? { state: { app: name, inventory: [], history: [], ...state } as AppState } : {}), ...extra };
}

const ready = (rev = A): Partial<AppState> => ({ phase: "Ready", revision: rev, goodRevision: rev, lastResult: "Applied" });

describe("fleet rows", () => {
  const fleet: AppReading[] = [
    reading("ok", ready()),
    reading("verifying", { phase: "Verifying", revision: A, verifyStartedAt: NOW.toISOString(), lastResult: "Applied" }),
    reading("waiting", { ...ready(), phase: "WaitingApproval", pendingRevision: B }),
    reading("failed", { ...ready(), lastResult: "Failed", message: "a.yaml:3: bad\nmore" }),
    reading("halted", { phase: "Halted", revision: A, failedRevision: B, message: "halted" }),
    reading("unread", undefined, { error: "cannot read unread: connection refused" }),
    reading("other-ok", ready(), { config: app("other-ok", "staging") }),
  ];

  it("lists problems first: Halted, Failed, WaitingApproval, Verifying, then the unknown, then Ready", () => {
    expect(fleetRows(fleet, new Map(), NOW).map((r) => `${r.phase}:${r.app}`)).toEqual([
      "Halted:halted",
      "Failed:failed",
      "WaitingApproval:waiting",
      "Verifying:verifying",
      "Unknown:unread",
      "Ready:ok",
      "Ready:other-ok",
    ]);
  });

  it("filters by cluster and by state; unknown filter values are ignored", () => {
    expect(fleetRows(fleet, new Map(), NOW, { cluster: "staging" }).map((r) => r.app)).toEqual(["other-ok"]);
    expect(fleetRows(fleet, new Map(), NOW, { phase: "Ready" }).map((r) => r.app)).toEqual(["ok", "other-ok"]);
    expect(parseFilter(new URLSearchParams("cluster=staging&state=Failed"), ["prod", "staging"])).toEqual({ cluster: "staging", phase: "Failed" });
    expect(parseFilter(new URLSearchParams("cluster=nope&state=<script>"), ["prod", "staging"])).toEqual({});
  });

  it("shows revision, commit, pending revision, drift, health and the first line of the message", () => {
    const commits = new Map([[A, { subject: "Bump tasks", author: "Ada", committedAt: "2026-12-01T09:00:00.000Z" }]]);
    const r = reading("x", { ...ready(), pendingRevision: B, message: "waits\nfor approval", updatedAt: "2026-12-01T11:58:00Z" }, {
      drift: { drifted: ["k1"], missing: ["k2", "k3"], contested: {} },
      objects: [
        { key: "k1", health: "Current", reason: "", message: "" },
        { key: "k2", health: "InProgress", reason: "", message: "" },
      ],
    });
    expect(fleetRows([r], commits, NOW)[0]).toMatchObject({
      short: A.slice(0, 12),
      commit: { subject: "Bump tasks", author: "Ada" },
      commitAge: "3h",
      pending: B.slice(0, 12),
      drift: "1 drifted, 2 missing",
      health: "Progressing",
      updatedAgo: "2m",
      message: "waits",
    });
    const degraded = reading("y", ready(), { drift: { drifted: [], missing: [], contested: {} }, objects: [{ key: "k", health: "Failed", reason: "", message: "" }] });
    expect(fleetRows([degraded], new Map(), NOW)[0]).toMatchObject({ drift: "none", health: "Degraded" });
    expect(fleetRows([reading("z", undefined)], new Map(), NOW)[0]).toMatchObject({ phase: "Unknown", short: "-", drift: "-", health: "-" });
  });

  it("says how long ago", () => {
    expect(ago("2026-12-01T11:59:30Z", NOW)).toBe("30s");
    expect(ago("2026-11-28T12:00:00Z", NOW)).toBe("3d");
    expect(ago("garbage", NOW)).toBe("");
  });
});

describe("app page", () => {
  it("history items carry change counts, checks, cause and who acted", () => {
    const h: DeployRecord[] = [
      { revision: B, startedAt: "t0", finishedAt: "t1", result: "RolledBack", changes: { configured: 2, created: 0 }, cause: `${C}: health` },
      { revision: C, startedAt: "t0", finishedAt: "t1", result: "Failed", checks: [{ name: "smoke", phase: "post", passed: false, object: "TaskRun/ci/smoke-1", reason: "Failed", message: "m" }] },
      { revision: A, startedAt: "t0", finishedAt: "t1", result: "Applied", changes: { created: 3 }, by: "system:serviceaccount:ci:captain" },
    ];
    const items = historyItems(h);
    expect(items.map((i) => i.changes)).toEqual(["2 configured", "", "3 created"]);
    expect(items[1]?.checks).toEqual([{ name: "smoke", phase: "post", passed: false, object: "TaskRun/ci/smoke-1", reason: "Failed" }]);
    expect(items[0]?.cause).toBe(`${C}: health`);
    expect(items[2]?.by).toBe("system:serviceaccount:ci:captain");
  });

  it("offers approve only while waiting, rollback to the CLI's default, resume only when pinned, retry after a failure", () => {
    const history: DeployRecord[] = [
      { revision: B, startedAt: "", finishedAt: "", result: "Applied" },
      { revision: C, startedAt: "", finishedAt: "", result: "Failed" },
      { revision: A, startedAt: "", finishedAt: "", result: "Applied" },
    ];
    const waiting = { app: "x", inventory: [], history, phase: "WaitingApproval", pendingRevision: C, revision: B } as AppState;
    expect(appActions(waiting, false)).toEqual({ approve: C, rollback: A, resume: false, retry: false });
    const halted = { app: "x", inventory: [], history: [], phase: "Halted", failedRevision: C, message: "m" } as AppState;
    expect(appActions(halted, true)).toEqual({ resume: true, retry: true });
  });
});

describe("releases", () => {
  const base: ReleaseConfig = {
    name: "nightly",
    schedule: "0 2 * * *",
    timezone: "Europe/Paris",
    repo: "r",
    branch: "main",
    cluster: "prod",
    namespace: "ci",
    suspend: false,
    template: { path: "run.yaml" },
    params: {},
    revision: { kind: "head" },
    concurrency: "forbid",
    skipIfUnchanged: false,
  };
  const slot = new Date("2026-12-02T01:00:00Z");

  it("shows the next fire times in the zone and in UTC, and the last runs with their version tag", () => {
    const r: ReleaseReading = {
      config: base,
      upcoming: [slot],
      head: A,
      state: { release: "nightly", since: "", history: [{ slot: "2026-12-01T01:00:00.000Z", trigger: "manual", result: "Succeeded", run: "nightly-1", revision: B, by: "ada" }] },
    };
    const v = releaseView(r);
    expect(v.next).toEqual([{ local: expect.stringContaining("02:00"), utc: "2026-12-02T01:00:00Z" }]);
    expect(v.runs).toEqual([expect.objectContaining({ result: "Succeeded", revision: B.slice(0, 12), run: "nightly-1", by: "ada" })]);
    expect(v.nextRevision).toEqual({ revision: A, from: "head of r/main" });
    expect(releaseView({ ...r, config: { ...base, suspend: true } }).next).toEqual([]);
  });

  it("a lagged release takes what its app has run long enough before the slot, and says from where", () => {
    const config: ReleaseConfig = { ...base, revision: { kind: "deployedTo", app: "staging", olderThanMs: 24 * 3600_000 } };
    const laggedHistory: DeployRecord[] = [
      { revision: C, startedAt: "", finishedAt: "2026-12-01T20:00:00Z", result: "Applied" },
      { revision: B, startedAt: "", finishedAt: "2026-11-30T20:00:00Z", result: "Applied" },
    ];
    expect(nextRevisionOf({ config, upcoming: [slot], laggedHistory })).toEqual({ revision: B, from: "deployed to staging at 2026-11-30T20:00:00Z" });
    expect(nextRevisionOf({ config, upcoming: [slot], laggedHistory: [] })).toMatchObject({ none: expect.stringContaining("staging has no revision") });
  });
});

describe("events", () => {
  it("merges deploys, rollbacks, failures, waiting approvals and release runs, newest first", () => {
    const apps = [
      reading("x", {
        ...ready(),
        phase: "WaitingApproval",
        pendingRevision: C,
        updatedAt: "2026-12-01T10:00:00Z",
        history: [
          { revision: B, startedAt: "", finishedAt: "2026-12-01T09:00:00Z", result: "RolledBack", cause: "c: health" },
          { revision: A, startedAt: "", finishedAt: "2026-12-01T08:00:00Z", result: "Applied", by: "ada" },
        ],
      }),
    ];
    const releases: ReleaseReading[] = [{ config: { name: "nightly", cluster: "prod" } as ReleaseConfig, upcoming: [], state: { release: "nightly", since: "", history: [{ slot: "2026-12-01T08:30:00Z", trigger: "scheduled", result: "Running", run: "n-1" }] } }];
    const ev = fleetEvents(apps, releases);
    expect(ev.map((e) => e.kind)).toEqual(["approval", "rollback", "release", "deploy"]);
    expect(ev[3]?.text).toBe(`deployed ${A.slice(0, 12)} (by ada)`);
    expect(fleetEvents(apps, releases, 2)).toHaveLength(2);
  });
});

describe("commit metadata", () => {
  it("reads subject, author and committer time, past a signature header", () => {
    const raw = [
      `tree ${A}`,
      `parent ${B}`,
      "author Ada Lovelace <ada@example.com> 1764576000 +0100",
      "committer Grace Hopper <grace@example.com> 1764579600 -0500",
      "gpgsig -----BEGIN PGP SIGNATURE-----",
      " abc",
      " -----END PGP SIGNATURE-----",
      "",
      "Bump the build task",
      "",
      "body",
    ].join("\n");
    expect(parseCommit(raw)).toEqual({ subject: "Bump the build task", author: "Ada Lovelace", committedAt: new Date(1764579600 * 1000).toISOString() });
    expect(parseCommit("not a commit")).toBeUndefined();
  });
});

describe("sessions", () => {
  it("expire, are bounded, and check CSRF tokens exactly", () => {
    let t = 0;
    const s = new Sessions(1000, 2, () => t);
    const who = { username: "ada", groups: [] };
    const one = s.create("tok1", who);
    expect(s.get(one.id)).toBe(one);
    expect(csrfMatches(one, one.csrf)).toBe(true);
    expect(csrfMatches(one, one.csrf.slice(1))).toBe(false);
    expect(csrfMatches(one, undefined)).toBe(false);
    s.create("tok2", who);
    s.create("tok3", who);
    expect(s.get(one.id)).toBeUndefined();
    const four = s.create("tok4", who);
    t = 1000;
    expect(s.get(four.id)).toBeUndefined();
    expect(s.get(undefined)).toBeUndefined();
  });

  it("finds the session cookie among others", () => {
    expect(cookieValue("a=1; plumber_session=xyz; b=2", "plumber_session")).toBe("xyz");
    expect(cookieValue("plumber_sessionx=1", "plumber_session")).toBeUndefined();
    expect(cookieValue(undefined, "plumber_session")).toBeUndefined();
  });
});

describe("sources", () => {
  it("a promoted app says which app it is promoted from; a pattern app the branch it picked", () => {
    const promoted = { ...app("prod-tasks"), promote: { from: "staging-tasks", soakMs: 0 } } as AppConfig;
    expect(fleetRows([{ config: promoted }], new Map(), NOW)[0]?.source).toBe("promoted from staging-tasks");
    const pattern = { ...app("rel"), branchPattern: "release-v*" } as AppConfig;
    expect(fleetRows([{ config: pattern }], new Map(), NOW)[0]?.source).toBe("release-v*");
    expect(fleetRows([{ config: pattern, state: { app: "rel", inventory: [], history: [], branch: "release-v1.2" } }], new Map(), NOW)[0]?.source).toBe("release-v1.2");
  });
});

describe("the fleet's one-line message", () => {
  it("keeps the line a heading announces (which object failed, file:line), and clips", () => {
    const failed = reading("f", { ...ready(), lastResult: "Failed", message: "1 object(s) failed:\n  config.yaml:1: ConfigMap/ci/x: Invalid value\n  more" });
    expect(fleetRows([failed], new Map(), NOW)[0]?.message).toBe("1 object(s) failed: config.yaml:1: ConfigMap/ci/x: Invalid value");
    expect(fleetRows([reading("w", { ...ready(), message: "waits for approval\nsecond" })], new Map(), NOW)[0]?.message).toBe("waits for approval");
    expect(fleetRows([reading("l", { ...ready(), message: "x".repeat(500) })], new Map(), NOW)[0]?.message).toHaveLength(200);
  });
});
