/**
 * A job's items and how each fills the task's arguments: a range of whole
 * numbers or a list of JSON values; argument templates with `{item}` (the
 * value) and `{item.KEY}` (a field of an object item); an object item's
 * keys also fill the arguments of the same name. Pure: no I/O.
 */
import {
  checkTaskArg,
  type JobItems,
  type JobItemsSummary,
  type JsonValue,
  type MessageMap,
  PiclusterError,
  readItemRange,
} from "@picluster/common";
import type { QueueItem } from "./queue.js";

/** E_BAD_TASK, E_BAD_SELECTOR, E_NO_SUCH_NODE, E_NO_NODES, E_TASK_NOT_ALLOWED, E_BAD_ITEMS, E_BAD_OPTION. */
export class JobRequestError extends PiclusterError {}

export type TaskArg = NonNullable<MessageMap["details"]["tasks"]>[number]["args"][number];

/** Most items one job may have (a 1 000 000-item job stores ~60 MB of rows). */
export const MAX_JOB_ITEMS = 1_000_000;
/** Problems named when items do not fit the task; the rest are counted. */
const MAX_PROBLEMS = 5;
const PLACEHOLDER = /\{item(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}/g;
const ARG_NAME = /^[a-z][a-z0-9_]*$/;

/** `"1..10000"` as a range of items. */
export function parseRange(text: string): JobItems {
  const range = readItemRange(text);
  if (range === undefined)
    throw new JobRequestError(
      "E_BAD_ITEMS",
      `"${text}" is not a range: write FROM..TO, e.g. 1..100`,
    );
  return range;
}

export function itemCount(items: JobItems): number {
  return items.kind === "range" ? items.to - items.from + 1 : items.values.length;
}

export function summarize(items: JobItems): JobItemsSummary {
  return items.kind === "range"
    ? { kind: "range", from: items.from, to: items.to }
    : { kind: "list", count: items.values.length };
}

/** The items, numbered from 0, `chunk` at a time (so a large job is written in pieces). */
export function* itemChunks(items: JobItems, chunk: number): Generator<QueueItem[]> {
  const n = itemCount(items);
  for (let start = 0; start < n; start += chunk) {
    const end = Math.min(n, start + chunk);
    const out: QueueItem[] = [];
    for (let i = start; i < end; i++)
      out.push({
        index: i,
        value: items.kind === "range" ? items.from + i : (items.values[i] as JsonValue),
      });
    yield out;
  }
}

/** Throws E_BAD_ITEMS when the items themselves are malformed (whatever the task). */
export function checkItemShape(items: JobItems): void {
  if (items.kind === "range") {
    if (!Number.isSafeInteger(items.from) || !Number.isSafeInteger(items.to))
      throw new JobRequestError("E_BAD_ITEMS", "a range's ends are whole numbers");
    if (items.from > items.to)
      throw new JobRequestError(
        "E_BAD_ITEMS",
        `range ${items.from}..${items.to} is empty: its start is past its end`,
      );
  } else if (items.values.length === 0) {
    throw new JobRequestError("E_BAD_ITEMS", "the list of items is empty");
  }
  const n = itemCount(items);
  if (n > MAX_JOB_ITEMS)
    throw new JobRequestError(
      "E_BAD_ITEMS",
      `${n} items: a job has at most ${MAX_JOB_ITEMS}; split it into several jobs`,
    );
}

function text(v: JsonValue | undefined, what: string): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new JobRequestError(
    "E_BAD_ITEMS",
    `${what} is ${v === undefined ? "missing" : v === null ? "null" : Array.isArray(v) ? "a list" : "an object"}: only a string, number or boolean fills an argument`,
  );
}

function isObject(v: JsonValue): v is { [key: string]: JsonValue } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The arguments one item gives the task. Throws E_BAD_ITEMS naming what is wrong. */
export function renderArgs(
  template: Readonly<Record<string, string>>,
  value: JsonValue,
): Record<string, string> {
  const args: Record<string, string> = {};
  if (isObject(value))
    for (const [key, v] of Object.entries(value)) args[key] = text(v, `field "${key}"`);
  for (const [name, tpl] of Object.entries(template))
    args[name] = tpl.replace(PLACEHOLDER, (_whole, key: string | undefined) => {
      if (key === undefined) return text(value, "the item");
      if (!isObject(value))
        throw new JobRequestError("E_BAD_ITEMS", `{item.${key}} needs an object item`);
      return text(value[key], `field "${key}"`);
    });
  return args;
}

function describeItem(index: number, value: JsonValue): string {
  const json = JSON.stringify(value);
  return `item ${index} (${json.length > 40 ? `${json.slice(0, 40)}…` : json})`;
}

/**
 * Whether every item fills exactly the task's declared arguments with
 * values the node would accept (the node checks again; this only refuses
 * early). Returns the problems, the first few named.
 */
export function checkItemsAgainst(
  items: JobItems,
  template: Readonly<Record<string, string>>,
  declared: readonly TaskArg[],
  task: string,
): string[] {
  for (const name of Object.keys(template))
    if (!ARG_NAME.test(name))
      return [`"${name}" is not an argument name (lowercase letters, digits and _)`];
  const specs = new Map(declared.map((a) => [a.name, a]));
  const problems: string[] = [];
  let more = 0;
  const problem = (p: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
    else more++;
  };
  for (const chunk of itemChunks(items, 10_000)) {
    for (const { index, value } of chunk) {
      let args: Record<string, string>;
      try {
        args = renderArgs(template, value);
      } catch (err) {
        if (!(err instanceof JobRequestError)) throw err;
        problem(`${describeItem(index, value)}: ${err.message}`);
        continue;
      }
      for (const key of Object.keys(args))
        if (!specs.has(key))
          problem(
            `${describeItem(index, value)}: task "${task}" has no argument "${key}"${specs.size > 0 ? ` (it takes ${[...specs.keys()].join(", ")})` : " (it takes none)"}`,
          );
      for (const [name, spec] of specs) {
        const v = args[name];
        if (v === undefined) {
          problem(
            `${describeItem(index, value)}: no value for argument "${name}" (give a template such as ${name}={item}, or the key in each item)`,
          );
          continue;
        }
        const wrong = checkTaskArg(spec, v);
        if (wrong !== undefined)
          problem(`${describeItem(index, value)}: argument "${name}" = "${v}": ${wrong}`);
      }
    }
  }
  if (more > 0) problems.push(`and ${more} more`);
  return problems;
}
