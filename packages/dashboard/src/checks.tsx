/**
 * The Checks page: every node's checks (`[check.NAME]` sections) from
 * GET /api/checks, the ones not up first; and the rows of one node's
 * checks on its own page.
 */

import { ago } from "@picluster/common/shared";
import type { CheckList, CheckView } from "./api.js";
import { useJson } from "./hooks.js";

function order(a: CheckView, b: CheckView): number {
  const rank = (c: CheckView) => (c.state === "down" ? 0 : c.state === "unknown" ? 1 : 2);
  return rank(a) - rank(b) || a.node.localeCompare(b.node) || a.check.localeCompare(b.check);
}

function latency(c: CheckView): string {
  return c.latencyMs === null
    ? "–"
    : `${c.latencyMs < 10 ? c.latencyMs.toFixed(1) : Math.round(c.latencyMs)} ms`;
}

function certificate(c: CheckView): string {
  if (c.certExpiresAt === null) return "";
  const days = Math.floor((c.certExpiresAt - Date.now()) / 86_400_000);
  return days < 0 ? "certificate expired" : `certificate ${days} d left`;
}

export function CheckRows({ checks, showNode }: { checks: CheckView[]; showNode: boolean }) {
  return (
    <table class="checks">
      <thead>
        <tr>
          {showNode && <th>Node</th>}
          <th>Check</th>
          <th>State</th>
          <th>Since</th>
          <th>Why</th>
          <th class="num">Latency</th>
        </tr>
      </thead>
      <tbody>
        {[...checks].sort(order).map((c) => (
          <tr key={`${c.nodeId}/${c.check}`} class={`check-${c.state}`} data-check={c.check}>
            {showNode && (
              <td>
                <a href={`#/node/${encodeURIComponent(c.nodeId)}`}>{c.node}</a>
              </td>
            )}
            <td>
              <b>{c.check}</b> <small title={c.target}>{c.kind}</small>
            </td>
            <td class="state">{c.state}</td>
            <td>{ago(c.since)}</td>
            <td>
              {c.reason}
              {certificate(c) === "" ? "" : <small> · {certificate(c)}</small>}
            </td>
            <td class="num">{latency(c)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** One node's checks on its page; nothing when it has none. */
export function NodeChecks({ nodeId }: { nodeId: string }) {
  const { data } = useJson<CheckList>("/api/checks", 10_000);
  const mine = (data?.checks ?? []).filter((c) => c.nodeId === nodeId);
  if (mine.length === 0) return null;
  return (
    <>
      <h2>Checks</h2>
      <CheckRows checks={mine} showNode={false} />
    </>
  );
}

export function ChecksPage() {
  const { data, error } = useJson<CheckList>("/api/checks", 5_000);
  if (error !== undefined) return <p class="error">{error}</p>;
  if (data === undefined) return <p class="empty">Loading…</p>;
  const down = data.checks.filter((c) => c.state !== "up").length;
  return (
    <section class="checks-page">
      <h1>
        Checks{" "}
        <small>
          {data.checks.length === 0
            ? ""
            : down === 0
              ? `all ${data.checks.length} up`
              : `${down} of ${data.checks.length} not up`}
        </small>
      </h1>
      {data.checks.length === 0 ? (
        <p class="empty">
          No checks yet. A node runs the ones its config declares, e.g. <code>[check.web]</code>{" "}
          with <code>http = http://127.0.0.1/healthz</code> (docs/checks.md).
        </p>
      ) : (
        <CheckRows checks={data.checks} showNode={true} />
      )}
    </section>
  );
}
