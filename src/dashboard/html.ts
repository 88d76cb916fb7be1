// HTML built from templates that escape every interpolated value unless it is already HTML
// (made by `html` itself): a state message, a commit subject or a diff can never become markup.

const HTML = Symbol("html");

export interface Html {
  readonly [HTML]: true;
  readonly text: string;
}

function isHtml(v: unknown): v is Html {
  return typeof v === "object" && v !== null && HTML in v;
}

export function escapeHtml(s: string): string {
  // Every attribute is quoted, so these five are enough in text and in attribute values.
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export type Value = Html | string | number | boolean | undefined | null | readonly Value[];

function render(v: Value): string {
  if (v === undefined || v === null || v === false) return "";
  if (Array.isArray(v)) return v.map((x: Value) => render(x)).join("");
  if (isHtml(v)) return v.text;
  return escapeHtml(String(v));
}

/** Markup from a template literal: the literal parts are trusted, every `${value}` is escaped. */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0] ?? "";
  for (let i = 0; i < values.length; i++) out += render(values[i] as Value) + (strings[i + 1] ?? "");
  return { [HTML]: true, text: out };
}

