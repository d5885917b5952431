/**
 * `GET /api/checks` and the public status page's data: every check of every
 * node (`[check.NAME]` sections), as its node last said.
 */
import Type, { type Static } from "typebox";

const Nullable = <T extends ReturnType<typeof Type.Number>>(t: T) => Type.Union([t, Type.Null()]);

export const CheckViewSchema = Type.Object({
  nodeId: Type.String(),
  node: Type.String(),
  check: Type.String(),
  kind: Type.String(),
  target: Type.String(),
  /** `unknown` while its node is not connected: its last word is `reason`. */
  state: Type.Union([Type.Literal("up"), Type.Literal("down"), Type.Literal("unknown")]),
  up: Type.Boolean(),
  reason: Type.String(),
  /** When the check's current state (up or down) began, Unix ms. */
  since: Type.Number(),
  /** When the node last ran it. */
  at: Type.Number(),
  latencyMs: Nullable(Type.Number()),
  certExpiresAt: Nullable(Type.Number()),
});
export type CheckView = Static<typeof CheckViewSchema>;

export const CheckListSchema = Type.Object({ checks: Type.Array(CheckViewSchema) });
export type CheckList = Static<typeof CheckListSchema>;

/** `/status.json`: what the public status page shows, no more. */
export const StatusPageSchema = Type.Object({
  checks: Type.Array(
    Type.Object({
      node: Type.String(),
      check: Type.String(),
      state: Type.Union([Type.Literal("up"), Type.Literal("down"), Type.Literal("unknown")]),
      since: Type.Number(),
    }),
  ),
  at: Type.Number(),
});
export type StatusPage = Static<typeof StatusPageSchema>;
