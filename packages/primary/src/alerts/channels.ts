/**
 * How an alert reaches people: one sender per `[channel.NAME]` type. A
 * channel makes one attempt per `send` and either resolves (delivered) or
 * throws an Error with a one-line message saying why (HTTP status and a body
 * excerpt, the SMTP reply, the exit code…). Retries, timeouts and queues are
 * delivery.ts's job. Nothing here logs or throws a secret: URLs show as their
 * host, tokens and passwords not at all.
 */
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { basename } from "node:path";
import type {
  ChannelDef,
  ChannelType,
  CommandChannelDef,
  EmailChannelDef,
  Logger,
  NtfyChannelDef,
  WebhookChannelDef,
} from "@picluster/common";
import { createTransport } from "nodemailer";
import type { AlertMessage } from "./message.js";

export type { AlertMessage } from "./message.js";

export interface Channel {
  readonly name: string;
  readonly type: ChannelType;
  /** Each attempt is cut after this long (by delivery.ts). */
  readonly timeoutMs: number;
  /** Attempts after a failed first one. */
  readonly retries: number;
  /** Where it sends, safe to log: a host, `host:port` or a program name; never a secret. */
  readonly target: string;
  /** One attempt. Rejects with a one-line Error on failure; stops when `signal` aborts. */
  send(msg: AlertMessage, signal: AbortSignal): Promise<void>;
}

export interface ChannelDeps {
  log: Logger;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** The JSON a webhook receives and a command reads on stdin. */
export const WEBHOOK_FORMAT_VERSION = 1;
export const SIGNATURE_HEADER = "X-Picluster-Signature";
export const DISCORD_MAX_CHARS = 2000;
export const SLACK_MAX_CHARS = 3000;
/** How much of a failed response's body or a command's stderr goes into the error. */
const EXCERPT_CHARS = 200;
// A fixed PATH, as tasks get: what the command channel finds does not depend
// on how the primary was started.
const COMMAND_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const NODES_LISTED = 20;

/** The message a `picluster alerts test CHANNEL` sends. */
export function testMessage(at: number, url?: string): AlertMessage {
  return {
    status: "test",
    rule: "test",
    severity: "info",
    title: "Test message from picluster",
    text: "If you can read this, alerts sent to this channel reach you. Nothing is wrong.",
    nodes: [],
    at,
    ...(url === undefined ? {} : { url }),
  };
}

export function createChannel(def: ChannelDef, deps: ChannelDeps): Channel {
  const log = deps.log.child({ component: "alerts", channel: def.name, type: def.type });
  const fetchFn = deps.fetch ?? fetch;
  const base = { name: def.name, type: def.type, timeoutMs: def.timeoutMs, retries: def.retries };
  switch (def.type) {
    case "webhook":
      return { ...base, target: hostOf(def.url), send: (m, s) => sendWebhook(def, fetchFn, m, s) };
    case "ntfy":
      return { ...base, target: hostOf(def.url), send: (m, s) => sendNtfy(def, fetchFn, m, s) };
    case "discord":
      return {
        ...base,
        target: hostOf(def.url),
        send: (m, s) => postJson(fetchFn, def.url, discordBody(m), {}, s),
      };
    case "slack":
      return {
        ...base,
        target: hostOf(def.url),
        send: (m, s) => postJson(fetchFn, def.url, slackBody(m), {}, s),
      };
    case "email":
      return { ...base, target: `${def.host}:${def.port}`, send: (m, s) => sendEmail(def, m, s) };
    case "command":
      return {
        ...base,
        target: basename(def.command[0] ?? ""),
        send: (m, s) => runCommand(def, m, s, log),
      };
  }
}

/** `{"version":1, ...msg}`: the webhook body and the command's stdin. */
export function webhookBody(msg: AlertMessage): string {
  return JSON.stringify({ version: WEBHOOK_FORMAT_VERSION, ...msg });
}

/** `sha256=<hex>`: HMAC-SHA256 of the exact body bytes with the channel's secret. */
export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body, "utf8").digest("hex")}`;
}

/** A URL's `host:port`, safe to log: its path and query may hold a secret. */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "(bad url)";
  }
}

async function sendWebhook(
  def: WebhookChannelDef,
  fetchFn: typeof fetch,
  msg: AlertMessage,
  signal: AbortSignal,
): Promise<void> {
  const body = webhookBody(msg);
  const headers: Record<string, string> = {
    ...def.headers,
    "content-type": "application/json",
  };
  if (def.secret !== undefined) headers[SIGNATURE_HEADER] = signBody(body, def.secret);
  await post(fetchFn, def.url, body, headers, signal);
}

/** ntfy priority: the channel's own, or from the message (resolved and test are never loud). */
export function ntfyPriority(msg: AlertMessage, fixed?: number): number {
  if (fixed !== undefined) return fixed;
  if (msg.status !== "firing") return 3;
  return msg.severity === "critical" ? 5 : msg.severity === "warning" ? 4 : 3;
}

/** ntfy tags (shown as emoji): what kind of message this is. */
export function ntfyTags(msg: AlertMessage): string {
  if (msg.status === "resolved") return "white_check_mark";
  if (msg.status === "test") return "test_tube";
  return msg.severity === "critical"
    ? "rotating_light"
    : msg.severity === "warning"
      ? "warning"
      : "information_source";
}

/**
 * An HTTP header value: ASCII as is; anything else as an RFC 2047 encoded
 * word (fetch refuses non-Latin-1 header values; ntfy decodes these).
 */
export function headerText(text: string): string {
  const oneLine = text.replace(/[\r\n]+/g, " ");
  return /^[\x20-\x7e]*$/.test(oneLine)
    ? oneLine
    : `=?UTF-8?B?${Buffer.from(oneLine, "utf8").toString("base64")}?=`;
}

async function sendNtfy(
  def: NtfyChannelDef,
  fetchFn: typeof fetch,
  msg: AlertMessage,
  signal: AbortSignal,
): Promise<void> {
  const headers: Record<string, string> = {
    "content-type": "text/plain; charset=utf-8",
    Title: headerText(msg.title),
    Priority: String(ntfyPriority(msg, def.priority)),
    Tags: ntfyTags(msg),
  };
  if (msg.url !== undefined) headers.Click = msg.url;
  if (def.token !== undefined) headers.Authorization = `Bearer ${def.token}`;
  await post(fetchFn, def.url, plainLines(msg).join("\n"), headers, signal);
}

function icon(msg: AlertMessage): string {
  if (msg.status === "resolved") return "✅";
  if (msg.status === "test") return "🧪";
  return msg.severity === "critical" ? "🚨" : msg.severity === "warning" ? "⚠️" : "ℹ️";
}

function statusWord(msg: AlertMessage): string {
  return msg.status === "firing" ? "FIRING" : msg.status === "resolved" ? "RESOLVED" : "TEST";
}

function nodeNames(msg: AlertMessage): string {
  const names = msg.nodes.slice(0, NODES_LISTED).map((n) => n.name);
  const more = msg.nodes.length - names.length;
  return more > 0 ? `${names.join(", ")} and ${more} more` : names.join(", ");
}

/** The text, then the nodes and the rule: the body of ntfy and email messages. */
function plainLines(msg: AlertMessage): string[] {
  const lines = [msg.text];
  if (msg.nodes.length > 0) lines.push(`Nodes: ${nodeNames(msg)}`);
  return lines;
}

/** `text` cut to `max` characters, ending in "…" when cut. */
export function cut(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join("")}…`;
}

function escapeDiscord(text: string): string {
  return text.replace(/([\\*_~`|>])/g, "\\$1");
}

export function discordBody(msg: AlertMessage): {
  content: string;
  allowed_mentions: { parse: [] };
} {
  const lines = [`${icon(msg)} **${escapeDiscord(msg.title)}**`, escapeDiscord(msg.text)];
  if (msg.nodes.length > 0) lines.push(`Nodes: ${escapeDiscord(nodeNames(msg))}`);
  if (msg.url !== undefined) lines.push(msg.url);
  // allowed_mentions: a node named "@everyone" must not ping the whole server.
  return { content: cut(lines.join("\n"), DISCORD_MAX_CHARS), allowed_mentions: { parse: [] } };
}

function escapeSlack(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

export function slackBody(msg: AlertMessage): { text: string } {
  const lines = [`${icon(msg)} *${escapeSlack(msg.title)}*`, escapeSlack(msg.text)];
  if (msg.nodes.length > 0) lines.push(`Nodes: ${escapeSlack(nodeNames(msg))}`);
  if (msg.url !== undefined) lines.push(`<${msg.url}|Open in picluster>`);
  return { text: cut(lines.join("\n"), SLACK_MAX_CHARS) };
}

/** `[picluster] ` + title: the email subject. */
export function emailSubject(msg: AlertMessage): string {
  return `[picluster] ${msg.title}`;
}

export function emailText(msg: AlertMessage): string {
  const lines = [...plainLines(msg), ""];
  lines.push(
    `${statusWord(msg)}: rule ${msg.rule}, ${msg.severity}, at ${new Date(msg.at).toISOString()}`,
  );
  if (msg.url !== undefined) lines.push(`Dashboard: ${msg.url}`);
  lines.push("", "-- ", "Sent by picluster.");
  return `${lines.join("\n")}\n`;
}

function oneLine(text: string, max = EXCERPT_CHARS): string {
  return cut(text.replace(/\s+/g, " ").trim(), max);
}

/** What went wrong underneath a fetch failure (refused, unknown host, TLS…), without the URL. */
export function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code !== undefined && !cause.message.includes(code)
      ? `${code}: ${cause.message}`
      : cause.message;
  }
  return err instanceof Error ? err.message : String(err);
}

function postJson(
  fetchFn: typeof fetch,
  url: string,
  value: unknown,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<void> {
  return post(
    fetchFn,
    url,
    JSON.stringify(value),
    { ...headers, "content-type": "application/json" },
    signal,
  );
}

/** POST; any 2xx is delivered. Redirects are not followed: the body and token go only where configured. */
async function post(
  fetchFn: typeof fetch,
  url: string,
  body: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<void> {
  const host = hostOf(url);
  let res: Response;
  try {
    res = await fetchFn(url, {
      method: "POST",
      headers: { "user-agent": "picluster", ...headers },
      body,
      signal,
      redirect: "manual",
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new Error(`POST to ${host} failed: ${describeFetchError(err)}`, { cause: err });
  }
  if (res.status >= 200 && res.status < 300) {
    await res.body?.cancel();
    return;
  }
  let excerpt = "";
  try {
    excerpt = oneLine(await res.text());
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    excerpt = `(body unreadable: ${describeFetchError(err)})`;
  }
  const redirect = res.status >= 300 && res.status < 400 ? " (redirects are not followed)" : "";
  throw new Error(
    `HTTP ${res.status} from ${host}${redirect}${excerpt === "" ? "" : `: ${excerpt}`}`,
  );
}

/** What to change, for the failures a first setup usually meets. */
function smtpHint(def: EmailChannelDef, message: string): string {
  if (/certificate/i.test(message) && def.caFile === undefined)
    return " (the server's certificate is not trusted: set ca_file to its CA or certificate)";
  if (/wrong version number|packet length too long/i.test(message) && def.security === "tls")
    return ` (port ${def.port} does not speak TLS from the first byte: try security = starttls)`;
  return "";
}

async function sendEmail(
  def: EmailChannelDef,
  msg: AlertMessage,
  signal: AbortSignal,
): Promise<void> {
  let ca: string | undefined;
  if (def.caFile !== undefined) {
    try {
      ca = await readFile(def.caFile, "utf8");
    } catch (err) {
      throw new Error(
        `cannot read ca_file ${def.caFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        { cause: err },
      );
    }
  }
  const transport = createTransport({
    host: def.host,
    port: def.port,
    secure: def.security === "tls",
    requireTLS: def.security === "starttls",
    ignoreTLS: def.security === "none",
    ...(def.user !== undefined && def.password !== undefined
      ? { auth: { user: def.user, pass: def.password } }
      : {}),
    tls: {
      minVersion: "TLSv1.2",
      ...(ca === undefined ? {} : { ca }),
    },
    connectionTimeout: def.timeoutMs,
    greetingTimeout: def.timeoutMs,
    socketTimeout: def.timeoutMs,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  try {
    await transport.sendMail({
      from: def.from,
      to: [...def.to],
      subject: emailSubject(msg),
      text: emailText(msg),
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    const e = err as { message?: string; code?: string; response?: string };
    // nodemailer's message already holds the server's reply ("Invalid login: 535 …").
    const reply =
      e.response !== undefined && !(e.message ?? "").includes(e.response) ? ` (${e.response})` : "";
    throw new Error(
      `SMTP ${def.host}:${def.port}: ${oneLine(`${e.message ?? err}${reply}`)}${smtpHint(def, e.message ?? "")}`,
      { cause: err },
    );
  } finally {
    transport.close();
  }
}

/** Kill a whole process group. Never throws: this runs from an abort listener. */
function killGroup(pid: number, log: Logger, program: string): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch (err) {
    // ESRCH: it ended on its own between the abort and now; nothing to kill.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ESRCH")
      log.error("cannot kill command", { program, pid, err: code ?? String(err) });
  }
}

function runCommand(
  def: CommandChannelDef,
  msg: AlertMessage,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const [program, ...args] = def.command;
  if (program === undefined) return Promise.reject(new Error("empty command"));
  if (signal.aborted) return Promise.reject(signal.reason);
  const name = basename(program);
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      stdio: ["pipe", "ignore", "pipe"],
      // Its own process group: a timeout kills what it started too.
      detached: true,
      env: {
        PATH: COMMAND_PATH,
        HOME: homedir(),
        LANG: "C.UTF-8",
        PICLUSTER_ALERT_STATUS: msg.status,
        PICLUSTER_ALERT_TITLE: msg.title,
        PICLUSTER_ALERT_RULE: msg.rule,
        PICLUSTER_ALERT_SEVERITY: msg.severity,
        PICLUSTER_ALERT_NODES: msg.nodes.map((n) => n.name).join(","),
      },
    });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      if (stderr.length < 4 * EXCERPT_CHARS) stderr += chunk;
    });
    const onAbort = () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
        killGroup(child.pid, log, name);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    child.once("error", (err: NodeJS.ErrnoException) => {
      signal.removeEventListener("abort", onAbort);
      reject(new Error(`cannot run ${name}: ${err.code ?? err.message}`, { cause: err }));
    });
    // A program that exits without reading its input is fine; its exit code decides.
    child.stdin.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE")
        log.warn("command stdin failed", { program: name, err: err.code ?? err.message });
    });
    child.stdin.end(webhookBody(msg));
    child.once("close", (code, sig) => {
      signal.removeEventListener("abort", onAbort);
      if (code === 0) {
        resolve();
        return;
      }
      const why = code !== null ? `exited with code ${code}` : `killed by ${sig}`;
      const tail = oneLine(stderr);
      reject(new Error(`${name} ${why}${tail === "" ? "" : `: ${tail}`}`));
    });
  });
}
