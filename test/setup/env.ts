// What integration tests get from the global test bed (test/setup/global.ts), typed.
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { inject } from "vitest";
import { TestRepo } from "../bed/testrepo.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** kubeconfig (context plumber-sandbox) of the shared control plane, as system:masters. */
    kubeconfigPath: string;
    /** https://127.0.0.1:<port> */
    kubeServer: string;
    /** Bearer token of kubeconfigPath's user. */
    kubeToken: string;
    /** CA PEM of the API server. */
    kubeCaPem: string;
    /** http://127.0.0.1:<port> of the shared git smart-HTTP server. */
    gitBaseUrl: string;
    /** Directory the git server serves: TestRepo.create(gitRoot, name) appears as <gitBaseUrl>/<name>.git. */
    gitRoot: string;
    /** Token the git server requires (Bearer, or as the Basic password). */
    gitToken: string;
    /** Directory with kube-apiserver, etcd, kubectl, kustomize. */
    binDir: string;
    /** Scratch space removed after the run (even if the runner is killed): see tempDir(). */
    scratchDir: string;
    /** The run's root (test/setup/scratch.ts): git root, scratch space and TMPDIR are inside it. */
    scratchRoot: string;
  }
}

export interface TestEnv {
  kubeconfigPath: string;
  kubeServer: string;
  kubeToken: string;
  kubeCaPem: string;
  gitBaseUrl: string;
  gitRoot: string;
  gitToken: string;
  binDir: string;
  scratchDir: string;
  /** Clone URL of a repo under gitRoot. */
  gitUrl(repoName: string): string;
}

export function testEnv(): TestEnv {
  const gitBaseUrl = inject("gitBaseUrl");
  return {
    kubeconfigPath: inject("kubeconfigPath"),
    kubeServer: inject("kubeServer"),
    kubeToken: inject("kubeToken"),
    kubeCaPem: inject("kubeCaPem"),
    gitBaseUrl,
    gitRoot: inject("gitRoot"),
    gitToken: inject("gitToken"),
    binDir: inject("binDir"),
    scratchDir: inject("scratchDir"),
    gitUrl: (name) => `${gitBaseUrl}/${name}${name.endsWith(".git") ? "" : ".git"}`,
  };
}

let counter = 0;

/**
 * A name unique across test files, workers and runs, valid as a namespace / object name / repo
 * name (DNS-1123 label: lowercase alphanumerics and '-', at most 63 characters).
 */
export function uniqueName(prefix = "t"): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "t";
  const suffix = `${process.pid.toString(36)}-${(counter++).toString(36)}-${randomBytes(2).toString("hex")}`;
  return `${clean.slice(0, 62 - suffix.length)}-${suffix}`;
}

/** A fresh repo on the shared git server, named uniqueName(prefix). */
export async function newTestRepo(prefix = "repo", opts?: { branch?: string }): Promise<TestRepo> {
  return TestRepo.create(testEnv().gitRoot, uniqueName(prefix), opts);
}

/** A fresh temp dir under the run's scratch space (cleaned up with the test bed). */
export async function tempDir(prefix = "tmp"): Promise<string> {
  return mkdtemp(join(testEnv().scratchDir, `${prefix.replace(/[^\w.-]/g, "_")}-`));
}
