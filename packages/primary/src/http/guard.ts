/**
 * What every request meets before a route: the Host check (DNS rebinding),
 * the headers that keep a browser from sniffing, framing or leaking, and the
 * bearer-token check for routes that need it, made before the body is read.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { type ErrorCode, type ForeignCode, httpStatus } from "@picluster/common";
import type { FastifyReply, FastifyRequest } from "fastify";

export type ErrorBody = (
  code: ErrorCode | ForeignCode,
  message: string,
  field?: string,
) => { error: { code: string; message: string; field?: string } };

/** The error body every route uses: a stable code, a message, the field when one was wrong. */
export const errorBody: ErrorBody = (code, message, field) => ({
  error: { code, message, ...(field === undefined ? {} : { field }) },
});

/** Answer with an error: the status is the catalogue's for the code (error-codes.ts). */
export function sendError(
  reply: FastifyReply,
  code: ErrorCode | ForeignCode,
  message: string,
  field?: string,
): FastifyReply {
  return reply.code(httpStatus(code)).send(errorBody(code, message, field));
}

/**
 * Sent with every answer, streams included (set on the raw response, so a
 * hijacked reply's writeHead merges them). Everything the dashboard loads
 * comes from this server, so the policy allows only 'self'.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
};

/**
 * Which Host header values name this server. A DNS-rebinding page reaches
 * us under its own host name, so names are checked; an IP address cannot be
 * rebound, so any address is fine (a LAN user types http://192.168.1.10:8123/).
 */
export class HostCheck {
  private readonly names = new Set<string>();
  private readonly suffixes: string[] = [];
  private readonly any: boolean;

  constructor(allowed: readonly string[]) {
    let any = false;
    for (const raw of allowed) {
      const name = raw.toLowerCase().replace(/\.$/, "");
      if (name === "" || name === "0.0.0.0" || name === "::") continue;
      if (name === "*") any = true;
      else if (name.startsWith(".")) this.suffixes.push(name);
      else if (name.startsWith("*.")) this.suffixes.push(name.slice(1));
      else this.names.add(name);
    }
    this.any = any;
  }

  /** The host part of a Host header: `[::1]:8123` → `::1`, `Pi.local.:80` → `pi.local`. */
  static hostOf(header: string): string {
    const h = header.trim().toLowerCase();
    if (h.startsWith("[")) return h.slice(1, h.indexOf("]") < 0 ? undefined : h.indexOf("]"));
    const colon = h.lastIndexOf(":");
    return (colon < 0 ? h : h.slice(0, colon)).replace(/\.$/, "");
  }

  allows(header: string | undefined): boolean {
    // HTTP/1.0 without Host: no browser sends that, so no rebinding either.
    if (header === undefined || this.any) return true;
    const host = HostCheck.hostOf(header);
    if (isIP(host) !== 0) return true;
    if (host === "localhost" || host.endsWith(".localhost")) return true;
    if (this.names.has(host)) return true;
    return this.suffixes.some((s) => host.endsWith(s) || host === s.slice(1));
  }
}

/** Compare two secrets in constant time: neither length nor content leaks through timing. */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (v: string) => createHash("sha256").update(v).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The bearer token of a request, or "" when it sent none. */
export function bearerOf(req: FastifyRequest): string {
  const header = req.headers.authorization ?? "";
  return header.startsWith("Bearer ") ? header.slice(7) : "";
}

/** Fastify's own codes for a client's mistakes, as ours. */
const CLIENT_ERRORS: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "E_BODY_TOO_LARGE",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "E_UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "E_BAD_CONTENT_LENGTH",
  FST_ERR_CTP_EMPTY_JSON_BODY: "E_BAD_JSON",
  FST_ERR_CTP_INVALID_JSON_BODY: "E_BAD_JSON",
  FST_ERR_CTP_EMPTY_TYPE: "E_UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_INVALID_TYPE: "E_UNSUPPORTED_MEDIA_TYPE",
};

/** Our code for a fastify client error (4xx), else undefined. */
export function clientErrorCode(err: {
  code?: string;
  statusCode?: number;
}): ErrorCode | undefined {
  if (err.statusCode === undefined || err.statusCode < 400 || err.statusCode >= 500)
    return undefined;
  if (err.code !== undefined && err.code in CLIENT_ERRORS) return CLIENT_ERRORS[err.code];
  if (err.statusCode === 408) return "E_REQUEST_TIMEOUT";
  if (err.statusCode === 413) return "E_BODY_TOO_LARGE";
  if (err.statusCode === 415) return "E_UNSUPPORTED_MEDIA_TYPE";
  return "E_BAD_REQUEST";
}
