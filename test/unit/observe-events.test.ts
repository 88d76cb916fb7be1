// The one event vocabulary's fan-out: every observer hears every event, in order, whatever the others do.
import { describe, expect, it } from "vitest";
import { fanOut, type ObservedEvent, type Observer } from "../../src/observe/events.js";

describe("fanOut", () => {
  const e: ObservedEvent = { type: "deploy", outcome: "deployed", app: "tasks", cluster: "c1", revision: "r", result: "applied 1" };

  it("tells each observer in order; one that throws does not keep the others from hearing, and its error is reported", () => {
    const heard: string[] = [];
    const errors: unknown[] = [];
    const boom = new Error("boom");
    const o = fanOut(
      [
        { observe: () => heard.push("first") },
        {
          observe: () => {
            throw boom;
          },
        },
        { observe: (x) => heard.push(`third ${x.type}`) },
      ] satisfies Observer[],
      (err) => errors.push(err),
    );
    o.observe(e);
    o.observe(e);
    expect(heard).toEqual(["first", "third deploy", "first", "third deploy"]);
    expect(errors).toEqual([boom, boom]);
  });
});
