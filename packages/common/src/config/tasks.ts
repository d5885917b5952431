/**
 * Tasks a node allows: `[task.NAME]` sections of the agent's own config.
 * The agent runs nothing else, whatever the primary asks. A section is read
 * here into a TaskDef (the command as an argument vector, limits, declared
 * arguments), with every problem reported as `file:line`.
 */
import { split as shellSplit } from "shlex";
import type { IniDocument } from "./ini.js";
import { sectionValues } from "./ini.js";
import { applySectionKeys, type SectionKey, text, typed } from "./sections.js";
import { durationType, formatDuration } from "./types.js";

export type TaskArgType = "string" | "integer" | "number" | "boolean";

export interface TaskArgSpec {
  name: string;
  type: TaskArgType;
  /** The whole value must match (anchored); absent for any value of the type. */
  pattern?: string;
}

export interface TaskDef {
  name: string;
  /** Program and arguments; a whole word `{NAME}` is replaced by argument NAME, as one argument. */
  command: readonly string[];
  timeoutMs: number;
  /** Run as this user (the agent must be root to switch); empty: the agent's own user. */
  user: string;
  cwd: string;
  env: Readonly<Record<string, string>>;
  description: string;
  args: readonly TaskArgSpec[];
  /** Where the section starts, for messages. */
  where: string;
}

export const TASK_NAME = /^[a-z][a-z0-9._-]{0,63}$/;
const ARG_NAME = /^[a-z][a-z0-9_]{0,31}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PLACEHOLDER = /^\{([a-z][a-z0-9_]{0,31})\}$/;
export const DEFAULT_TASK_TIMEOUT_MS = 300_000;
const timeoutType = durationType(1_000, 7 * 86_400_000);

/** Keys of a `[task.NAME]` section, for docs and for "did you mean". */
/** What a section is read into: the definition, its environment, whether a command was read. */
interface TaskDraft {
  def: TaskDef;
  env: Record<string, string>;
  commandRead: boolean;
}

/** Words split as a shell would split them; a problem when the quoting is broken. */
function shellWords(raw: string): { words?: string[]; problem?: string } {
  try {
    return { words: shellSplit(raw) };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

/**
 * Keys of a `[task.NAME]` section, as data: docs and "did you mean", and the
 * section reader, which reads each value by its row. `arg.NAME` keys are
 * the one family of keys, read beside the rows.
 */
export const TASK_KEYS: ReadonlyArray<SectionKey<TaskDraft>> = [
  {
    key: "command",
    doc: "The program and its arguments, split into words as a shell would split them (quotes group words; nothing is expanded, no shell runs). A whole word `{NAME}` is replaced by the value of argument NAME, always as exactly one argument.",
    read: (raw) => {
      const { words, problem } = shellWords(raw);
      if (words === undefined) return { problems: [problem ?? "cannot be split into words"] };
      return { value: words, problems: words.length === 0 ? ["must not be empty"] : [] };
    },
    apply: (draft, v) => {
      draft.def.command = v as string[];
      draft.commandRead = true;
    },
  },
  {
    key: "timeout",
    doc: `How long the task may run before its whole process group is killed (default ${formatDuration(DEFAULT_TASK_TIMEOUT_MS)}).`,
    read: typed(timeoutType),
    apply: (draft, v) => {
      draft.def.timeoutMs = v as number;
    },
  },
  {
    key: "user",
    doc: "Run as this user; the agent must run as root to switch. Empty: the agent's user.",
    read: (raw) => ({
      value: raw,
      problems: /^[a-z_][a-z0-9_-]*\$?$|^$/.test(raw) ? [] : [`not a user name: "${raw}"`],
    }),
    apply: (draft, v) => {
      draft.def.user = v as string;
    },
  },
  {
    key: "cwd",
    doc: "Working directory. Empty: the agent's data directory.",
    read: (raw) => ({
      value: raw,
      problems: raw !== "" && !raw.startsWith("/") ? ["must be an absolute path"] : [],
    }),
    apply: (draft, v) => {
      draft.def.cwd = v as string;
    },
  },
  {
    key: "env",
    doc: 'Extra environment variables as `NAME=value` words, e.g. `LANG=C.UTF-8 "GREETING=hello there"`. Tasks get a minimal environment (PATH, HOME, LANG) plus these.',
    read: (raw) => {
      const { words = [], problem } = shellWords(raw);
      const problems = problem === undefined ? [] : [problem];
      const env: Record<string, string> = {};
      for (const word of words) {
        const eq = word.indexOf("=");
        const envName = eq > 0 ? word.slice(0, eq) : "";
        if (!ENV_NAME.test(envName)) problems.push(`expected NAME=value words, got "${word}"`);
        else env[envName] = word.slice(eq + 1);
      }
      return { value: env, problems };
    },
    apply: (draft, v) => Object.assign(draft.env, v),
  },
  {
    key: "description",
    doc: "One line shown in task lists.",
    read: text,
    apply: (draft, v) => {
      draft.def.description = v as string;
    },
  },
];

/** `arg.NAME`, documented beside the rows. */
export const TASK_ARG_KEY_DOC = {
  key: "arg.NAME",
  doc: "Declares argument NAME: its type (`string`, `integer`, `number` or `boolean`) and, for strings, a regular expression the whole value must match, e.g. `arg.service = string [a-z0-9@._-]{1,64}`. Values are checked on the node before anything runs. Whatever the type or pattern, a value never starts with `-` (it would read as an option) and never holds control characters; invisible characters (zero-width spaces, U+FEFF, other format characters, spaces other than U+0020…) only when the pattern names them (`\\u200b`, `\\p{Cf}`); numbers take no sign.",
};

export interface TaskProblem {
  where: string;
  message: string;
}

function parseArgSpec(name: string, raw: string): TaskArgSpec | string {
  const m = /^(\S+)(?:\s+(.+))?$/.exec(raw.trim());
  const type = m?.[1];
  if (type !== "string" && type !== "integer" && type !== "number" && type !== "boolean")
    return `expected a type (string, integer, number or boolean), then for strings an optional pattern; got "${raw}"`;
  const pattern = m?.[2];
  if (pattern === undefined) return { name, type };
  if (type !== "string") return `only string arguments take a pattern`;
  try {
    new RegExp(`^(?:${pattern})$`, "u");
  } catch (err) {
    return `invalid pattern "${pattern}": ${(err as Error).message}`;
  }
  return { name, type, pattern };
}

/** Read every `[task.NAME]` section of `doc`; the names of the sections read are returned too. */
export function readTaskSections(doc: IniDocument): {
  tasks: Record<string, TaskDef>;
  sections: Set<string>;
  problems: TaskProblem[];
} {
  const tasks: Record<string, TaskDef> = {};
  const sections = new Set<string>();
  const problems: TaskProblem[] = [];
  for (const [sectionName, section] of doc.sections) {
    if (!sectionName.startsWith("task.")) continue;
    sections.add(sectionName);
    const name = sectionName.slice("task.".length);
    const at = (line: number) => `${doc.file}:${line}`;
    if (!TASK_NAME.test(name)) {
      problems.push({
        where: at(section.line),
        message: `[${sectionName}]: a task name is lowercase letters, digits, '.', '_' or '-', starting with a letter`,
      });
      continue;
    }
    const def: TaskDef = {
      name,
      command: [],
      timeoutMs: DEFAULT_TASK_TIMEOUT_MS,
      user: "",
      cwd: "",
      env: {},
      description: "",
      args: [],
      where: at(section.line),
    };
    const env: Record<string, string> = {};
    const args: TaskArgSpec[] = [];
    let ok = true;
    const bad = (line: number, message: string) => {
      problems.push({ where: at(line), message: `[${sectionName}] ${message}` });
      ok = false;
    };
    const draft: TaskDraft = { def, env, commandRead: false };
    applySectionKeys(
      TASK_KEYS,
      sectionValues(doc, section, bad),
      draft,
      doc.file,
      bad,
      (keyName, line, raw) => {
        if (!keyName.startsWith("arg.")) {
          const known = TASK_KEYS.map((k) => k.key);
          bad(line, `unknown key "${keyName}" (a task has ${known.join(", ")} and arg.NAME)`);
          return;
        }
        const argName = keyName.slice(4);
        if (!ARG_NAME.test(argName)) {
          bad(line, `${keyName}: an argument name is lowercase letters, digits and '_'`);
          return;
        }
        const spec = parseArgSpec(argName, raw);
        if (typeof spec === "string") bad(line, `${keyName}: ${spec}`);
        else args.push(spec);
      },
    );
    const { commandRead } = draft;
    if (!section.entries.has("command")) {
      bad(section.line, "has no command");
    }
    // Every placeholder is a declared argument, and every declared argument is used.
    const used = new Set<string>();
    for (const word of def.command) {
      const m = PLACEHOLDER.exec(word);
      if (m?.[1] !== undefined) {
        used.add(m[1]);
        if (!args.some((a) => a.name === m[1]))
          bad(
            section.entries.get("command")?.line ?? section.line,
            `command uses {${m[1]}}, which no arg.${m[1]} declares`,
          );
      } else if (/\{[a-z][a-z0-9_]*\}/.test(word)) {
        bad(
          section.entries.get("command")?.line ?? section.line,
          `command: "${word}": a placeholder must be a whole word, so that its value stays one argument`,
        );
      }
    }
    for (const a of args) {
      if (commandRead && !used.has(a.name))
        bad(
          section.entries.get(`arg.${a.name}`)?.line ?? section.line,
          `arg.${a.name} is declared but the command does not use {${a.name}}`,
        );
    }
    if (ok) tasks[name] = { ...def, env, args };
  }
  return { tasks, sections, problems };
}

/**
 * Characters no argument may hold, whatever its pattern: C0 and C1 controls,
 * DEL, line and paragraph separators, and bidirectional controls (text that
 * reads differently from what runs).
 */
const FORBIDDEN = /[\p{Cc}\p{Zl}\p{Zp}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

/**
 * Characters that show as nothing, or as an ordinary space, so that a value
 * looks like another: format characters (zero-width space U+200B, the byte
 * order mark U+FEFF, joiners, tags…), private-use, unassigned and lone
 * surrogate code points, spaces other than U+0020 (which \p{Zs} also
 * matches, and which is allowed), the Hangul fillers, the blank Braille
 * pattern, the combining grapheme joiner and variation selectors. Refused
 * unless the argument's pattern names them (see patternNames).
 */
const INVISIBLE =
  /[\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zs}\u115f\u1160\u3164\uffa0\u2800]|\u034f|\p{Variation_Selector}/gu;

/** General categories a pattern may name with `\p{…}` to allow the characters in them. */
const NAMEABLE_CATEGORIES = [
  "Cf",
  "Format",
  "Co",
  "Private_Use",
  "Cn",
  "Unassigned",
  "Cs",
  "Surrogate",
  "Zs",
  "Space_Separator",
];

/** `U+200B` */
function codePoint(ch: string): string {
  return `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * Whether `pattern` names `ch` explicitly: the character itself, its escape
 * (`\u200b`, `\u{200b}`, `\xa0`), or its general category (`\p{Cf}`,
 * `\p{General_Category=Format}`). A range that merely spans it (`[^/]`,
 * `[\u0000-\uffff]`) does not: an invisible character is allowed only by
 * someone who meant it.
 */
export function patternNames(pattern: string, ch: string): boolean {
  if (pattern.includes(ch)) return true;
  const cp = ch.codePointAt(0);
  // An escape is one preceded by an even number of backslashes (`\\u200b` is a backslash, then text).
  for (const m of pattern.matchAll(
    /(?<!\\)(?:\\\\)*\\(?:u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2}))/g,
  )) {
    if (Number.parseInt(m[1] ?? m[2] ?? m[3] ?? "", 16) === cp) return true;
  }
  for (const m of pattern.matchAll(
    /(?<!\\)(?:\\\\)*\\p\{(?:(?:General_Category|gc)=)?([A-Za-z_]+)\}/g,
  )) {
    const category = m[1] ?? "";
    if (NAMEABLE_CATEGORIES.includes(category) && new RegExp(`\\p{${category}}`, "u").test(ch))
      return true;
  }
  return false;
}

/** Why `value` is not acceptable for `spec`, or undefined when it is. */
export function checkTaskArg(spec: TaskArgSpec, value: string): string | undefined {
  // Never an option to the program, never a hidden character: for every type and pattern.
  if (value.startsWith("-")) return "must not start with '-' (it would read as an option)";
  if (FORBIDDEN.test(value)) return "must not hold control characters (newlines, tabs…)";
  const hidden = [...new Set(value.match(INVISIBLE) ?? [])].filter(
    (ch) => ch !== " " && (spec.pattern === undefined || !patternNames(spec.pattern, ch)),
  );
  if (hidden.length > 0)
    return `must not hold invisible characters (${hidden.map(codePoint).join(", ")}) unless its pattern names them, e.g. \\u200b or \\p{Cf}`;
  switch (spec.type) {
    case "integer":
      return /^\d{1,15}$/.test(value) ? undefined : "expected a whole number (no sign)";
    case "number":
      return /^\d{1,15}(\.\d{1,15})?$/.test(value) ? undefined : "expected a number (no sign)";
    case "boolean":
      return value === "true" || value === "false" ? undefined : "expected true or false";
    case "string":
      if (spec.pattern !== undefined && !new RegExp(`^(?:${spec.pattern})$`, "u").test(value))
        return `does not match ${spec.pattern}`;
      return undefined;
  }
}
