// The config errors parseConfig reports for a text, one per line; [] when it is valid.
import { parseConfig } from "../../src/config/load.js";
import { FileProblemError } from "../../src/types.js";

export function configProblems(text: string): string[] {
  try {
    parseConfig(text, "c.yaml");
    return [];
  } catch (e) {
    if (e instanceof FileProblemError) return e.message.split("\n");
    throw e;
  }
}
