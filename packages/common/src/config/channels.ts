/**
 * Where alerts go: `[channel.NAME]` sections of the primary's config. A
 * section is read here into a ChannelDef (a webhook, ntfy topic, Discord or
 * Slack webhook, SMTP server or command), with every problem reported as
 * `file:line`. Secrets (URLs, tokens, passwords) are never echoed in a problem.
 */
import { join as shellJoin, quote as shellQuote, split as shellSplit } from "shlex";
import type { IniDocument } from "./ini.js";
import { sectionValues } from "./ini.js";
import { applySectionKeys, nonEmpty, type Read, type SectionKey, typed } from "./sections.js";
import { suggestion } from "./suggest.js";
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

/**
 * One key of a `[channel.NAME]` section, described as data: which channel
 * types have it, the field of the ChannelDef it fills, how a value is read
 * and shown again, and its documentation (docs/configuration.md is rendered
 * from this table). One reader (readChannelSections) handles every key.
 */
interface ChannelKey {
  key: string;
  types: Applies;
  doc: string;
  /** Never echoed in a problem, redacted by `config show`. */
  secret?: boolean;
  /** The ChannelDef field; absent for `type`, which chooses the others. */
  field?: string;
  read?(raw: string): Read;
  /** As a file would hold it; undefined: left out. Default: String(value). */
  show?(value: unknown): string | undefined;
}

/** An http:// or https:// URL; the value is a secret, so never shown. */
function readUrl(raw: string): Read {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  return url !== undefined &&
    (url.protocol === "http:" || url.protocol === "https:") &&
    url.hostname !== ""
    ? { value: url.href }
    : { value: "", problems: ["expected an http:// or https:// URL, got (secret, not shown)"] };
}

/** Words split as a shell would split them (no shell runs). */
function words(raw: string): { words: string[]; problems: string[] } {
  try {
    return { words: shellSplit(raw), problems: [] };
  } catch (err) {
    return { words: [], problems: [(err as Error).message] };
  }
}

function readHeaders(raw: string): Read {
  const { words: list, problems } = words(raw);
  const headers: Record<string, string> = {};
  for (const word of list) {
    const colon = word.indexOf(":");
    const headerName = colon > 0 ? word.slice(0, colon).trim() : "";
    if (!HEADER_NAME.test(headerName)) {
      problems.push(`expected "Name: value" words (quote each one)`);
      continue;
    }
    if (RESERVED_HEADERS.has(headerName.toLowerCase())) {
      problems.push(`${headerName} is set by picluster itself`);
      continue;
    }
    headers[headerName] = word.slice(colon + 1).trim();
  }
  return { value: headers, problems };
}

function readPriority(raw: string): Read {
  const word = raw.toLowerCase();
  const priority = /^[1-5]$/.test(word) ? Number(word) : NTFY_PRIORITIES[word];
  return priority === undefined
    ? { problems: [`expected 1-5 or min, low, default, high, max, urgent; got "${raw}"`] }
    : { value: priority };
}

function readHost(raw: string): Read {
  if (raw === "") return nonEmpty(raw);
  return /^[A-Za-z0-9.:_%-]+$/.test(raw)
    ? { value: raw }
    : { value: raw, problems: [`expected a host name or IP address, got "${raw}"`] };
}

function readFrom(raw: string): Read {
  if (raw === "") return nonEmpty(raw);
  const address = /<([^<>]*)>\s*$/.exec(raw)?.[1]?.trim() ?? raw;
  return ADDRESS.test(address)
    ? { value: raw }
    : {
        value: raw,
        problems: [
          `expected an address like pi@example.org or "picluster <pi@example.org>", got "${raw}"`,
        ],
      };
}

function readTo(raw: string): Read {
  const to: string[] = [];
  const problems: string[] = [];
  for (const address of raw.split(/[\s,]+/).filter((a) => a !== "")) {
    if (ADDRESS.test(address)) to.push(address);
    else problems.push(`"${address}" is not an email address`);
  }
  if (raw.trim() === "") problems.push("expected at least one address");
  return { value: to, problems };
}

function readCaFile(raw: string): Read {
  if (raw === "") return nonEmpty(raw);
  return raw.startsWith("/")
    ? { value: raw }
    : { value: raw, problems: [`must be an absolute path, got "${raw}"`] };
}

function readCommand(raw: string): Read {
  const { words: command, problems } = words(raw);
  if (problems.length === 0 && command.length === 0) problems.push("must not be empty");
  return { value: command, problems };
}

/** Keys of a `[channel.NAME]` section: docs, redaction, "did you mean" and the reader all use it. */
export const CHANNEL_KEYS: readonly ChannelKey[] = [
  {
    key: "type",
    types: "all",
    doc: `Required. One of ${CHANNEL_TYPES.map((t) => `\`${t}\``).join(", ")}.`,
  },
  {
    key: "url",
    types: ["webhook", "ntfy", "discord", "slack"],
    secret: true,
    field: "url",
    read: readUrl,
    doc: "Required. Where to POST: the webhook's URL, the ntfy topic URL (`https://ntfy.sh/mytopic`), or the Discord or Slack incoming-webhook URL. `http://` or `https://`.",
  },
  {
    key: "secret",
    types: ["webhook"],
    secret: true,
    field: "secret",
    read: nonEmpty,
    doc: "Sign each body: header `X-Picluster-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes with this key (see docs/alerts.md for checking it).",
  },
  {
    key: "headers",
    types: ["webhook"],
    secret: true,
    field: "headers",
    read: readHeaders,
    show: (v) => {
      const entries = Object.entries(v as Record<string, string>);
      return entries.length === 0
        ? undefined
        : entries.map(([k, x]) => shellQuote(`${k}: ${x}`)).join(" ");
    },
    doc: 'Extra request headers as `Name: value` words, split as a shell would, e.g. `"Authorization: Bearer abc" "X-Env: lab"`.',
  },
  {
    key: "token",
    types: ["ntfy"],
    secret: true,
    field: "token",
    read: nonEmpty,
    doc: "An ntfy access token, sent as `Authorization: Bearer`.",
  },
  {
    key: "priority",
    types: ["ntfy"],
    field: "priority",
    read: readPriority,
    doc: "Priority of every message, 1-5 or `min`, `low`, `default`, `high`, `max`/`urgent`. Unset: 5 for critical, 4 for warning, 3 for info, resolved and test messages.",
  },
  {
    key: "host",
    types: ["email"],
    field: "host",
    read: readHost,
    doc: "Required. The SMTP server's host name.",
  },
  {
    key: "port",
    types: ["email"],
    field: "port",
    read: typed(portType),
    doc: `The SMTP server's port (default ${DEFAULT_SMTP_PORTS.starttls} with \`starttls\`, ${DEFAULT_SMTP_PORTS.tls} with \`tls\`, ${DEFAULT_SMTP_PORTS.none} with \`none\`).`,
  },
  {
    key: "security",
    types: ["email"],
    field: "security",
    read: typed(securityType),
    doc: "`starttls` (default): upgrade with STARTTLS and refuse to send if the server does not offer it; `tls`: TLS from the first byte (port 465); `none`: plain text, for a relay on this machine (no password allowed).",
  },
  {
    key: "user",
    types: ["email"],
    field: "user",
    read: nonEmpty,
    doc: "SMTP login; set with `password`.",
  },
  {
    key: "password",
    types: ["email"],
    secret: true,
    field: "password",
    read: nonEmpty,
    doc: "SMTP password (for Gmail, an app password).",
  },
  {
    key: "from",
    types: ["email"],
    field: "from",
    read: readFrom,
    doc: "Required. The sender: `pi@example.org` or `picluster <pi@example.org>`.",
  },
  {
    key: "to",
    types: ["email"],
    field: "to",
    read: readTo,
    show: (v) => (v as string[]).join(", "),
    doc: "Required. One or more recipients, separated by commas or spaces.",
  },
  {
    key: "ca_file",
    types: ["email"],
    field: "caFile",
    read: readCaFile,
    doc: "Trust this CA or self-signed certificate (PEM, absolute path) for the server, instead of the system's CAs.",
  },
  {
    key: "command",
    types: ["command"],
    field: "command",
    read: readCommand,
    show: (v) => shellJoin([...(v as string[])]),
    doc: "Required. The program and its arguments, split into words as a shell would split them (no shell runs). It gets the message as JSON on stdin and in `PICLUSTER_ALERT_STATUS`, `PICLUSTER_ALERT_TITLE`, `PICLUSTER_ALERT_RULE`, `PICLUSTER_ALERT_NODES` (names, comma-separated); a non-zero exit is a failed attempt.",
  },
  {
    key: "timeout",
    types: "all",
    field: "timeoutMs",
    read: typed(timeoutType),
    show: (v) => formatDuration(v as number),
    doc: `How long one attempt may take before it is cut (default ${formatDuration(DEFAULT_CHANNEL_TIMEOUT_MS)}).`,
  },
  {
    key: "retries",
    types: "all",
    field: "retries",
    read: typed(retriesType),
    doc: `Attempts after a failed one, with exponential backoff and jitter from 1s up to 5m (default ${DEFAULT_CHANNEL_RETRIES}); then the message is given up and an event says so.`,
  },
];

/**
 * Each channel type: the keys it requires, the fields a section that does
 * not set them gets, and the checks that span keys.
 */
const CHANNEL_TYPE_SPECS: Readonly<
  Record<
    ChannelType,
    {
      required: readonly string[];
      defaults?(read: Record<string, unknown>): Record<string, unknown>;
      /** Problems between keys, each with the key whose line it is reported on. */
      check?(read: Record<string, unknown>): Array<{ key: string; message: string }>;
    }
  >
> = {
  webhook: { required: ["url"], defaults: () => ({ headers: {} }) },
  ntfy: { required: ["url"] },
  discord: { required: ["url"] },
  slack: { required: ["url"] },
  email: {
    required: ["host", "from", "to"],
    // The port follows the security unless it is set.
    defaults: (read) => {
      const security = (read.security as EmailSecurity | undefined) ?? "starttls";
      return { security, port: DEFAULT_SMTP_PORTS[security], to: [] };
    },
    check: (read) => {
      const out: Array<{ key: string; message: string }> = [];
      if ((read.user === undefined) !== (read.password === undefined))
        out.push({
          key: read.user !== undefined ? "user" : "password",
          message: "user and password go together: set both or neither",
        });
      if (read.password !== undefined && read.security === "none")
        out.push({
          key: "password",
          message: "password: security = none would send it in clear text; use starttls or tls",
        });
      return out;
    },
  },
  command: { required: ["command"] },
};

/** The rows of the keys a channel type has that fill a field, for the section reader. */
function channelRows(type: ChannelType): Array<SectionKey<Record<string, unknown>>> {
  return CHANNEL_KEYS.flatMap((k) => {
    const { field, read } = k;
    if (field === undefined || read === undefined || !appliesTo(k.key, type)) return [];
    return [{ ...k, read, apply: (def: Record<string, unknown>, v: unknown) => (def[field] = v) }];
  });
}

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

/**
 * Read every `[channel.NAME]` section of `doc`: the channels read, the
 * section names, the problems, and where each `channel.NAME.key` came from.
 * Every key is read by its row in CHANNEL_KEYS; the type's row in
 * CHANNEL_TYPE_SPECS adds what is required and what spans keys.
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
    const spec = CHANNEL_TYPE_SPECS[type];

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
    for (const required of spec.required) {
      if (!section.entries.has(required))
        bad(section.line, `has no ${required} (required for ${aChannel(type)})`);
    }

    // Each key this type has, read by its own row (keys it does not have were reported above).
    const read: Record<string, unknown> = {};
    applySectionKeys(
      channelRows(type),
      [...raws].map(([key, { raw, line }]) => ({ key, raw, line })),
      read,
      doc.file,
      bad,
      () => {},
    );
    for (const { key, message } of spec.check?.(read) ?? [])
      bad(raws.get(key)?.line ?? section.line, message);
    const def = {
      name,
      type,
      timeoutMs: DEFAULT_CHANNEL_TIMEOUT_MS,
      retries: DEFAULT_CHANNEL_RETRIES,
      where: at(section.line),
      ...(spec.defaults?.(read) ?? {}),
      ...read,
    } as ChannelDef;
    if (ok) channels[name] = def;
  }
  return { channels, sections, problems, sources };
}

/** A channel's keys as a file would hold them (defaults included), for `config show`. */
export function channelValues(
  def: ChannelDef,
): Array<{ key: string; value: string; secret: boolean }> {
  const out: Array<{ key: string; value: string; secret: boolean }> = [
    { key: "type", value: def.type, secret: false },
  ];
  const fields = def as unknown as Record<string, unknown>;
  for (const key of CHANNEL_KEYS) {
    if (key.field === undefined || !appliesTo(key.key, def.type)) continue;
    const value = fields[key.field];
    if (value === undefined) continue;
    const shown = key.show === undefined ? String(value) : key.show(value);
    if (shown !== undefined) out.push({ key: key.key, value: shown, secret: key.secret === true });
  }
  return out;
}
