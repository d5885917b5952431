/**
 * Where alerts go: `[channel.NAME]` sections of the primary's config. A
 * section is read here into a ChannelDef (a webhook, ntfy topic, Discord or
 * Slack webhook, SMTP server or command), with every problem reported as
 * `file:line`. Secrets (URLs, tokens, passwords) are never echoed in a problem.
 */
import { closest, distance } from "fastest-levenshtein";
import { join as shellJoin, quote as shellQuote, split as shellSplit } from "shlex";
import type { IniDocument } from "./ini.js";
import { sectionValues } from "./ini.js";
import { durationType, enumType, formatDuration, integerType, type ValueSource } from "./types.js";

export const CHANNEL_TYPES = ["webhook", "ntfy", "discord", "slack", "email", "command"] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

interface ChannelBase {
  name: string;
  /** Each attempt is cut after this long. */
  timeoutMs: number;
  /** Attempts after the first one fails, with backoff between them. */
  retries: number;
  /** Where the section starts, for messages. */
  where: string;
}

export interface WebhookChannelDef extends ChannelBase {
  type: "webhook";
  url: string;
  /** When set, the body is signed: `X-Picluster-Signature: sha256=<hex HMAC-SHA256>`. */
  secret?: string;
  /** Extra request headers. */
  headers: Readonly<Record<string, string>>;
}

export interface NtfyChannelDef extends ChannelBase {
  type: "ntfy";
  /** The topic URL, e.g. `https://ntfy.sh/mytopic`. */
  url: string;
  token?: string;
  /** 1 (min) to 5 (max) for every message; absent: from the message's severity. */
  priority?: number;
}

export interface DiscordChannelDef extends ChannelBase {
  type: "discord";
  url: string;
}

export interface SlackChannelDef extends ChannelBase {
  type: "slack";
  url: string;
}

export type EmailSecurity = "starttls" | "tls" | "none";

export interface EmailChannelDef extends ChannelBase {
  type: "email";
  host: string;
  port: number;
  security: EmailSecurity;
  user?: string;
  password?: string;
  from: string;
  to: readonly string[];
  /** A CA (or self-signed) certificate to trust, PEM; absent: the system's CAs. */
  caFile?: string;
}

export interface CommandChannelDef extends ChannelBase {
  type: "command";
  /** Program and arguments; never run through a shell. */
  command: readonly string[];
}

export type ChannelDef =
  | WebhookChannelDef
  | NtfyChannelDef
  | DiscordChannelDef
  | SlackChannelDef
  | EmailChannelDef
  | CommandChannelDef;

/**
 * What a channel may be called: the one rule for `[channel.NAME]` sections
 * and for the names rules and `[alerts] channels` refer to them by. Dots are
 * allowed (`[channel.ops.pager]`), as in task names.
 */
export const CHANNEL_NAME = /^[a-z][a-z0-9._-]{0,63}$/;
export const CHANNEL_NAME_DOC =
  "lowercase letters, digits, '.', '_' or '-', starting with a letter";
export const DEFAULT_CHANNEL_TIMEOUT_MS = 10_000;
export const DEFAULT_CHANNEL_RETRIES = 5;
export const DEFAULT_SMTP_PORTS: Readonly<Record<EmailSecurity, number>> = {
  starttls: 587,
  tls: 465,
  none: 25,
};
const timeoutType = durationType(1_000, 600_000);
const retriesType = integerType(0, 100);
const portType = integerType(1, 65535);
const securityType = enumType(["starttls", "tls", "none"] as const);
const NTFY_PRIORITIES: Readonly<Record<string, number>> = {
  min: 1,
  low: 2,
  default: 3,
  high: 4,
  max: 5,
  urgent: 5,
};
// An RFC 7230 token: what a header name may be.
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
// Headers the webhook sender sets itself; a config may not replace them.
const RESERVED_HEADERS = new Set([
  "content-type",
  "content-length",
  "host",
  "x-picluster-signature",
  "transfer-encoding",
]);
const ADDRESS = /^[^\s@<>,;"]+@[^\s@<>,;"]+$/;

type Applies = "all" | readonly ChannelType[];

/** Keys of a `[channel.NAME]` section, for docs, redaction and "did you mean". */
export const CHANNEL_KEYS: ReadonlyArray<{
  key: string;
  types: Applies;
  doc: string;
  secret?: boolean;
}> = [
  {
    key: "type",
    types: "all",
    doc: `Required. One of ${CHANNEL_TYPES.map((t) => `\`${t}\``).join(", ")}.`,
  },
  {
    key: "url",
    types: ["webhook", "ntfy", "discord", "slack"],
    secret: true,
    doc: "Required. Where to POST: the webhook's URL, the ntfy topic URL (`https://ntfy.sh/mytopic`), or the Discord or Slack incoming-webhook URL. `http://` or `https://`.",
  },
  {
    key: "secret",
    types: ["webhook"],
    secret: true,
    doc: "Sign each body: header `X-Picluster-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes with this key (see docs/alerts.md for checking it).",
  },
  {
    key: "headers",
    types: ["webhook"],
    secret: true,
    doc: 'Extra request headers as `Name: value` words, split as a shell would, e.g. `"Authorization: Bearer abc" "X-Env: lab"`.',
  },
  {
    key: "token",
    types: ["ntfy"],
    secret: true,
    doc: "An ntfy access token, sent as `Authorization: Bearer`.",
  },
  {
    key: "priority",
    types: ["ntfy"],
    doc: "Priority of every message, 1-5 or `min`, `low`, `default`, `high`, `max`/`urgent`. Unset: 5 for critical, 4 for warning, 3 for info, resolved and test messages.",
  },
  { key: "host", types: ["email"], doc: "Required. The SMTP server's host name." },
  {
    key: "port",
    types: ["email"],
    doc: `The SMTP server's port (default ${DEFAULT_SMTP_PORTS.starttls} with \`starttls\`, ${DEFAULT_SMTP_PORTS.tls} with \`tls\`, ${DEFAULT_SMTP_PORTS.none} with \`none\`).`,
  },
  {
    key: "security",
    types: ["email"],
    doc: "`starttls` (default): upgrade with STARTTLS and refuse to send if the server does not offer it; `tls`: TLS from the first byte (port 465); `none`: plain text, for a relay on this machine (no password allowed).",
  },
  { key: "user", types: ["email"], doc: "SMTP login; set with `password`." },
  {
    key: "password",
    types: ["email"],
    secret: true,
    doc: "SMTP password (for Gmail, an app password).",
  },
  {
    key: "from",
    types: ["email"],
    doc: "Required. The sender: `pi@example.org` or `picluster <pi@example.org>`.",
  },
  {
    key: "to",
    types: ["email"],
    doc: "Required. One or more recipients, separated by commas or spaces.",
  },
  {
    key: "ca_file",
    types: ["email"],
    doc: "Trust this CA or self-signed certificate (PEM, absolute path) for the server, instead of the system's CAs.",
  },
  {
    key: "command",
    types: ["command"],
    doc: "Required. The program and its arguments, split into words as a shell would split them (no shell runs). It gets the message as JSON on stdin and in `PICLUSTER_ALERT_STATUS`, `PICLUSTER_ALERT_TITLE`, `PICLUSTER_ALERT_RULE`, `PICLUSTER_ALERT_NODES` (names, comma-separated); a non-zero exit is a failed attempt.",
  },
  {
    key: "timeout",
    types: "all",
    doc: `How long one attempt may take before it is cut (default ${formatDuration(DEFAULT_CHANNEL_TIMEOUT_MS)}).`,
  },
  {
    key: "retries",
    types: "all",
    doc: `Attempts after a failed one, with exponential backoff and jitter from 1s up to 5m (default ${DEFAULT_CHANNEL_RETRIES}); then the message is given up and an event says so.`,
  },
];

const REQUIRED: Readonly<Record<ChannelType, readonly string[]>> = {
  webhook: ["url"],
  ntfy: ["url"],
  discord: ["url"],
  slack: ["url"],
  email: ["host", "from", "to"],
  command: ["command"],
};

/** "a webhook channel", "an email channel". */
function aChannel(type: ChannelType): string {
  return `${type === "email" ? "an" : "a"} ${type} channel`;
}

function appliesTo(key: string, type: ChannelType): boolean {
  const spec = CHANNEL_KEYS.find((k) => k.key === key);
  return spec !== undefined && (spec.types === "all" || spec.types.includes(type));
}

export function isSecretChannelKey(key: string): boolean {
  return CHANNEL_KEYS.find((k) => k.key === key)?.secret === true;
}

export interface ChannelProblem {
  where: string;
  message: string;
}

function parseUrl(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== ""
    ? url.href
    : undefined;
}

/**
 * Read every `[channel.NAME]` section of `doc`: the channels read, the
 * section names, the problems, and where each `channel.NAME.key` came from.
 */
export function readChannelSections(doc: IniDocument): {
  channels: Record<string, ChannelDef>;
  sections: Set<string>;
  problems: ChannelProblem[];
  sources: Record<string, ValueSource>;
} {
  const channels: Record<string, ChannelDef> = {};
  const sections = new Set<string>();
  const problems: ChannelProblem[] = [];
  const sources: Record<string, ValueSource> = {};
  const at = (line: number) => `${doc.file}:${line}`;
  for (const [sectionName, section] of doc.sections) {
    if (!sectionName.startsWith("channel.")) continue;
    sections.add(sectionName);
    const name = sectionName.slice("channel.".length);
    if (!CHANNEL_NAME.test(name)) {
      problems.push({
        where: at(section.line),
        message: `[${sectionName}]: a channel name is ${CHANNEL_NAME_DOC}`,
      });
      continue;
    }
    let ok = true;
    const bad = (line: number, message: string) => {
      problems.push({ where: at(line), message: `[${sectionName}] ${message}` });
      ok = false;
    };

    // Every value as written, with its line; interpolation problems reported once.
    const raws = new Map<string, { raw: string; line: number }>();
    for (const { key: keyName, raw, line } of sectionValues(doc, section, bad)) {
      raws.set(keyName, { raw, line });
      sources[`${sectionName}.${keyName}`] = { kind: "file", file: doc.file, line };
    }

    const typeEntry = raws.get("type");
    if (typeEntry === undefined) {
      if (!section.entries.has("type"))
        bad(section.line, `has no type (one of ${CHANNEL_TYPES.join(", ")})`);
      continue;
    }
    const type = CHANNEL_TYPES.find((t) => t === typeEntry.raw.toLowerCase());
    if (type === undefined) {
      bad(
        typeEntry.line,
        `type: expected one of ${CHANNEL_TYPES.join(", ")}, got "${typeEntry.raw}"${suggestion(typeEntry.raw.toLowerCase(), CHANNEL_TYPES)}`,
      );
      continue;
    }

    for (const [keyName, { line }] of raws) {
      if (appliesTo(keyName, type)) continue;
      const known = CHANNEL_KEYS.some((k) => k.key === keyName);
      const mine = CHANNEL_KEYS.filter((k) => appliesTo(k.key, type)).map((k) => k.key);
      bad(
        line,
        known
          ? `${keyName}: not a key of ${aChannel(type)} (it has ${mine.join(", ")})`
          : `unknown key "${keyName}"${suggestion(keyName, mine) || ` (${aChannel(type)} has ${mine.join(", ")})`}`,
      );
    }
    for (const required of REQUIRED[type]) {
      if (!section.entries.has(required))
        bad(section.line, `has no ${required} (required for ${aChannel(type)})`);
    }

    const value = (key: string): { raw: string; line: number } | undefined => raws.get(key);
    const common = {
      name,
      timeoutMs: DEFAULT_CHANNEL_TIMEOUT_MS,
      retries: DEFAULT_CHANNEL_RETRIES,
      where: at(section.line),
    };
    const timeout = value("timeout");
    if (timeout !== undefined) {
      const parsed = timeoutType.parse(timeout.raw);
      if (parsed.ok) common.timeoutMs = parsed.value;
      else bad(timeout.line, `timeout: expected ${parsed.expected}, got "${timeout.raw}"`);
    }
    const retries = value("retries");
    if (retries !== undefined) {
      const parsed = retriesType.parse(retries.raw);
      if (parsed.ok) common.retries = parsed.value;
      else bad(retries.line, `retries: expected ${parsed.expected}, got "${retries.raw}"`);
    }
    const url = (): string => {
      const entry = value("url");
      if (entry === undefined) return "";
      const parsed = parseUrl(entry.raw);
      if (parsed === undefined)
        bad(entry.line, "url: expected an http:// or https:// URL, got (secret, not shown)");
      return parsed ?? "";
    };
    const nonEmpty = (key: string): string | undefined => {
      const entry = value(key);
      if (entry === undefined) return undefined;
      if (entry.raw === "") bad(entry.line, `${key}: must not be empty`);
      return entry.raw;
    };

    let def: ChannelDef;
    switch (type) {
      case "webhook": {
        const headers: Record<string, string> = {};
        const entry = value("headers");
        if (entry !== undefined) {
          let words: string[] = [];
          try {
            words = shellSplit(entry.raw);
          } catch (err) {
            bad(entry.line, `headers: ${(err as Error).message}`);
          }
          for (const word of words) {
            const colon = word.indexOf(":");
            const headerName = colon > 0 ? word.slice(0, colon).trim() : "";
            if (!HEADER_NAME.test(headerName)) {
              bad(entry.line, `headers: expected "Name: value" words (quote each one)`);
              continue;
            }
            if (RESERVED_HEADERS.has(headerName.toLowerCase())) {
              bad(entry.line, `headers: ${headerName} is set by picluster itself`);
              continue;
            }
            headers[headerName] = word.slice(colon + 1).trim();
          }
        }
        const secret = nonEmpty("secret");
        def = { ...common, type, url: url(), headers, ...(secret ? { secret } : {}) };
        break;
      }
      case "ntfy": {
        const token = nonEmpty("token");
        let priority: number | undefined;
        const entry = value("priority");
        if (entry !== undefined) {
          const word = entry.raw.toLowerCase();
          priority = /^[1-5]$/.test(word) ? Number(word) : NTFY_PRIORITIES[word];
          if (priority === undefined)
            bad(
              entry.line,
              `priority: expected 1-5 or min, low, default, high, max, urgent; got "${entry.raw}"`,
            );
        }
        def = {
          ...common,
          type,
          url: url(),
          ...(token ? { token } : {}),
          ...(priority !== undefined ? { priority } : {}),
        };
        break;
      }
      case "discord":
      case "slack":
        def = { ...common, type, url: url() };
        break;
      case "email": {
        let security: EmailSecurity = "starttls";
        const securityEntry = value("security");
        if (securityEntry !== undefined) {
          const parsed = securityType.parse(securityEntry.raw);
          if (parsed.ok) security = parsed.value;
          else
            bad(
              securityEntry.line,
              `security: expected ${parsed.expected}, got "${securityEntry.raw}"`,
            );
        }
        let port = DEFAULT_SMTP_PORTS[security];
        const portEntry = value("port");
        if (portEntry !== undefined) {
          const parsed = portType.parse(portEntry.raw);
          if (parsed.ok) port = parsed.value;
          else bad(portEntry.line, `port: expected ${parsed.expected}, got "${portEntry.raw}"`);
        }
        const host = nonEmpty("host") ?? "";
        const hostEntry = value("host");
        if (hostEntry !== undefined && host !== "" && !/^[A-Za-z0-9.:_%-]+$/.test(host))
          bad(hostEntry.line, `host: expected a host name or IP address, got "${host}"`);
        const from = nonEmpty("from") ?? "";
        const fromEntry = value("from");
        const fromAddress = /<([^<>]*)>\s*$/.exec(from)?.[1]?.trim() ?? from;
        if (fromEntry !== undefined && from !== "" && !ADDRESS.test(fromAddress))
          bad(
            fromEntry.line,
            `from: expected an address like pi@example.org or "picluster <pi@example.org>", got "${from}"`,
          );
        const to: string[] = [];
        const toEntry = value("to");
        if (toEntry !== undefined) {
          for (const address of toEntry.raw.split(/[\s,]+/).filter((a) => a !== "")) {
            if (ADDRESS.test(address)) to.push(address);
            else bad(toEntry.line, `to: "${address}" is not an email address`);
          }
          if (toEntry.raw.trim() === "") bad(toEntry.line, "to: expected at least one address");
        }
        const user = nonEmpty("user");
        const password = nonEmpty("password");
        if ((user === undefined) !== (password === undefined))
          bad(
            (value("user") ?? value("password"))?.line ?? section.line,
            "user and password go together: set both or neither",
          );
        if (password !== undefined && security === "none")
          bad(
            value("password")?.line ?? section.line,
            "password: security = none would send it in clear text; use starttls or tls",
          );
        const caFile = nonEmpty("ca_file");
        const caEntry = value("ca_file");
        if (caEntry !== undefined && caFile !== undefined && !caFile.startsWith("/"))
          bad(caEntry.line, `ca_file: must be an absolute path, got "${caFile}"`);
        def = {
          ...common,
          type,
          host,
          port,
          security,
          from,
          to,
          ...(user !== undefined ? { user } : {}),
          ...(password !== undefined ? { password } : {}),
          ...(caFile !== undefined ? { caFile } : {}),
        };
        break;
      }
      case "command": {
        let command: string[] = [];
        const entry = value("command");
        if (entry !== undefined) {
          try {
            command = shellSplit(entry.raw);
            if (command.length === 0) bad(entry.line, "command: must not be empty");
          } catch (err) {
            bad(entry.line, `command: ${(err as Error).message}`);
          }
        }
        def = { ...common, type, command };
        break;
      }
    }
    if (ok) channels[name] = def;
  }
  return { channels, sections, problems, sources };
}

/** ` (did you mean X?)` when a candidate is close enough to be a typo of `name`. */
function suggestion(name: string, candidates: readonly string[]): string {
  if (candidates.length === 0) return "";
  const best = closest(name, [...candidates]);
  return distance(name, best) <= Math.max(2, Math.floor(name.length / 3))
    ? ` (did you mean ${best}?)`
    : "";
}

/** A channel's keys as a file would hold them (defaults included), for `config show`. */
export function channelValues(
  def: ChannelDef,
): Array<{ key: string; value: string; secret: boolean }> {
  const out: Array<{ key: string; value: string; secret: boolean }> = [];
  const put = (key: string, value: string | undefined) => {
    if (value !== undefined) out.push({ key, value, secret: isSecretChannelKey(key) });
  };
  put("type", def.type);
  switch (def.type) {
    case "webhook":
      put("url", def.url);
      put("secret", def.secret);
      if (Object.keys(def.headers).length > 0)
        put(
          "headers",
          Object.entries(def.headers)
            .map(([k, v]) => shellQuote(`${k}: ${v}`))
            .join(" "),
        );
      break;
    case "ntfy":
      put("url", def.url);
      put("token", def.token);
      put("priority", def.priority?.toString());
      break;
    case "discord":
    case "slack":
      put("url", def.url);
      break;
    case "email":
      put("host", def.host);
      put("port", String(def.port));
      put("security", def.security);
      put("user", def.user);
      put("password", def.password);
      put("from", def.from);
      put("to", def.to.join(", "));
      put("ca_file", def.caFile);
      break;
    case "command":
      put("command", shellJoin([...def.command]));
      break;
  }
  put("timeout", formatDuration(def.timeoutMs));
  put("retries", String(def.retries));
  return out;
}
