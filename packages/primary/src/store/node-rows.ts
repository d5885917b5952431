/** A node record as a row of the `nodes` table and back. */
import type { MessageMap } from "@picluster/common";
import type { NodeState } from "../events.js";
import type { NodeRecord } from "../registry.js";

export type Row = Record<string, unknown>;

export function nodeRow(n: NodeRecord, storedSeq = 0): Row {
  return {
    id: n.id,
    name: n.name,
    labels: JSON.stringify(n.labels),
    address: n.address,
    state: n.state,
    stateSince: n.stateSince,
    stateReason: n.stateReason,
    firstSeen: n.firstSeen,
    lastSeen: n.lastSeen,
    agentVersion: n.agentVersion,
    legacy: n.legacy ? 1 : 0,
    details: n.details === undefined ? null : JSON.stringify(n.details),
    vitals: n.vitals === undefined ? null : JSON.stringify(n.vitals),
    vitalsAt: n.vitalsAt ?? null,
    lastSeq: Math.max(n.lastSeq, storedSeq),
    dropped: n.dropped,
  };
}

export function nodeFromRow(r: Row): NodeRecord {
  const json = <T>(v: unknown): T | undefined =>
    typeof v === "string" ? (JSON.parse(v) as T) : undefined;
  const record: NodeRecord = {
    id: String(r.id),
    name: String(r.name),
    labels: json<Record<string, string>>(r.labels) ?? {},
    address: String(r.address),
    state: String(r.state) as NodeState,
    stateSince: Number(r.state_since),
    stateReason: String(r.state_reason),
    firstSeen: Number(r.first_seen),
    lastSeen: Number(r.last_seen),
    agentVersion: String(r.agent_version),
    legacy: Number(r.legacy) === 1,
    lastSeq: Number(r.last_seq),
    dropped: Number(r.dropped),
  };
  const details = json<MessageMap["details"]>(r.details);
  const vitals = json<MessageMap["vitals"]>(r.vitals);
  if (details !== undefined) record.details = details;
  if (vitals !== undefined) record.vitals = vitals;
  if (r.vitals_at !== null && r.vitals_at !== undefined) record.vitalsAt = Number(r.vitals_at);
  return record;
}
