/**
 * Who may call what (docs/security.md): every route's need in one table,
 * checked by one hook before the body is read.
 *
 * - `public`: anyone (health, the dashboard's files, the join files: the
 *   join line pins those by their hashes, and a join token is one-time);
 * - `read`: a viewer token or better; without a token only while reads are
 *   open (the API bound to loopback, or `[http] public_read = on`);
 * - `operate`: an operator token or better (tasks, jobs, what nodes print);
 *   a scoped operator only on the nodes its scope selects (checked by the
 *   routes, which know the nodes);
 * - `admin`: the `[http] token` or an admin token (nodes, tokens, alerts).
 *
 * A route missing from the table is refused (and a test walks every route).
 */

import { randomBytes } from "node:crypto";
import {
  type Clock,
  errorMessage,
  type Logger,
  nodeMatches,
  type Selectable,
} from "@picluster/common";
import type { FastifyReply, FastifyRequest } from "fastify";
import { type ApiTokens, type Principal, principalOf, type Role, roleRank } from "../api-tokens.js";
import { bearerOf, errorBody, sameSecret, sendError } from "./guard.js";

export type Need = "public" | "read" | "operate" | "admin";

/** Every route (method and path as registered) and what it needs. */
export const ROUTE_ACCESS: Readonly<Record<string, Need>> = {
  "GET /healthz": "public",
  "GET /": "public",
  "GET /assets/*": "public",
  "GET /join.sh": "public",
  "GET /join/agent.cjs": "public",
  // With [http] status_page = on: the chosen checks' states, for anyone.
  "GET /status": "public",
  "GET /status.json": "public",
  "GET /api/cluster": "read",
  "GET /api/nodes": "read",
  "GET /api/nodes/:id": "read",
  "GET /api/nodes/:id/vitals": "read",
  "GET /api/nodes/:id/custom": "read",
  "GET /api/nodes/:id/containers": "read",
  "GET /api/checks": "read",
  "GET /api/events": "read",
  "GET /api/stream": "read",
  "GET /metrics": "read",
  "GET /api/alerts": "read",
  "GET /api/tasks": "read",
  "GET /api/tasks/catalog": "read",
  "GET /api/jobs": "read",
  "GET /api/jobs/:id": "read",
  "GET /api/jobs/:id/results": "read",
  "GET /api/ping": "read",
  "GET /api/whoami": "read",
  "POST /api/stream/ticket": "read",
  "POST /api/tasks": "operate",
  "GET /api/tasks/:id": "operate",
  "GET /api/tasks/:id/output": "operate",
  "DELETE /api/tasks/:id": "operate",
  "POST /api/jobs": "operate",
  "DELETE /api/jobs/:id": "operate",
  "GET /api/nodes/:id/processes": "operate",
  "GET /api/nodes/:id/logs": "operate",
  "POST /api/nodes/:name/join-token": "admin",
  "POST /api/nodes/:name/revoke": "admin",
  "DELETE /api/nodes/:name": "admin",
  "POST /api/alerts/test": "admin",
  "GET /api/tokens": "admin",
  "POST /api/tokens": "admin",
  "DELETE /api/tokens/:name": "admin",
};

const NEED_RANK: Record<Exclude<Need, "public">, number> = {
  read: roleRank("viewer"),
  operate: roleRank("operator"),
  admin: roleRank("admin"),
};

const ANONYMOUS: Principal = { name: "anonymous", role: "anonymous" };
const ADMIN_TOKEN: Principal = { name: "http-token", role: "admin" };

declare module "fastify" {
  interface FastifyRequest {
    /** Who asked (set by the access hook before any route runs). */
    principal?: Principal;
  }
}

export interface AccessOptions {
  /** `[http] token`: an admin token. */
  token: string;
  apiTokens?: ApiTokens;
  /** Reads without a token: the API is bound to loopback, or `[http] public_read`. */
  readsOpen: boolean;
  /** `[http] token_rate`: requests per second per named token (bursts 5×). */
  ratePerSecond: number;
  clock: Clock;
  log: Logger;
}

function roleOf(p: Principal): number {
  return p.role === "anonymous" ? -1 : roleRank(p.role as Role);
}

/** Who asked, for the audit log and task and job records. */
export function requesterOf(req: FastifyRequest): string {
  const claimed = req.headers["x-picluster-user"];
  const who = typeof claimed === "string" ? claimed.replace(/[^\w.@-]/g, "").slice(0, 64) : "";
  const p = req.principal;
  const base = p === undefined || p.name === "http-token" ? "api-token" : `token ${p.name}`;
  return who === "" ? base : `${base} (${who})`;
}

/** Whether the request's principal may act on `node` (its scope selects it, or it has none). */
export function inScope(req: FastifyRequest, node: Selectable): boolean {
  const scope = req.principal?.scope;
  return scope === undefined || nodeMatches(node, scope);
}

/** The refusal for a node outside the principal's scope. */
export function outOfScope(reply: FastifyReply, req: FastifyRequest, what: string): FastifyReply {
  const p = req.principal;
  return sendError(
    reply,
    "E_OUT_OF_SCOPE",
    errorMessage("E_OUT_OF_SCOPE", `"${p?.name ?? "?"}"`, p?.scopeText ?? "its nodes", what),
  );
}

/**
 * For a scoped principal, the refusal when `nodes` (what a request would
 * act on) include any outside its scope; undefined when it may go on.
 */
export function refuseOutOfScope(
  req: FastifyRequest,
  reply: FastifyReply,
  nodes: readonly (Selectable & { name: string })[],
): FastifyReply | undefined {
  const outside = nodes.filter((n) => !inScope(req, n)).map((n) => n.name);
  if (outside.length === 0) return undefined;
  const shown =
    outside.slice(0, 5).join(", ") + (outside.length > 5 ? ` and ${outside.length - 5} more` : "");
  return outOfScope(reply, req, `${shown} ${outside.length === 1 ? "is" : "are"} outside it`);
}

/** Whether a task run or job was asked for by the request's own named token. */
export function askedBySelf(req: FastifyRequest, requestedBy: string): boolean {
  const p = req.principal;
  if (p === undefined || p.role === "anonymous") return false;
  const base = p.name === "http-token" ? "api-token" : `token ${p.name}`;
  return requestedBy === base || requestedBy.startsWith(`${base} (`);
}

/** Whether the request may see what nodes print (task output, items' output): operator or admin. */
export function mayOperate(req: FastifyRequest): boolean {
  return roleOf(req.principal ?? ANONYMOUS) >= roleRank("operator");
}

/** How long a stream ticket opens `/api/stream` (a browser's EventSource cannot send a token). */
export const TICKET_MS = 60_000;
/** Tickets held at once; past it the oldest go. */
const MAX_TICKETS = 1_000;

export function accessControl(opts: AccessOptions): {
  hook: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  anyToken: () => boolean;
  /** A ticket for the request's principal: `GET /api/stream?ticket=…` counts as it for TICKET_MS. */
  ticket: (req: FastifyRequest) => string;
} {
  const tickets = new Map<string, { principal: Principal; until: number }>();
  const ticket = (req: FastifyRequest) => {
    const now = opts.clock.now();
    for (const [t, v] of tickets)
      if (v.until <= now || tickets.size >= MAX_TICKETS) tickets.delete(t);
    const t = randomBytes(24).toString("base64url");
    tickets.set(t, { principal: req.principal ?? ANONYMOUS, until: now + TICKET_MS });
    return t;
  };
  const buckets = new Map<string, { tokens: number; at: number }>();
  const burst = opts.ratePerSecond * 5;
  const anyToken = () => opts.token !== "" || (opts.apiTokens?.list().some(live) ?? false);
  const live = (t: { revokedAt?: number; expiresAt?: number }) =>
    t.revokedAt === undefined && (t.expiresAt === undefined || t.expiresAt > opts.clock.now());

  /** Who the bearer token names; a string when it is refused (unknown, revoked, expired). */
  const identify = (req: FastifyRequest): Principal | string => {
    const bearer = bearerOf(req);
    if (bearer === "") return ANONYMOUS;
    if (opts.token !== "" && sameSecret(bearer, opts.token)) return ADMIN_TOKEN;
    const found = opts.apiTokens?.authenticate(bearer);
    if (found === undefined) return "the bearer token is not one this primary knows";
    if ("refused" in found) return found.refused;
    return principalOf(found.token);
  };

  /** A token bucket per named token: false when it is empty (with the seconds until it is not). */
  const take = (name: string): number | undefined => {
    const now = opts.clock.now();
    const b = buckets.get(name) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1_000) * opts.ratePerSecond);
    b.at = now;
    buckets.set(name, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / opts.ratePerSecond));
  };

  const refuse = (reply: FastifyReply, status: number, code: string, message: string) =>
    reply
      .code(status)
      .header("connection", "close")
      .send(errorBody(code as "E_UNAUTHORIZED", message));

  const hook = async (req: FastifyRequest, reply: FastifyReply) => {
    const url = req.routeOptions.url;
    // No route: the not-found handler answers.
    if (url === undefined) return;
    const method = req.method === "HEAD" ? "GET" : req.method;
    const need = ROUTE_ACCESS[`${method} ${url}`];
    if (need === undefined) {
      opts.log.error("route without an access rule refused", { method, url });
      return refuse(reply, 403, "E_FORBIDDEN", `${method} ${url} has no access rule`);
    }
    if (need === "public") return;
    let who = identify(req);
    // The live stream from a browser: a ticket stands for the token it was issued to.
    const given = (req.query as { ticket?: unknown } | undefined)?.ticket;
    if (url === "/api/stream" && typeof given === "string" && who === ANONYMOUS) {
      const held = tickets.get(given);
      if (held === undefined || held.until <= opts.clock.now())
        return refuse(
          reply,
          401,
          "E_UNAUTHORIZED",
          "the stream ticket is unknown or expired: ask for another",
        );
      who = held.principal;
    }
    if (typeof who === "string") {
      // Reads open (loopback): a wrong token reads as nobody, as before tokens had roles;
      // /api/whoami says why it was refused.
      if (need === "read" && opts.readsOpen) {
        req.principal = { ...ANONYMOUS, refused: who };
        return;
      }
      return refuse(reply, 401, "E_UNAUTHORIZED", who);
    }
    req.principal = who;
    if (who.role !== "anonymous" && who.name !== ADMIN_TOKEN.name) {
      const wait = take(who.name);
      if (wait !== undefined)
        return reply
          .code(429)
          .header("retry-after", String(wait))
          .send(
            errorBody(
              "E_RATE_LIMITED",
              errorMessage("E_RATE_LIMITED", `"${who.name}"`, String(wait)),
            ),
          );
    }
    if (who.role === "anonymous") {
      if (need === "read" && opts.readsOpen) return;
      if (need !== "read" && !anyToken())
        return refuse(
          reply,
          403,
          "E_NO_TOKEN_CONFIGURED",
          "calls that change state are off until [http] token is set or a token is made (picluster token add)",
        );
      return refuse(
        reply,
        401,
        "E_UNAUTHORIZED",
        need === "read"
          ? "a viewer token (or better) is needed to read this API off loopback ([http] public_read = on opens reads)"
          : "a valid bearer token is needed for this call",
      );
    }
    if (roleOf(who) < NEED_RANK[need])
      return refuse(
        reply,
        403,
        "E_FORBIDDEN",
        errorMessage(
          "E_FORBIDDEN",
          `"${who.name}"`,
          `it is ${who.role === "admin" ? "an admin" : `a ${who.role}`} token, and this needs ${need === "operate" ? "an operator" : "an admin"} token`,
        ),
      );
  };
  return { hook, anyToken, ticket };
}
