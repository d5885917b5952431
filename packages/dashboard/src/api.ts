/** The primary's HTTP API as the page uses it: JSON reads and the live event stream. */
import type { AlertState, MessageMap, TestResult } from "@picluster/common/shared";

// The API's shapes are declared once, in common (schemas the primary answers by).
export type {
  CheckList,
  CheckView,
  ContainerList,
  CustomSeriesList,
  NodeDetail,
  NodeState,
  NodeSummary,
  NodeView,
  SeriesPoint,
  StoredEvent,
} from "@picluster/common/shared";

export type Vitals = MessageMap["vitals"];
export type Details = MessageMap["details"];
/** The power flags the page shows (the node sends more: where they came from, and "occurred"). */
export type Throttling = Pick<
  NonNullable<Vitals["throttling"]>,
  "underVoltage" | "throttled" | "freqCapped" | "softTempLimit"
>;

/** The headers of every call: JSON, and the token when the page has one (some reads need it). */
function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = apiToken();
  return {
    accept: "application/json",
    ...extra,
    ...(token === "" ? {} : { authorization: `Bearer ${token}` }),
  };
}

async function failure(res: Response, path: string): Promise<ApiError> {
  const body = (await res.json().catch(() => ({}))) as {
    error?: { code?: string; message?: string };
  };
  return new ApiError(
    res.status,
    body.error?.code ?? "E_HTTP",
    body.error?.message ?? `${res.status} from ${path}`,
  );
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) throw await failure(res, path);
  return (await res.json()) as T;
}

/**
 * Read a server-sent event stream that needs the token (EventSource cannot
 * send one): each `event:`/`data:` block is handed to `onEvent` until the
 * stream ends or `signal` aborts. Throws an ApiError for a refused call.
 */
export async function followEvents(
  path: string,
  onEvent: (kind: string, data: unknown) => void,
  signal: AbortSignal,
): Promise<void> {
  const res = await fetch(path, { headers: headers({ accept: "text/event-stream" }), signal });
  if (!res.ok || res.body === null) throw await failure(res, path);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
      let kind = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) kind = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length > 0) onEvent(kind, JSON.parse(data.join("\n")) as unknown);
    }
  }
}

/** The figures a tile or a row shows, from a node's summary or from a stream batch. */
export interface Figures {
  cpu: number | null;
  temp: number | null;
  mem: number | null;
  disk: number | null;
  load1: number | null;
}

/**
 * The cluster's live event stream (state changes, stored events, a vitals
 * batch a second). EventSource cannot send a token: with one, the page first
 * trades it for a ticket that opens the stream for a minute.
 */
export function eventStream(ticket?: string): EventSource {
  return new EventSource(
    ticket === undefined ? "/api/stream" : `/api/stream?ticket=${encodeURIComponent(ticket)}`,
  );
}

/** A stream ticket for the page's token (POST /api/stream/ticket). */
export async function streamTicket(): Promise<string> {
  const res = await fetch("/api/stream/ticket", { method: "POST", headers: headers() });
  if (!res.ok) throw await failure(res, "/api/stream/ticket");
  return ((await res.json()) as { ticket: string }).ticket;
}

/** Who the page's token is (GET /api/whoami); `anonymous` without one. */
export interface Who {
  name: string;
  role: "anonymous" | "viewer" | "operator" | "admin";
  scope?: string;
  /** The page's token was refused (reads are open, so the page reads as nobody). */
  refused?: string;
}

/**
 * The API token for calls that change state (running a task, cancelling
 * one). The page keeps it in this browser's storage; `picluster up` prints
 * a link whose `#token=` fragment hands it over (a fragment never reaches a
 * server or its logs).
 */
const TOKEN_KEY = "picluster.token";

export function apiToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return ""; // Storage off (a private window with strict settings).
  }
}

export function setApiToken(token: string): void {
  try {
    if (token === "") localStorage.removeItem(TOKEN_KEY);
    else localStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Storage off: the token lasts until the page is closed.
  }
  // Who the page is changed: the header, the controls shown and the stream follow.
  dispatchEvent(new Event(TOKEN_EVENT));
}

/** Told on window whenever the page's token changes. */
export const TOKEN_EVENT = "picluster-token";

/** Take a `#token=…` fragment into storage and drop it from the address bar. */
export function adoptTokenFromHash(): void {
  const m = /^#token=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (m?.[1] === undefined) return;
  setApiToken(m[1]);
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
  /** The call needs a (valid) token, or the primary has none configured. */
  get needsToken(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

/** A call that changes state, with the bearer token. */
export async function sendJson<T>(
  method: "POST" | "DELETE",
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: headers(body === undefined ? {} : { "content-type": "application/json" }),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw await failure(res, path);
  return (await res.json().catch(() => ({}))) as T;
}

export interface TaskArg {
  name: string;
  type: "string" | "integer" | "number" | "boolean";
  pattern?: string;
}

/** A task the nodes allow, and which of them allow it. */
export interface CatalogTask {
  name: string;
  description: string;
  builtin: boolean;
  disruptive: boolean;
  timeoutMs?: number;
  args: TaskArg[];
  nodes: string[];
}

/** A run and each node's result, as the primary stores and serves them. */
export type {
  StoredNodeResult as NodeResult,
  StoredTaskRun as TaskRun,
} from "@picluster/common/shared";

/** What `POST /api/nodes/:name/join-token` answers: the token and the lines to paste on the node. */
export interface JoinToken {
  name: string;
  token: string;
  validForMs: number;
  /** The one-line install (fetch, check, install the service); null when the primary has no agent bundle. */
  command: string | null;
  /** The line for a node where picluster is already installed. */
  manual: string | null;
}

export function createJoinToken(name: string): Promise<JoinToken> {
  return sendJson<JoinToken>("POST", `/api/nodes/${encodeURIComponent(name)}/join-token`);
}

export type { AlertRuleView, AlertsAnswer } from "@picluster/common/shared";

/** Send a test message through one channel; answers whether it was delivered. */
export function testChannel(channel: string): Promise<TestResult & { channel: string }> {
  return sendJson("POST", "/api/alerts/test", { channel });
}

export type { AlertState, TestResult };
