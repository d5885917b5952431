/**
 * One HTTP/1.1 GET, written over a net, tls or unix socket, for the checks
 * and the container API. Written by hand rather than taken from node:http
 * because the agent has a memory budget (1.15× a bare node process):
 * loading node:http costs 1.3 MiB of RSS on this machine (bench/README.md,
 * suite `footprint`), and what these callers need is small: a status line,
 * headers, and a bounded body (Content-Length, chunked, or up to close).
 * `Connection: close` on every request: nothing is kept alive.
 */
import { connect as netConnect, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";

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
export function decodeChunked(raw: Buffer): { data: Buffer; done: boolean } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf("\r\n", at);
    if (eol < 0) return { data: Buffer.concat(parts), done: false };
    const size = Number.parseInt(raw.subarray(at, eol).toString("latin1").split(";")[0] ?? "", 16);
    if (!Number.isFinite(size))
      throw new HttpGetError("E_HTTP", "a chunk size that is not a number");
    if (size === 0) return { data: Buffer.concat(parts), done: true };
    const start = eol + 2;
    if (raw.length < start + size) {
      parts.push(raw.subarray(start));
      return { data: Buffer.concat(parts), done: false };
    }
    parts.push(raw.subarray(start, start + size));
    at = start + size + 2;
  }
}

export async function httpGet(target: GetTarget): Promise<GetResult> {
  let socket: Socket | TLSSocket;
  if (target.socketPath !== undefined) socket = netConnect({ path: target.socketPath });
  else if (target.tls === true) {
    const { connect } = await import("node:tls");
    socket = connect({ host: target.host, port: target.port ?? 443, servername: target.host });
  } else socket = netConnect({ host: target.host, port: target.port ?? 80 });
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let head: { status: number; headers: Map<string, string>; latencyMs: number } | undefined;
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;
    /** https: the server's certificate, read once connected (a closed socket has none to give). */
    let cert: { valid_to?: string } | undefined;
    const finish = (err: Error | undefined, truncated = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== undefined || head === undefined) {
        reject(err ?? new HttpGetError("E_HTTP", "the connection closed before an answer"));
        return;
      }
      let body = buffered;
      const chunked = head.headers.get("transfer-encoding")?.toLowerCase().includes("chunked");
      if (chunked) body = decodeChunked(buffered).data;
      const length = Number(head.headers.get("content-length"));
      if (!chunked && Number.isFinite(length) && body.length > length)
        body = body.subarray(0, length);
      const over = body.length > target.maxBody;
      const result: GetResult = {
        status: head.status,
        headers: head.headers,
        body: body.subarray(0, target.maxBody).toString("utf8"),
        truncated: truncated || over,
        latencyMs: head.latencyMs,
      };
      const validTo = cert?.valid_to === undefined ? Number.NaN : Date.parse(cert.valid_to);
      if (Number.isFinite(validTo)) result.certValidTo = validTo;
      resolve(result);
    };
    const timer = setTimeout(
      () => finish(new HttpGetError("E_TIMEOUT", `no answer within ${target.timeoutMs} ms`)),
      target.timeoutMs,
    );
    const complete = (): boolean => {
      if (head === undefined) return false;
      if (head.headers.get("transfer-encoding")?.toLowerCase().includes("chunked"))
        return decodeChunked(buffered).done;
      const length = Number(head.headers.get("content-length"));
      return Number.isFinite(length) && buffered.length >= length;
    };
    socket.on(target.tls === true ? "secureConnect" : "connect", () => {
      if (target.tls === true) cert = (socket as TLSSocket).getPeerCertificate();
      socket.write(
        `GET ${target.path} HTTP/1.1\r\nHost: ${target.host}\r\nUser-Agent: ${target.userAgent ?? "picluster"}\r\nAccept: */*\r\nConnection: close\r\n\r\n`,
      );
    });
    socket.on("data", (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (head === undefined) {
        const end = buffered.indexOf("\r\n\r\n");
        if (end < 0) {
          if (buffered.length > MAX_HEAD)
            finish(new HttpGetError("E_HTTP", `headers longer than ${MAX_HEAD} bytes`));
          return;
        }
        const lines = buffered.subarray(0, end).toString("latin1").split("\r\n");
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
        if (m === null) {
          finish(
            new HttpGetError("E_HTTP", `not an HTTP answer: "${(lines[0] ?? "").slice(0, 40)}"`),
          );
          return;
        }
        const headers = new Map<string, string>();
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(":");
          if (colon > 0)
            headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
        }
        head = {
          status: Number(m[1]),
          headers,
          latencyMs: Math.round((performance.now() - started) * 10) / 10,
        };
        buffered = buffered.subarray(end + 4);
      }
      if (complete()) finish(undefined);
      // Enough of the body (with room for chunk framing): stop reading.
      else if (buffered.length > target.maxBody + 1024) finish(undefined, true);
    });
    socket.on("end", () => finish(undefined));
    socket.on("close", () => finish(undefined));
    socket.on("error", (err: NodeJS.ErrnoException) =>
      finish(new HttpGetError(err.code ?? "E_HTTP", err.message)),
    );
  });
}
