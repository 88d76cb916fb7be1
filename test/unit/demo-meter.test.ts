// What `plumber demo` prints as each step's cost: only the rounds it measured, per cluster, with
// writes and dry-runs apart, and a fresh count after each step.
import { describe, expect, it } from "vitest";
import { RequestStats } from "../../src/kube/client.js";
import { formatCost, Meter, writesOf } from "../../src/cli/demo-meter.js";

function setup() {
  const nightly = new RequestStats();
  const prod = new RequestStats();
  const git = { listings: 0, server: 0 };
  const meter = new Meter({
    clusters: [
      { name: "nightly", stats: nightly },
      { name: "prod", stats: prod },
    ],
    listings: () => git.listings,
    gitServer: () => git.server,
  });
  return { nightly, prod, git, meter };
}

describe("the demo's cost meter", () => {
  it("counts only what happens inside measured rounds, per cluster, writes and dry-runs apart", async () => {
    const { nightly, prod, git, meter } = setup();
    nightly.record({ method: "PATCH", path: "/outside" }); // before any round: not the step's
    await meter.measure(async () => {
      nightly.record({ method: "GET", path: "/a", list: true });
      nightly.record({ method: "PATCH", path: "/b", query: { dryRun: "All" } });
      nightly.record({ method: "PATCH", path: "/b" });
      git.listings++;
      git.server += 3;
    });
    prod.record({ method: "DELETE", path: "/between" }); // between rounds: not the step's either
    await meter.measure(async () => {
      prod.record({ method: "GET", path: "/c" });
      git.listings++;
      git.server++;
    });
    const cost = meter.take();
    expect(cost.rounds).toBe(2);
    expect(cost.api.get("nightly")).toEqual({ total: 3, writes: 1, dryRuns: 1 });
    expect(cost.api.get("prod")).toEqual({ total: 1, writes: 0, dryRuns: 0 });
    expect(writesOf(cost)).toEqual({ writes: 1, dryRuns: 1 });
    expect(formatCost(cost)).toBe(
      "cost: 2 rounds · nightly 3 API requests (1 write, 1 dry-run) · prod 1 API request (0 writes, 0 dry-runs) · git 4 requests (2 ref listings by plumber)",
    );
  });

  it("starts every step from zero, and counts a round that threw", async () => {
    const { nightly, meter } = setup();
    await meter.measure(async () => nightly.record({ method: "POST", path: "/x" }));
    meter.take();
    await expect(
      meter.measure(async () => {
        nightly.record({ method: "POST", path: "/y" });
        throw new Error("round failed");
      }),
    ).rejects.toThrow("round failed");
    const cost = meter.take();
    expect(cost.rounds).toBe(1);
    expect(cost.api.get("nightly")).toEqual({ total: 1, writes: 1, dryRuns: 0 });
    expect(meter.take().rounds).toBe(0);
  });
});
