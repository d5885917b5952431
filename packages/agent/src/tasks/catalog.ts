/**
 * The tasks this node allows, from its own config only: the built-ins it
 * switched on and its `[task.NAME]` sections. Whatever the primary asks,
 * nothing outside this catalog runs, and arguments are checked here, on the
 * node, before anything starts.
 */

import { readFileSync } from "node:fs";
import { arch, platform, release } from "node:os";
import { join } from "node:path";
import { type Config, checkTaskArg, TASK_NAME, type TaskDef } from "@picluster/common";

/** What happens to the node when a task succeeds. */
export type TaskEffect = "none" | "reboot" | "shutdown";

export interface CatalogTask {
  name: string;
  description: string;
  builtin: boolean;
  /** Disruptive tasks are confirmed first and run in rolling batches by the primary. */
  disruptive: boolean;
  effect: TaskEffect;
  /** Processes run one after another, each only if the one before succeeded. */
  steps: ReadonlyArray<Omit<TaskDef, "name" | "description" | "where">>;
  /** A built-in answered by the agent itself, without a process. */
  internal?: () => string;
  /** Turns the collected stdout into a one-line summary (updates.check). */
  summarize?: (stdout: string) => string;
}

export interface TaskRequestProblem {
  code: "E_NOT_ALLOWED" | "E_BAD_ARGS";
  message: string;
  /** JSON pointer of the failing field. */
  path: string;
}

const BASE = { timeoutMs: 300_000, user: "", cwd: "", env: {}, args: [] } as const;
const APT_ENV = { DEBIAN_FRONTEND: "noninteractive", APT_LISTCHANGES_FRONTEND: "none" };

/** The system's pretty name from `<root>/etc/os-release`, else the platform. */
function osName(root: string): string {
  try {
    const text = readFileSync(join(root, "etc", "os-release"), "utf8");
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1] ?? platform();
  } catch {
    return platform();
  }
}

/** Packages `apt-get -s upgrade` would install or upgrade: its `Inst ` lines. */
export function countUpgradable(stdout: string): number {
  return stdout.split("\n").filter((l) => l.startsWith("Inst ")).length;
}

function builtins(agentVersion: string, root: string): Record<string, CatalogTask> {
  return {
    reboot: {
      name: "reboot",
      description: "Restart the node (systemctl reboot).",
      builtin: true,
      disruptive: true,
      effect: "reboot",
      steps: [{ ...BASE, command: ["systemctl", "reboot"], timeoutMs: 60_000 }],
    },
    shutdown: {
      name: "shutdown",
      description: "Power the node off (systemctl poweroff).",
      builtin: true,
      disruptive: true,
      effect: "shutdown",
      steps: [{ ...BASE, command: ["systemctl", "poweroff"], timeoutMs: 60_000 }],
    },
    update: {
      name: "update",
      description: "apt-get update, then a non-interactive apt-get upgrade.",
      builtin: true,
      disruptive: true,
      effect: "none",
      steps: [
        { ...BASE, env: APT_ENV, command: ["apt-get", "update", "-q"], timeoutMs: 600_000 },
        {
          ...BASE,
          env: APT_ENV,
          command: [
            "apt-get",
            "upgrade",
            "-y",
            "-q",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
          ],
          timeoutMs: 3_600_000,
        },
      ],
    },
    "updates.check": {
      name: "updates.check",
      description: "How many packages can be upgraded (apt-get -s upgrade; changes nothing).",
      builtin: true,
      disruptive: false,
      effect: "none",
      steps: [{ ...BASE, env: APT_ENV, command: ["apt-get", "-s", "-q", "upgrade"] }],
      summarize: (stdout) => {
        const n = countUpgradable(stdout);
        return `${n} package${n === 1 ? "" : "s"} can be upgraded\n`;
      },
    },
    time: {
      name: "time",
      description: "This node's clock and time zone.",
      builtin: true,
      disruptive: false,
      effect: "none",
      steps: [],
      internal: () =>
        `${new Date().toISOString()} ${Intl.DateTimeFormat().resolvedOptions().timeZone}\n`,
    },
    version: {
      name: "version",
      description: "Agent, Node.js and OS versions.",
      builtin: true,
      disruptive: false,
      effect: "none",
      steps: [],
      internal: () =>
        `picluster agent ${agentVersion}\nNode.js ${process.version}\n${osName(root)} (${platform()} ${release()} ${arch()})\n`,
    },
  };
}

const SWITCHES = {
  reboot: "reboot",
  shutdown: "shutdown",
  update: "update",
  "updates.check": "updates_check",
  time: "time",
  version: "version",
} as const;

/** Build the catalog from this node's config. */
/** `root` is "/" on a node; tests point it at a fixture tree. */
export function taskCatalog(
  config: Config,
  agentVersion: string,
  root = "/",
): Map<string, CatalogTask> {
  const catalog = new Map<string, CatalogTask>();
  const stock = builtins(agentVersion, root);
  for (const [name, key] of Object.entries(SWITCHES)) {
    const task = stock[name];
    if (task !== undefined && config.tasks[key]) catalog.set(name, task);
  }
  for (const def of Object.values(config.task)) {
    const builtin = stock[def.name];
    const key = SWITCHES[def.name as keyof typeof SWITCHES];
    // A section named like a built-in replaces its command (e.g. another
    // reboot program), but a disruptive built-in still needs its switch on.
    if (builtin !== undefined && key !== undefined && !config.tasks[key]) continue;
    catalog.set(def.name, {
      name: def.name,
      description: def.description || builtin?.description || "",
      builtin: false,
      disruptive: builtin?.disruptive ?? false,
      effect: builtin?.effect ?? "none",
      steps: [def],
      ...(builtin?.summarize === undefined ? {} : { summarize: builtin.summarize }),
    });
  }
  return catalog;
}

/**
 * What to change on the node to allow `name`: the reader of a refusal is
 * at the primary, and the fix is in this node's own file.
 */
function howToAllow(name: string): string {
  const key = SWITCHES[name as keyof typeof SWITCHES];
  if (key !== undefined) return `: set \`[tasks] ${key} = on\` in this node's picluster.ini`;
  // A name no section could have (a typo with a space, say) gets no advice.
  if (!TASK_NAME.test(name)) return "";
  return `: add a [task.${name}] section (its command) to this node's picluster.ini`;
}

/**
 * Check a request against the catalog: the task must be allowed and the
 * arguments exactly the declared ones, each valid. Returns the argument
 * vectors to run, or the problem.
 */
export function resolveTask(
  catalog: ReadonlyMap<string, CatalogTask>,
  name: string,
  args: Readonly<Record<string, string>>,
): { task: CatalogTask; argvs: string[][] } | TaskRequestProblem {
  const task = catalog.get(name);
  if (task === undefined) {
    return {
      code: "E_NOT_ALLOWED",
      message: `task "${name}" is not allowed on this node${howToAllow(name)} (its config allows: ${[...catalog.keys()].join(", ") || "none"})`,
      path: "/payload/task",
    };
  }
  const declared = new Map(task.steps.flatMap((s) => s.args.map((a) => [a.name, a] as const)));
  for (const key of Object.keys(args)) {
    if (!declared.has(key)) {
      return {
        code: "E_BAD_ARGS",
        message: `task "${name}" has no argument "${key}"${declared.size > 0 ? ` (it takes ${[...declared.keys()].join(", ")})` : " (it takes none)"}`,
        path: `/payload/args/${key}`,
      };
    }
  }
  for (const [key, spec] of declared) {
    const value = args[key];
    if (value === undefined) {
      return {
        code: "E_BAD_ARGS",
        message: `task "${name}" needs argument "${key}"`,
        path: `/payload/args/${key}`,
      };
    }
    const problem = checkTaskArg(spec, value);
    if (problem !== undefined) {
      return {
        code: "E_BAD_ARGS",
        message: `argument "${key}" of task "${name}": ${problem}`,
        path: `/payload/args/${key}`,
      };
    }
  }
  // Each placeholder word becomes exactly one argument: the value, as it is.
  const argvs = task.steps.map((step) =>
    step.command.map((word) => {
      const m = /^\{([a-z][a-z0-9_]*)\}$/.exec(word);
      return m?.[1] !== undefined ? (args[m[1]] as string) : word;
    }),
  );
  return { task, argvs };
}
