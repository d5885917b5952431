/**
 * The nodes' checks: `GET /api/checks` (every check, within the caller's
 * scope) and, with `[http] status_page = on`, the public status page
 * (`/status`, `/status.json`): the chosen checks' node, name, state and
 * since when, nothing more, for anyone who can reach the API.
 */
import type { CheckList, CheckView, StatusPage } from "@picluster/common";
import { CheckListSchema, StatusPageSchema } from "@picluster/common/schema";
import type { FastifyInstance } from "fastify";
import type { NodeRecord, Registry } from "../registry.js";
import { inScope } from "./access.js";

/** Every check of the nodes given, sorted by node then check. */
export function checkViews(nodes: readonly NodeRecord[]): CheckView[] {
  const out: CheckView[] = [];
  for (const n of nodes) {
    const connected = n.state === "alive" || n.state === "suspect";
    for (const c of n.vitals?.checks ?? [])
      out.push({
        nodeId: n.id,
        node: n.name,
        check: c.name,
        kind: c.kind,
        target: c.target,
        state: connected ? (c.up ? "up" : "down") : "unknown",
        up: c.up,
        reason: c.reason,
        since: c.since,
        at: c.at,
        latencyMs: c.latencyMs ?? null,
        certExpiresAt: c.certExpiresAt ?? null,
      });
  }
  return out.sort((a, b) =>
    a.node === b.node ? (a.check < b.check ? -1 : 1) : a.node < b.node ? -1 : 1,
  );
}

/** Whether `[http] status_checks` names this check (empty: every check). */
function chosen(list: readonly string[], node: string, check: string): boolean {
  return list.length === 0 || list.includes(check) || list.includes(`${node}/${check}`);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function statusHtml(page: StatusPage): string {
  const down = page.checks.filter((c) => c.state !== "up").length;
  const rows = page.checks
    .map(
      (c) =>
        `<tr class="${c.state}"><td>${escapeHtml(c.node)}</td><td>${escapeHtml(c.check)}</td><td class="state">${c.state}</td><td><time datetime="${new Date(c.since).toISOString()}">${new Date(c.since).toISOString().replace("T", " ").slice(0, 16)} UTC</time></td></tr>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30"><title>Status</title>
<style>
:root { color-scheme: light dark; }
body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.4rem; } .summary { font-size: 1.1rem; font-weight: 600; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid color-mix(in srgb, currentColor 15%, transparent); }
.up .state { color: #1a7f37; } .down .state { color: #cf222e; font-weight: 700; } .unknown .state { color: #6e7781; }
footer { color: #6e7781; font-size: .85rem; margin-top: 1rem; }
</style></head><body>
<h1>Status</h1>
<p class="summary">${page.checks.length === 0 ? "No checks to show." : down === 0 ? "Everything is up." : `${down} of ${page.checks.length} not up.`}</p>
<table><thead><tr><th>Node</th><th>Check</th><th>State</th><th>Since</th></tr></thead><tbody>
${rows}
</tbody></table>
<footer>Updated ${new Date(page.at).toISOString().replace("T", " ").slice(0, 19)} UTC; this page refreshes every 30 s.</footer>
</body></html>
`;
}

export interface CheckRoutesDeps {
  registry: Registry;
  clock: { now(): number };
  /** `[http] status_page`: the checks it shows; undefined when it is off. */
  statusChecks?: readonly string[];
}

export function registerCheckRoutes(app: FastifyInstance, deps: CheckRoutesDeps): void {
  app.get(
    "/api/checks",
    { schema: { response: { 200: CheckListSchema } } },
    async (req): Promise<CheckList> => ({
      checks: checkViews(deps.registry.list().filter((n) => inScope(req, n))),
    }),
  );
  const list = deps.statusChecks;
  if (list === undefined) return;
  const page = (): StatusPage => ({
    checks: checkViews(deps.registry.list())
      .filter((c) => chosen(list, c.node, c.check))
      .map((c) => ({ node: c.node, check: c.check, state: c.state, since: c.since })),
    at: deps.clock.now(),
  });
  app.get("/status.json", { schema: { response: { 200: StatusPageSchema } } }, async () => page());
  app.get("/status", async (_req, reply) =>
    reply
      .type("text/html; charset=utf-8")
      .header("cache-control", "no-store")
      .send(statusHtml(page())),
  );
}
