import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Global-setup teardown stops the control plane: allow it a little time.
    teardownTimeout: 60_000,
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
          // A few pure tests compute a lot (1,200 apps over rounds, a year of time-zone slots): on a loaded
          // machine they pass 5 s, which says nothing about the code. Not a timing check: just room.
          testTimeout: 30_000,
          // No control plane, but the same scratch root and leftover check as the other projects.
          globalSetup: ["test/setup/scratch.ts"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/setup/global.ts"],
          // One shared control plane and git server: files run one at a time.
          fileParallelism: false,
          testTimeout: 120_000,
          // The first run may wait for scripts/build-binaries.sh (many minutes).
          hookTimeout: 600_000,
        },
      },
      {
        // The dashboard in real headless Chromium (test/bed/browser.ts), against the same control
        // plane and git server as integration.
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/setup/global.ts"],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 600_000,
        },
      },
      {
        // Slow fault-injection cases (kills, hostile git servers, storms): `npm run test:faults`.
        test: {
          name: "faults",
          include: ["test/faults/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/setup/global.ts"],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
