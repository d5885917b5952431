/**
 * Builds the effective configuration: defaults < file < environment < flags.
 * Every problem is collected and reported at once with where it came from;
 * nothing is ever silently replaced by a default.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ConfigError, type ConfigProblem } from "../errors.js";
import { configSearchPaths, type PathContext } from "../paths.js";
import { readAlertSections, unknownAlertChannels } from "./alerts.js";
import { type ChannelDef, readChannelSections } from "./channels.js";
import { type CheckDef, readCheckSections } from "./checks.js";
import { type CustomMetricDef, readCustomMetricSections } from "./custom-metrics.js";
import { type IniDocument, IniInterpolationError, interpolate, parseIni } from "./ini.js";
import {
  ALIASES,
  type AnyKeyDef,
  CONFIG_ENV,
  type Config,
  envName,
  flagName,
  SCHEMA,
  schemaKeys,
} from "./schema.js";
import { suggestion } from "./suggest.js";
import { readTaskSections, type TaskDef } from "./tasks.js";

import type { ValueSource } from "./types.js";

/** Something worth telling the user that does not stop the program. */
export interface ConfigNotice {
  kind: "unknown_key" | "unknown_section" | "unknown_env" | "deprecated" | "obsolete" | "shadowed";
  where: string;
  message: string;
}

export interface LoadOptions {
  /** `--config FILE`; must exist when given. */
  configPath?: string | undefined;
  /** The process environment (only PICLUSTER_* names are read). */
  env: Readonly<Record<string, string | undefined>>;
  /** Values from command-line flags, keyed `section.key`. */
  flags?: Readonly<Record<string, string>>;
  paths: PathContext;
}

export interface LoadedConfig {
  config: Config;
  /** Where each `section.key` value came from. */
  sources: Readonly<Record<string, ValueSource>>;
  /** The file read, if any. */
  file: string | undefined;
  notices: readonly ConfigNotice[];
}

export function describeSource(source: ValueSource): string {
  switch (source.kind) {
    case "default":
      return "default";
    case "file":
      return `${source.file}:${source.line}`;
    case "env":
      return `env ${source.name}`;
    case "flag":
      return `flag ${source.name}`;
  }
}

interface Candidate {
  raw: string;
  source: ValueSource;
}

const KNOWN = new Map(schemaKeys().map((k) => [`${k.section}.${k.key}`, k.def]));

/** `primary.port` as a user writes it in a file: `[primary] port`. */
function bracketed(id: string): string {
  const [section, keyName] = id.split(".");
  return `[${section}] ${keyName}`;
}

/**
 * The tutorial's names too, so that a typo in `[master] socket_prot` is
 * told its key: the alias, and the name it is read as.
 */
const ALIAS_IDS = new Map(ALIASES.map((a) => [`${a.section}.${a.key}`, a]));

/** A suggested key as a user writes it; an alias says what it stands for. */
function aliasOrKey(id: string): string {
  const alias = ALIAS_IDS.get(id);
  if (alias === undefined || "obsolete" in alias) return bracketed(id);
  return `${bracketed(id)}, read as ${bracketed(alias.to)}`;
}

/** Which file to read: --config, then $PICLUSTER_CONFIG, then the search path. */
function chooseFile(opts: LoadOptions, problems: ConfigProblem[]): string | undefined {
  if (opts.configPath !== undefined) {
    const file = resolve(opts.paths.cwd, opts.configPath);
    if (!existsSync(file))
      problems.push({ where: `flag --config`, message: `no such file: ${file}` });
    return file;
  }
  const fromEnv = opts.env[CONFIG_ENV];
  if (fromEnv !== undefined && fromEnv !== "") {
    const file = resolve(opts.paths.cwd, fromEnv);
    if (!existsSync(file))
      problems.push({ where: `env ${CONFIG_ENV}`, message: `no such file: ${file}` });
    return file;
  }
  return configSearchPaths(opts.paths).find((p) => existsSync(p));
}

function readFileCandidates(
  doc: IniDocument,
  candidates: Map<string, Candidate>,
  problems: ConfigProblem[],
  notices: ConfigNotice[],
): void {
  const at = (line: number) => `${doc.file}:${line}`;
  const value = (section: string, keyName: string, line: number): string | undefined => {
    try {
      return interpolate(doc, section, keyName);
    } catch (err) {
      if (!(err instanceof IniInterpolationError)) throw err;
      problems.push({ where: at(line), message: `[${section}] ${err.message}` });
      return undefined;
    }
  };
  const aliasTargets = new Map<
    string,
    { section: string; key: string; line: number; raw: string }
  >();

  for (const [sectionName, section] of doc.sections) {
    // [task.NAME], [alert.NAME], [channel.NAME], [metrics.NAME] and [check.NAME] sections are read by their own readers.
    if (
      sectionName.startsWith("task.") ||
      sectionName.startsWith("metrics.") ||
      sectionName.startsWith("check.") ||
      sectionName.startsWith("alert.") ||
      sectionName.startsWith("channel.")
    )
      continue;
    const known = SCHEMA[sectionName as keyof typeof SCHEMA] as
      | Record<string, AnyKeyDef>
      | undefined;
    const aliases = ALIASES.filter((a) => a.section === sectionName);
    if (known === undefined && aliases.length === 0) {
      const sections = [...Object.keys(SCHEMA), ...new Set(ALIASES.map((a) => a.section))];
      notices.push({
        kind: "unknown_section",
        where: at(section.line),
        message: `unknown section [${sectionName}], its keys are ignored${suggestion(sectionName, sections, (c) => `[${c}]`)}`,
      });
      continue;
    }
    for (const [keyName, entry] of section.entries) {
      const id = `${sectionName}.${keyName}`;
      if (known?.[keyName] !== undefined) {
        const raw = value(sectionName, keyName, entry.line);
        if (raw !== undefined)
          candidates.set(id, { raw, source: { kind: "file", file: doc.file, line: entry.line } });
        continue;
      }
      const alias = aliases.find((a) => a.key === keyName);
      if (alias === undefined) {
        notices.push({
          kind: "unknown_key",
          where: at(entry.line),
          message: `unknown key "${keyName}" in [${sectionName}], ignored${suggestion(id, [...KNOWN.keys(), ...ALIAS_IDS.keys()], aliasOrKey)}`,
        });
        continue;
      }
      if ("obsolete" in alias) {
        notices.push({
          kind: "obsolete",
          where: at(entry.line),
          message: `[${sectionName}] ${keyName} is obsolete: ${alias.obsolete}`,
        });
        continue;
      }
      const [toSection = "", toKey = ""] = alias.to.split(".");
      notices.push({
        kind: "deprecated",
        where: at(entry.line),
        message: `[${sectionName}] ${keyName} is deprecated, read as [${toSection}] ${toKey}; rename it`,
      });
      const raw = value(sectionName, keyName, entry.line);
      if (raw === undefined) continue;
      const earlier = aliasTargets.get(alias.to);
      if (earlier !== undefined && earlier.raw !== raw) {
        problems.push({
          where: at(entry.line),
          message: `[${sectionName}] ${keyName} = "${raw}" conflicts with [${earlier.section}] ${earlier.key} = "${earlier.raw}" at line ${earlier.line}; both mean [${toSection}] ${toKey}`,
        });
        continue;
      }
      aliasTargets.set(alias.to, { section: sectionName, key: keyName, line: entry.line, raw });
    }
  }

  // An alias only fills a key the file does not set under its own name.
  for (const [id, target] of aliasTargets) {
    const direct = candidates.get(id);
    if (direct !== undefined && direct.source.kind === "file") {
      notices.push({
        kind: "shadowed",
        where: at(target.line),
        message: `[${target.section}] ${target.key} is ignored: ${bracketed(id)} is set at line ${direct.source.line}`,
      });
      continue;
    }
    candidates.set(id, {
      raw: target.raw,
      source: { kind: "file", file: doc.file, line: target.line },
    });
  }

  // [DEFAULT] values are visible in every section, as in ConfigParser.
  for (const { section, key: keyName } of schemaKeys()) {
    const id = `${section}.${keyName}`;
    const entry = doc.defaults.entries.get(keyName);
    if (
      entry === undefined ||
      candidates.has(id) ||
      doc.sections.get(section)?.entries.has(keyName)
    )
      continue;
    const raw = value(section, keyName, entry.line);
    if (raw !== undefined)
      candidates.set(id, { raw, source: { kind: "file", file: doc.file, line: entry.line } });
  }
}

/**
 * Load the configuration. Throws ConfigError listing every problem; returns
 * notices (unknown keys, deprecated names) for the caller to print.
 */
export function loadConfig(opts: LoadOptions): LoadedConfig {
  const problems: ConfigProblem[] = [];
  const notices: ConfigNotice[] = [];
  const candidates = new Map<string, Candidate>();
  let tasks: Record<string, TaskDef> = {};
  let metrics: Record<string, CustomMetricDef> = {};
  let checks: Record<string, CheckDef> = {};
  let alerts = readAlertSections(undefined).rules;
  let channels: Record<string, ChannelDef> = {};
  let channelSources: Record<string, ValueSource> = {};

  const file = chooseFile(opts, problems);
  if (file !== undefined && problems.length === 0) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ConfigError([
        {
          where: file,
          message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        },
      ]);
    }
    // A BOM written by some editors is not part of the first line.
    const { doc, problems: iniProblems } = parseIni(text.replace(/^\uFEFF/, ""), file);
    for (const p of iniProblems)
      problems.push({ where: `${p.file}:${p.line}`, message: p.message });
    readFileCandidates(doc, candidates, problems, notices);
    const read = readTaskSections(doc);
    problems.push(...read.problems);
    tasks = read.tasks;
    const metricsRead = readCustomMetricSections(doc);
    problems.push(...metricsRead.problems);
    metrics = metricsRead.metrics;
    const checksRead = readCheckSections(doc);
    problems.push(...checksRead.problems);
    checks = checksRead.checks;
    const readAlerts = readAlertSections(doc);
    problems.push(...readAlerts.problems);
    alerts = readAlerts.rules;
    const channelsRead = readChannelSections(doc);
    problems.push(...channelsRead.problems);
    channels = channelsRead.channels;
    channelSources = channelsRead.sources;
  }

  for (const [name, raw] of Object.entries(opts.env)) {
    if (!name.startsWith("PICLUSTER_") || name === CONFIG_ENV || raw === undefined) continue;
    const def = schemaKeys().find((k) => envName(k.section, k.key) === name);
    if (def === undefined) {
      const names = schemaKeys().map((k) => envName(k.section, k.key));
      notices.push({
        kind: "unknown_env",
        where: `env ${name}`,
        message: `not a picluster setting, ignored${suggestion(name, names)}`,
      });
      continue;
    }
    candidates.set(`${def.section}.${def.key}`, { raw, source: { kind: "env", name } });
  }

  for (const [id, raw] of Object.entries(opts.flags ?? {})) {
    const [section = "", keyName = ""] = id.split(".");
    if (!KNOWN.has(id)) {
      problems.push({
        where: `flag ${flagName(section, keyName)}`,
        message: `unknown setting${suggestion(id, KNOWN.keys(), (c) => flagName(...(c.split(".") as [string, string])))}`,
      });
      continue;
    }
    candidates.set(id, { raw, source: { kind: "flag", name: flagName(section, keyName) } });
  }

  const config: Record<string, Record<string, unknown>> = {
    task: tasks,
    metrics,
    check: checks,
    alert: alerts,
    channel: channels,
  };
  const sources: Record<string, ValueSource> = { ...channelSources };
  for (const { section, key: keyName, def } of schemaKeys()) {
    const id = `${section}.${keyName}`;
    config[section] ??= {};
    const section_ = config[section];
    const candidate = candidates.get(id);
    if (candidate === undefined) {
      section_[keyName] = def.default;
      sources[id] = { kind: "default" };
      continue;
    }
    const parsed = def.type.parse(candidate.raw.trim());
    sources[id] = candidate.source;
    if (parsed.ok) {
      section_[keyName] = parsed.value;
    } else {
      const shown = def.secret ? "(secret)" : `"${candidate.raw}"`;
      problems.push({
        where: describeSource(candidate.source),
        message: `[${section}] ${keyName}: expected ${parsed.expected}, got ${shown}`,
      });
    }
  }

  if (problems.length === 0) {
    checkRelations(config as Config, sources, problems);
    const defaults = String(config.alerts?.channels ?? "")
      .split(",")
      .map((c) => c.trim())
      .filter((c) => c !== "");
    for (const p of unknownAlertChannels(alerts, defaults, new Set(Object.keys(channels))))
      problems.push({
        where: p.where ?? describeSource(sources["alerts.channels"] ?? { kind: "default" }),
        message: p.message,
      });
  }
  notices.sort((a, b) => a.where.localeCompare(b.where, "en", { numeric: true }));
  if (problems.length > 0) throw new ConfigError(problems, notices);
  return { config: config as Config, sources, file, notices };
}

/** Rules between keys: liveness thresholds must be ordered; one source for the join token. */
function checkRelations(
  config: Config,
  sources: Record<string, ValueSource>,
  problems: ConfigProblem[],
): void {
  if (config.agent.join_token !== "" && config.agent.join_token_file !== "") {
    const from = (k: string) => describeSource(sources[`agent.${k}`] ?? { kind: "default" });
    problems.push({
      where: from("join_token_file"),
      message: `[agent] join_token_file: set either it or join_token (from ${from("join_token")}), not both`,
    });
  }
  const { heartbeat_interval, suspect_after, dead_after } = config.primary;
  const src = (k: string) => describeSource(sources[`primary.${k}`] ?? { kind: "default" });
  if (suspect_after <= heartbeat_interval) {
    problems.push({
      where: src("suspect_after"),
      message: `[primary] suspect_after (${suspect_after} ms) must be longer than heartbeat_interval (${heartbeat_interval} ms, from ${src("heartbeat_interval")})`,
    });
  }
  if (dead_after <= suspect_after) {
    problems.push({
      where: src("dead_after"),
      message: `[primary] dead_after (${dead_after} ms) must be longer than suspect_after (${suspect_after} ms, from ${src("suspect_after")})`,
    });
  }
}
