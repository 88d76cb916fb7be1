// The files `plumber demo` ships with (examples/, scripts/build-binaries.sh), found relative to
// this module so they resolve the same from a git checkout (src/ or dist/src/) and from an
// installed package (node_modules/plumber/dist/src/).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE_NAME = "plumber";

/** The nearest directory at or above this module holding plumber's own package.json. */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(from);
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && isPlumber(manifest)) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`plumber's package.json not found at or above ${from}`);
    dir = parent;
  }
}

function isPlumber(manifest: string): boolean {
  try {
    return (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === PACKAGE_NAME;
  } catch {
    return false;
  }
}

/** A file or directory of the package; a clear error when the installed package lacks it. */
export function packageFile(...parts: string[]): string {
  const root = packageRoot();
  const p = join(root, ...parts);
  if (!existsSync(p)) {
    throw new Error(
      `${p} is missing: the plumber at ${root} was installed without ${parts.join("/")} ` +
        "(the demo runs from a git checkout or the npm package; the container image leaves it out)",
    );
  }
  return p;
}
