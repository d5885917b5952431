/**
 * Task runs as the primary stores them and its API answers with them: the
 * one definition the primary, the CLI and the dashboard share. TypeBox
 * schemas (the routes' response schemas) and the types inferred from them.
 */
import Type, { type Static } from "typebox";

export const StoredNodeResultSchema = Type.Object({
  nodeId: Type.String(),
  name: Type.String(),
  status: Type.String(),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Type.String(), Type.Null()]),
  startedAt: Type.Optional(Type.Number()),
  finishedAt: Type.Optional(Type.Number()),
  output: Type.String(),
  truncated: Type.Boolean(),
  error: Type.Optional(Type.String()),
});
export type StoredNodeResult = Static<typeof StoredNodeResultSchema>;

export const StoredTaskRunSchema = Type.Object({
  id: Type.Integer(),
  task: Type.String(),
  selector: Type.String(),
  args: Type.Record(Type.String(), Type.String()),
  requestedBy: Type.String(),
  createdAt: Type.Number(),
  finishedAt: Type.Optional(Type.Number()),
  status: Type.String(),
  nodes: Type.Array(StoredNodeResultSchema),
  /** In lists, where `nodes` is left empty: how many nodes ended each way. */
  counts: Type.Optional(Type.Record(Type.String(), Type.Integer())),
  /** Without the token: arguments, output and errors are left out. */
  redacted: Type.Optional(Type.Boolean()),
});
export type StoredTaskRun = Static<typeof StoredTaskRunSchema>;

export const TaskRunListSchema = Type.Object({ runs: Type.Array(StoredTaskRunSchema) });
