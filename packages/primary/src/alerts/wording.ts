/**
 * What an alert says, in plain words: a title that names the node and what
 * is wrong, and a few lines on what to check. One wording per metric, used
 * by the stock rules and by your own rules on the same metric.
 */
import {
  type AlertRuleDef,
  durationWords,
  formatDuration,
  localTime,
  utcOffset,
} from "@picluster/common";
import type { StoreFailureCause } from "../events.js";

export interface Subject {
  id: string;
  name: string;
  value: number | null;
  agentVersion?: string;
}

interface Wording {
  unit: string;
  /** The value in words, when a unit alone does not do (bytes per second). */
  format?(value: number): string;
  one(node: string, value: string): string;
  many(count: number): string;
  back(node: string): string;
  /** Many nodes back at once; else "Resolved on N nodes: <rule>". */
  backMany?(count: number): string;
  /** What to check; `{node}` is filled in. */
  hint: string;
}

const PCT = "%";
/** Nodes named in a summary's text; the message's node list has them all. */
const MAX_LISTED = 20;

const WORDINGS: Record<string, Wording> = {
  down: {
    unit: "",
    one: (n) => `${n} is down`,
    many: (c) => `${c} nodes are down`,
    back: (n) => `${n} is back`,
    backMany: (c) => `${c} nodes are back`,
    hint: "It stopped answering the primary. Check its power and network; `picluster node show {node}` has its last figures.",
  },
  under_voltage: {
    unit: "",
    one: (n) => `${n} reports under-voltage: its power supply is too weak`,
    many: (c) => `${c} nodes report under-voltage`,
    back: (n) => `${n}'s power supply holds up again`,
    hint: "The Pi's firmware says its supply voltage dropped below about 4.63 V just now. Check the power supply and cable: use the official supply (5.1 V, 3 A for a Pi 4, 5 A for a Pi 5) and a short, thick cable; phone chargers and USB hubs sag under load. Under-voltage slows the CPU, corrupts SD cards and causes random reboots.",
  },
  throttled: {
    unit: "",
    one: (n) => `${n} is throttled`,
    many: (c) => `${c} nodes are throttled`,
    back: (n) => `${n} is no longer throttled`,
    hint: "The Pi slowed its CPU to protect itself, from heat or low voltage. Check its cooling (heatsink, fan, airflow) and its power supply.",
  },
  freq_capped: {
    unit: "",
    one: (n) => `${n}'s CPU frequency is capped`,
    many: (c) => `${c} nodes have their CPU frequency capped`,
    back: (n) => `${n}'s CPU frequency is no longer capped`,
    hint: "The firmware capped the ARM frequency, from heat or low voltage. Check cooling and the power supply.",
  },
  soft_temp_limit: {
    unit: "",
    one: (n) => `${n} reached its soft temperature limit`,
    many: (c) => `${c} nodes reached their soft temperature limit`,
    back: (n) => `${n} is below its soft temperature limit`,
    hint: "The Pi is running hot enough to slow down. Check its cooling.",
  },
  temp: {
    unit: "°C",
    one: (n, v) => `${n} is hot: ${v}`,
    many: (c) => `${c} nodes are hot`,
    back: (n) => `${n} has cooled down`,
    hint: "Check its cooling: heatsink, fan, airflow around the case. `picluster top {node}` shows what keeps it busy.",
  },
  disk: {
    unit: PCT,
    one: (n, v) => `${n}'s disk is ${v} full`,
    many: (c) => `${c} nodes are running out of disk`,
    back: (n) => `${n}'s disk has room again`,
    hint: "Free some space on its root filesystem: old logs (`journalctl --vacuum-size=100M`), package caches (`apt-get clean`), container images.",
  },
  mem: {
    unit: PCT,
    one: (n, v) => `${n}'s memory is ${v} used`,
    many: (c) => `${c} nodes are short of memory`,
    back: (n) => `${n}'s memory use is back to normal`,
    hint: "`picluster top {node}` shows which processes use it.",
  },
  swap: {
    unit: PCT,
    one: (n, v) => `${n}'s swap is ${v} used`,
    many: (c) => `${c} nodes are swapping hard`,
    back: (n) => `${n}'s swap use is back to normal`,
    hint: "It is short of memory; `picluster top {node}` shows which processes use it.",
  },
  cpu: {
    unit: PCT,
    one: (n, v) => `${n}'s CPU is ${v} busy`,
    many: (c) => `${c} nodes have busy CPUs`,
    back: (n) => `${n}'s CPU is back to normal`,
    hint: "`picluster top {node}` shows which processes keep it busy.",
  },
  load1: {
    unit: "",
    one: (n, v) => `${n}'s load is ${v}`,
    many: (c) => `${c} nodes are heavily loaded`,
    back: (n) => `${n}'s load is back to normal`,
    hint: "`picluster top {node}` shows which processes keep it busy.",
  },
  load_per_core: {
    unit: "× its cores",
    one: (n, v) => `${n} is overloaded: load ${v}`,
    many: (c) => `${c} nodes are overloaded`,
    back: (n) => `${n}'s load is back to normal`,
    hint: "More work waits than its cores can run. `picluster top {node}` shows which processes.",
  },
  version_mismatch: {
    unit: "",
    one: (n) => `${n} runs a different agent version than the primary`,
    many: (c) => `${c} nodes run a different agent version than the primary`,
    back: (n) => `${n} runs the primary's agent version`,
    hint: "Update the agent on it: paste the line `picluster node add` prints for a new name, or install the primary's agent bundle (`/join/agent.cjs`).",
  },
  updates: {
    unit: "",
    one: (n, v) => `${n} has ${v} package updates waiting`,
    many: (c) => `${c} nodes have package updates waiting`,
    back: (n) => `${n} is up to date`,
    hint: "Run `picluster run update --on {node}` once its config allows the update task.",
  },
};

/** 12345678 → "12.3 MB/s". */
function perSecond(v: number): string {
  const units = ["B/s", "kB/s", "MB/s", "GB/s"];
  let x = v;
  let i = 0;
  while (Math.abs(x) >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  return `${i === 0 || Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1)} ${units[i]}`;
}

function rate(what: string, verb: string): Wording {
  return {
    unit: "",
    format: perSecond,
    one: (n, v) => `${n} ${verb} ${v}`,
    many: (c) => `${c} nodes ${verb} a lot`,
    back: (n) => `${n}'s ${what} is back to normal`,
    hint: "`picluster top {node}` shows which processes are busy.",
  };
}

Object.assign(WORDINGS, {
  net_rx: rate("network traffic", "receives"),
  net_tx: rate("network traffic", "sends"),
  disk_read: rate("disk traffic", "reads"),
  disk_write: rate("disk traffic", "writes"),
  check_down: {
    unit: "",
    one: (n: string, v: string) => `${n}: ${v} ${v === "1" ? "check is" : "checks are"} down`,
    many: (c: number) => `Checks down on ${c} nodes`,
    back: (n: string) => `${n}: every check is up again`,
    hint: "The Checks page (or GET /api/checks, `picluster checks`) says which check and why; the node's events say when it changed.",
  },
  container_down: {
    unit: "",
    one: (n: string, v: string) =>
      `${n}: ${v} ${v === "1" ? "container has" : "containers have"} stopped with a failure`,
    many: (c: number) => `Failed containers on ${c} nodes`,
    back: (n: string) => `${n}: no failed container any more`,
    hint: "`picluster containers {node}` lists them with their exit codes; the container's own logs say why.",
  },
  container_restarting: {
    unit: "",
    one: (n: string, v: string) =>
      `${n}: ${v} ${v === "1" ? "container keeps" : "containers keep"} restarting`,
    many: (c: number) => `Containers restarting on ${c} nodes`,
    back: (n: string) => `${n}: no container restarting any more`,
    hint: "`picluster containers {node}` shows their restart counts; a crash loop shows in the container's logs.",
  },
  freq: {
    unit: "MHz",
    one: (n: string, v: string) => `${n}'s CPU runs at ${v}`,
    many: (c: number) => `${c} nodes' CPUs run at an unusual frequency`,
    back: (n: string) => `${n}'s CPU frequency is back to normal`,
    hint: "A low frequency under load means the CPU is held back: check cooling and the power supply.",
  },
} satisfies Record<string, Wording>);

function generic(metric: string): Wording {
  return {
    unit: "",
    one: (n, v) => `${n}: ${metric} is ${v}`,
    many: (c) => `${metric} on ${c} nodes`,
    back: (n) => `${n}: ${metric} is back to normal`,
    hint: "",
  };
}

function wordingOf(rule: AlertRuleDef): Wording {
  return WORDINGS[rule.metric] ?? generic(rule.metric);
}

/** A value with its unit: "83 °C", "93 %", "2.4 × its cores". */
export function formatValue(rule: AlertRuleDef, value: number | null): string {
  if (value === null) return "unknown";
  const w = wordingOf(rule);
  if (w.format !== undefined) return w.format(value);
  // One decimal below 1 000, so that 80.4 °C never reads "80 °C" under a rule "over 80".
  const rounded =
    Number.isInteger(value) || Math.abs(value) >= 1000 ? value.toFixed(0) : value.toFixed(1);
  return w.unit === "" ? rounded : `${rounded} ${w.unit}`;
}

function fill(text: string, node: string, value: string): string {
  return text.replaceAll("{node}", node).replaceAll("{value}", value);
}

/** The condition in words: "over 80 °C for 2m". */
function condition(rule: AlertRuleDef): string {
  const op = {
    ">": "over",
    ">=": "at least",
    "<": "under",
    "<=": "at most",
    "==": "at",
    "!=": "not",
  }[rule.op];
  const flag = rule.op === "==" && rule.threshold === 1 && wordingOf(rule).unit === "";
  const what = flag ? "" : `${rule.metric} ${op} ${formatValue(rule, rule.threshold)}`;
  const held = rule.forMs > 0 ? `for ${formatDuration(rule.forMs)}` : "";
  return [what, held].filter((x) => x !== "").join(" ");
}

/**
 * Title and text of a notification about `nodes` for `rule`. `since` is
 * when the condition began (the node went down), not when the rule's `for`
 * ran out and the alert fired; times are the primary's, with their zone.
 */
export function wordAlert(
  rule: AlertRuleDef,
  status: "firing" | "resolved",
  nodes: readonly Subject[],
  extra: { primaryVersion: string; since?: number; now: number; timeZone?: string },
): { title: string; text: string } {
  const w = wordingOf(rule);
  const one = nodes.length === 1 ? nodes[0] : undefined;
  let title: string;
  if (one !== undefined) {
    const value = formatValue(rule, one.value);
    title =
      status === "resolved"
        ? `Resolved: ${w.back(one.name)}`
        : rule.message !== ""
          ? fill(rule.message, one.name, value)
          : w.one(one.name, value);
  } else {
    title =
      status === "resolved"
        ? `Resolved: ${w.backMany?.(nodes.length) ?? `${rule.name} on ${nodes.length} nodes`}`
        : w.many(nodes.length);
  }
  const lines: string[] = [];
  if (status === "firing" && w.hint !== "")
    lines.push(
      fill(w.hint, one?.name ?? "NODE", one === undefined ? "" : formatValue(rule, one.value)),
    );
  if (rule.metric === "version_mismatch")
    lines.push(
      ...nodes.map(
        (n) =>
          `${n.name} runs agent ${n.agentVersion ?? "?"}; the primary runs ${extra.primaryVersion}.`,
      ),
    );
  const cond = condition(rule);
  lines.push(
    nodes.length === 1
      ? `Node: ${one?.name}${one?.value === null || wordingOf(rule).unit === "" ? "" : ` (${formatValue(rule, one?.value ?? null)})`}`
      : `Nodes: ${nodes
          .slice(0, MAX_LISTED)
          .map((n) =>
            n.value === null || w.unit === ""
              ? n.name
              : `${n.name} (${formatValue(rule, n.value)})`,
          )
          .join(", ")}${nodes.length > MAX_LISTED ? ` and ${nodes.length - MAX_LISTED} more` : ""}`,
  );
  lines.push(`Rule: ${rule.name}${cond === "" ? "" : `, ${cond}`}${rule.stock ? " (stock)" : ""}`);
  if (extra.since !== undefined) {
    const at = `${localTime(extra.since, extra.timeZone)} ${utcOffset(extra.since, extra.timeZone)}`;
    const lasted = durationWords(extra.now - extra.since);
    lines.push(
      status === "firing" ? `Since: ${at} (${lasted} ago)` : `Lasted: ${lasted}, from ${at}`,
    );
  }
  return { title, text: lines.join("\n") };
}

/** Why the primary's store cannot write, as the alert and the dashboard say it. */
export const STORE_FAILURE_WORDS: Record<StoreFailureCause, string> = {
  disk_full: "the primary's disk is full",
  read_only: "the primary's data directory is read-only",
  io_error: "the primary's disk reports I/O errors",
  busy: "the primary's database is locked by another process",
  other: "the primary cannot write its database",
};

/** A rule on the primary's store (metric `store_failing`): not about a node. */
export function wordPrimaryStore(
  rule: AlertRuleDef,
  status: "firing" | "resolved",
  failure: { cause: StoreFailureCause; error: string; since: number },
  now: number,
): { title: string; text: string } {
  const what = STORE_FAILURE_WORDS[failure.cause];
  const capital = `${what.charAt(0).toUpperCase()}${what.slice(1)}`;
  const cond = condition(rule);
  const ruleLine = `Rule: ${rule.name}${cond === "" ? "" : `, ${cond}`}${rule.stock ? " (stock)" : ""}`;
  if (status === "resolved")
    return {
      title: "Resolved: the primary stores again",
      text: [
        `It could not for ${formatDuration(Math.max(0, now - failure.since))} (${what}). The agents now send the samples they kept.`,
        ruleLine,
      ].join("\n"),
    };
  return {
    title: rule.message !== "" ? rule.message : `${capital}: nothing new is being stored`,
    text: [
      "The primary keeps running: the live state, the dashboard and alerts go on. Agents keep their samples (up to [agent] outbox_size each) and send them again once it can store; it retries by itself. Free space in its data directory, or fix its mount.",
      `Error: ${failure.error}`,
      ruleLine,
      `Since: ${new Date(failure.since).toLocaleString()}`,
    ].join("\n"),
  };
}
