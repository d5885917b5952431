import { nodeName } from "@picluster/common/shared";
import { useState } from "preact/hooks";
import type { StoredEvent } from "./api.js";
import { useJson, useLive } from "./hooks.js";
import { describe } from "./node.js";

const KINDS = [
  "",
  "node.state",
  "node.joined",
  "node.throttling",
  "node.details",
  "check.down",
  "check.up",
  "container.state",
  "task.started",
  "task.node",
  "task.finished",
  "alert.firing",
  "alert.resolved",
  "alert.delivery_failed",
  "primary.store_failed",
  "primary.store_ok",
];

export function EventsPage() {
  const cluster = useLive();
  const [node, setNode] = useState("");
  const [kind, setKind] = useState("");
  const query = new URLSearchParams({ limit: "200" });
  if (node !== "") query.set("node", node);
  if (kind !== "") query.set("kind", kind);
  const { data, error } = useJson<{ events: StoredEvent[] }>(`/api/events?${query}`, 5_000);
  const names = new Map([...cluster.nodes.values()].map((n) => [n.view.id, nodeName(n.view)]));
  return (
    <section>
      <div class="filters">
        <select
          aria-label="Node"
          value={node}
          onChange={(e) => setNode((e.target as HTMLSelectElement).value)}
        >
          <option value="">every node</option>
          {[...cluster.nodes.values()].map((n) => (
            <option key={n.view.id} value={n.view.id}>
              {nodeName(n.view)}
            </option>
          ))}
        </select>
        <select
          aria-label="Kind"
          value={kind}
          onChange={(e) => setKind((e.target as HTMLSelectElement).value)}
        >
          {KINDS.map((k) => (
            <option key={k} value={k}>
              {k === "" ? "every kind" : k}
            </option>
          ))}
        </select>
      </div>
      {error !== undefined && <p class="error">{error}</p>}
      <table class="events">
        <thead>
          <tr>
            <th>Time</th>
            <th>Node</th>
            <th>Event</th>
            <th>What</th>
          </tr>
        </thead>
        <tbody>
          {(data?.events ?? []).map((e) => (
            <tr key={e.id}>
              <td>{new Date(e.ts).toLocaleString()}</td>
              <td>
                {e.nodeId === null ? "–" : (names.get(e.nodeId) ?? String(e.data.name ?? e.nodeId))}
              </td>
              <td>{e.kind}</td>
              <td>{describe(e)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
