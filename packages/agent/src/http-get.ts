/**
 * HTTP/1.1 GETs over a net, tls or unix socket, for the checks and the
 * container API. Written by hand rather than taken from node:http because
 * the agent has a memory budget (1.15× a bare node process): loading
 * node:http costs 1.3 MiB of RSS on this machine (bench/README.md, suite
 * `footprint`), and what these callers need is small: a status line,
 * headers, and a bounded body (Content-Length, chunked, or up to close).
 *
 * `httpGet` is one request on its own connection (`Connection: close`): a
 * check measures a fresh connection each time. `KeptConnection` sends one
 * request after another on a connection it keeps open (the container API,
 * a request per container at each sample): a connection per request cost
 * the agent twice the CPU (bench/README.md, suite `footprint`).
 */
import { connect as netConnect, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { monotonicMs } from "@picluster/common";

export interface GetTarget {
  path: string;
  /** The Host header. */
  host: string;
  /** A unix socket; else host and port. */
  socketPath?: string;
  port?: number;
  /** https: TLS with the system's CAs, the host as the server name. */
  tls?: boolean;
  timeoutMs: number;
  /** Body bytes kept; the rest is not read (`truncated`). */
  maxBody: number;
  userAgent?: string;
}

export interface GetResult {
  status: number;
  headers: Map<string, string>;
  body: string;
  truncated: boolean;
  /** From the request until the status line and headers were in, ms. */
  latencyMs: number;
  /** https: when the server's certificate expires, ms. */
  certValidTo?: number;
}

export class HttpGetError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const MAX_HEAD = 64 * 1024;

/** A chunked body's data, as much as is complete; `done` once the last chunk is in. */
export function decodeChunked(raw: Buffer): { data: Buffer; done: boolean; end: number } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf("\r\n", at);
    if (eol < 0) return { data: Buffer.concat(parts), done: false, end: at };
    const size = Number.parseInt(raw.subarray(at, eol).toString("latin1").split(";")[0] ?? "", 16);
    if (!Number.isFinite(size))
      throw new HttpGetError("E_HTTP", "a chunk size that is not a number");
    if (size === 0) {
      // The last chunk, then (no trailers are asked for) the empty line.
      const done = raw.length >= eol + 4;
      return { data: Buffer.concat(parts), done, end: done ? eol + 4 : at };
    }
    const start = eol + 2;
    if (raw.length < start + size + 2) {
      parts.push(raw.subarray(start, Math.min(raw.length, start + size)));
      return { data: Buffer.concat(parts), done: false, end: at };
    }
    parts.push(raw.subarray(start, start + size));
    at = start + size + 2;
  }
}

interface Head {
  status: number;
  headers: Map<string, string>;
  latencyMs: number;
  /** How the body ends. */
  framing: "length" | "chunked" | "close" | "none";
  length: number;
  /** Whether the connection may carry another request after this answer. */
  reusable: boolean;
}

/**
 * One answer read from bytes as they come: `push` each chunk; it says when
 * the answer is complete by its own framing, when enough of its body is in
 * (past `maxBody`), or that more is needed. Throws HttpGetError on a head
 * that is not HTTP.
 */
class AnswerReader {
  head: Head | undefined;
  private buffered: Buffer = Buffer.alloc(0);

  constructor(
    private readonly maxBody: number,
    private readonly started: number,
  ) {}

  push(chunk: Buffer): "more" | "done" | "full" {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    if (this.head === undefined) {
      const end = this.buffered.indexOf("\r\n\r\n");
      if (end < 0) {
        if (this.buffered.length > MAX_HEAD)
          throw new HttpGetError("E_HTTP", `headers longer than ${MAX_HEAD} bytes`);
        return "more";
      }
      this.head = this.parseHead(this.buffered.subarray(0, end).toString("latin1"));
      this.buffered = this.buffered.subarray(end + 4);
    }
    if (this.complete()) return "done";
    // Enough of the body (with room for chunk framing): stop reading.
    return this.buffered.length > this.maxBody + 1024 ? "full" : "more";
  }

  private parseHead(text: string): Head {
    const lines = text.split("\r\n");
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? "");
    if (m === null)
      throw new HttpGetError("E_HTTP", `not an HTTP answer: "${(lines[0] ?? "").slice(0, 40)}"`);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0)
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const status = Number(m[2]);
    const length = Number(headers.get("content-length"));
    const framing =
      status === 204 || status === 304 || (status >= 100 && status < 200)
        ? "none"
        : headers.get("transfer-encoding")?.toLowerCase().includes("chunked")
          ? "chunked"
          : headers.has("content-length") && Number.isInteger(length) && length >= 0
            ? "length"
            : "close";
    const closes = headers.get("connection")?.toLowerCase().includes("close") === true;
    return {
      status,
      headers,
      latencyMs: Math.round((monotonicMs() - this.started) * 10) / 10,
      framing,
      length,
      reusable: m[1] === "1" && framing !== "close" && !closes,
    };
  }

  private complete(): boolean {
    const head = this.head;
    if (head === undefined) return false;
    if (head.framing === "none") return true;
    if (head.framing === "chunked") return decodeChunked(this.buffered).done;
    return head.framing === "length" && this.buffered.length >= head.length;
  }

  /** The answer as read so far (complete, cut at maxBody, or ended by the connection's close). */
  result(truncated: boolean): GetResult {
    const head = this.head;
    if (head === undefined)
      throw new HttpGetError("E_HTTP", "the connection closed before an answer");
    let body = this.buffered;
    if (head.framing === "chunked") body = decodeChunked(this.buffered).data;
    else if (head.framing === "length" && body.length > head.length)
      body = body.subarray(0, head.length);
    else if (head.framing === "none") body = Buffer.alloc(0);
    return {
      status: head.status,
      headers: head.headers,
      body: body.subarray(0, this.maxBody).toString("utf8"),
      truncated: truncated || body.length > this.maxBody,
      latencyMs: head.latencyMs,
    };
  }
}

function requestText(path: string, host: string, userAgent: string, close: boolean): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${userAgent}\r\nAccept: */*\r\n${close ? "Connection: close\r\n" : ""}\r\n`;
}

export async function httpGet(target: GetTarget): Promise<GetResult> {
  let socket: Socket | TLSSocket;
  if (target.socketPath !== undefined) socket = netConnect({ path: target.socketPath });
  else if (target.tls === true) {
    const { connect } = await import("node:tls");
    socket = connect({ host: target.host, port: target.port ?? 443, servername: target.host });
  } else socket = netConnect({ host: target.host, port: target.port ?? 80 });
  const reader = new AnswerReader(target.maxBody, monotonicMs());
  return new Promise((resolve, reject) => {
    let settled = false;
    /** https: the server's certificate, read once connected (a closed socket has none to give). */
    let cert: { valid_to?: string } | undefined;
    const finish = (err: Error | undefined, truncated = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      let result: GetResult;
      try {
        if (err !== undefined) throw err;
        result = reader.result(truncated);
      } catch (e) {
        reject(e);
        return;
      }
      const validTo = cert?.valid_to === undefined ? Number.NaN : Date.parse(cert.valid_to);
      if (Number.isFinite(validTo)) result.certValidTo = validTo;
      resolve(result);
    };
    const timer = setTimeout(
      () => finish(new HttpGetError("E_TIMEOUT", `no answer within ${target.timeoutMs} ms`)),
      target.timeoutMs,
    );
    socket.on(target.tls === true ? "secureConnect" : "connect", () => {
      if (target.tls === true) cert = (socket as TLSSocket).getPeerCertificate();
      socket.write(requestText(target.path, target.host, target.userAgent ?? "picluster", true));
    });
    socket.on("data", (chunk: Buffer) => {
      try {
        const state = reader.push(chunk);
        if (state !== "more") finish(undefined, state === "full");
      } catch (err) {
        finish(err as Error);
      }
    });
    socket.on("end", () => finish(undefined));
    socket.on("close", () => finish(undefined));
    socket.on("error", (err: NodeJS.ErrnoException) =>
      finish(new HttpGetError(err.code ?? "E_HTTP", err.message)),
    );
  });
}

export interface KeptTarget {
  /** The Host header. */
  host: string;
  /** A unix socket; else host and port (plain TCP). */
  socketPath?: string;
  port?: number;
  timeoutMs: number;
  maxBody: number;
}

interface Pending {
  path: string;
  resolve(result: GetResult): void;
  reject(err: Error): void;
  /** Sent again once on a fresh connection when a reused one closed before answering. */
  retried: boolean;
}

/**
 * GETs one after another on one kept-alive connection, opened when first
 * needed and again after the server closed it; `close()` ends it. An answer
 * that cannot be followed by another (HTTP/1.0, `Connection: close`, a body
 * that ends with the connection) closes it after that answer. A request on a
 * reused connection that the server closed before answering (its idle
 * timeout) is sent once more on a new one, as HTTP clients do for a GET.
 */
export class KeptConnection {
  private socket: Socket | undefined;
  /** Requests sent on the current socket without an answer yet: at most one. */
  private current: { pending: Pending; reader: AnswerReader; timer: NodeJS.Timeout } | undefined;
  private readonly queue: Pending[] = [];
  /** Answers completed on the current socket (0: it is fresh). */
  private answered = 0;

  constructor(private readonly target: KeptTarget) {}

  get(path: string): Promise<GetResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ path, resolve, reject, retried: false });
      this.next();
    });
  }

  /** End the connection; what is queued or in flight fails. */
  close(): void {
    const err = new HttpGetError("E_HTTP", "the connection was closed");
    for (const p of this.queue.splice(0)) p.reject(err);
    this.drop(err);
  }

  private next(): void {
    if (this.current !== undefined) return;
    const pending = this.queue.shift();
    if (pending === undefined) return;
    const socket = this.socket ?? this.open();
    const reader = new AnswerReader(this.target.maxBody, monotonicMs());
    const timer = setTimeout(
      () =>
        this.drop(
          new HttpGetError("E_TIMEOUT", `no answer within ${this.target.timeoutMs} ms`),
          false,
        ),
      this.target.timeoutMs,
    );
    this.current = { pending, reader, timer };
    socket.write(requestText(pending.path, this.target.host, "picluster", false));
  }

  private open(): Socket {
    const t = this.target;
    const socket =
      t.socketPath !== undefined
        ? netConnect({ path: t.socketPath })
        : netConnect({ host: t.host, port: t.port ?? 80 });
    this.socket = socket;
    this.answered = 0;
    socket.on("data", (chunk: Buffer) => {
      if (socket !== this.socket) return;
      const current = this.current;
      if (current === undefined) {
        // Bytes nobody asked for: this connection's framing cannot be trusted.
        this.drop(new HttpGetError("E_HTTP", "data with no request in flight"));
        return;
      }
      let state: "more" | "done" | "full";
      try {
        state = current.reader.push(chunk);
      } catch (err) {
        this.drop(err as Error, false);
        return;
      }
      if (state === "more") return;
      const reusable = state === "done" && current.reader.head?.reusable === true;
      this.settle(undefined, state === "full");
      if (!reusable) this.endSocket();
      else this.answered++;
      this.next();
    });
    const gone = (err?: NodeJS.ErrnoException) => {
      if (socket !== this.socket) return;
      const current = this.current;
      // An answer that ends with the connection is complete now.
      if (current?.reader.head?.framing === "close" && err === undefined) {
        this.settle(undefined, false);
        this.endSocket();
        this.next();
        return;
      }
      const retry =
        current !== undefined &&
        this.answered > 0 &&
        current.reader.head === undefined &&
        !current.pending.retried;
      this.drop(
        err === undefined
          ? new HttpGetError("E_HTTP", "the connection closed before an answer")
          : new HttpGetError(err.code ?? "E_HTTP", err.message),
        retry,
      );
    };
    socket.on("end", () => gone());
    socket.on("close", () => gone());
    socket.on("error", (err: NodeJS.ErrnoException) => gone(err));
    return socket;
  }

  /** Resolve or reject the request in flight. */
  private settle(err: Error | undefined, truncated: boolean): void {
    const current = this.current;
    if (current === undefined) return;
    this.current = undefined;
    clearTimeout(current.timer);
    if (err !== undefined) {
      current.pending.reject(err);
      return;
    }
    try {
      current.pending.resolve(current.reader.result(truncated));
    } catch (e) {
      current.pending.reject(e as Error);
    }
  }

  private endSocket(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
  }

  /** Close the socket; the request in flight fails, or is queued again once when `retry`. */
  private drop(err: Error, retry = false): void {
    const current = this.current;
    if (current !== undefined && retry) {
      this.current = undefined;
      clearTimeout(current.timer);
      current.pending.retried = true;
      this.queue.unshift(current.pending);
    } else this.settle(err, false);
    this.endSocket();
    this.next();
  }
}
