/**
 * The dashboard's static files (packages/dashboard, built by Vite), served
 * from memory: a dozen small files read once at start. Hashed assets are
 * cached for a year (their names change with their content); index.html is
 * revalidated every time, so a new build is seen at once.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, relative } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { sendError } from "./guard.js";
import { STATUS_PAGE, STATUS_PAGE_CSP } from "./status-page.js";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".woff2": "font/woff2",
};

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
}

function readTree(
  dir: string,
  root = dir,
  out = new Map<string, StaticFile>(),
): Map<string, StaticFile> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) readTree(path, root, out);
    else {
      const body = readFileSync(path);
      out.set(`/${relative(root, path).split("\\").join("/")}`, {
        body,
        type: TYPES[extname(name)] ?? "application/octet-stream",
        etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
      });
    }
  }
  return out;
}

/** Serve the built dashboard at / (true), or nothing when it was not built (false). */
function serveDashboard(app: FastifyInstance, dir: string | undefined): boolean {
  let files: Map<string, StaticFile>;
  try {
    if (dir === undefined) return false;
    files = readTree(dir);
  } catch {
    return false;
  }
  const index = files.get("/index.html");
  if (index === undefined) return false;
  const serve =
    (path: string, immutable: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
      const file = files.get(
        path === "*" ? `/assets/${(req.params as { "*": string })["*"]}` : path,
      );
      if (file === undefined) return sendError(reply, "E_NOT_FOUND", "no such file");
      reply
        .header("content-type", file.type)
        .header("cache-control", immutable ? "public, max-age=31536000, immutable" : "no-cache")
        .header("etag", file.etag);
      if (req.headers["if-none-match"] === file.etag) return reply.code(304).send();
      return reply.send(file.body);
    };
  app.get("/", serve("/index.html", false));
  app.get("/assets/*", serve("*", true));
  return true;
}

/** The built dashboard at / when there is one; else a small live status page. */
export function registerDashboard(app: FastifyInstance, dir: string | undefined): void {
  if (serveDashboard(app, dir)) return;
  app.get("/", async (_req, reply) => {
    reply
      .header("content-type", "text/html; charset=utf-8")
      .header("cache-control", "no-cache")
      .header("content-security-policy", STATUS_PAGE_CSP);
    return STATUS_PAGE;
  });
}
