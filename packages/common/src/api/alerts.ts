/** Alert states and channel tests as the primary's API answers with them. */
import Type, { type Static } from "typebox";

export const AlertStateSchema = Type.Object({
  rule: Type.String(),
  nodeId: Type.String(),
  name: Type.String(),
  /** About a tutorial (legacy) node. */
  legacy: Type.Boolean(),
  severity: Type.Union([Type.Literal("critical"), Type.Literal("warning"), Type.Literal("info")]),
  state: Type.Union([Type.Literal("pending"), Type.Literal("firing")]),
  since: Type.Number(),
  firedAt: Type.Union([Type.Number(), Type.Null()]),
  value: Type.Number(),
  /** What the message said when it fired ("pi-3 is down"); empty while pending. */
  title: Type.String(),
});
export type AlertState = Static<typeof AlertStateSchema>;

export const TestResultSchema = Type.Object({
  ok: Type.Boolean(),
  attempts: Type.Integer(),
  ms: Type.Number(),
  error: Type.Optional(Type.String()),
});
export type TestResult = Static<typeof TestResultSchema>;
