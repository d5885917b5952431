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

const Severity = Type.Union([
  Type.Literal("critical"),
  Type.Literal("warning"),
  Type.Literal("info"),
]);

/** A rule as `GET /api/alerts` shows it. */
export const AlertRuleViewSchema = Type.Object({
  name: Type.String(),
  /** `metric op threshold`, e.g. `temp > 80`. */
  when: Type.String(),
  forMs: Type.Number(),
  on: Type.String(),
  channels: Type.Array(Type.String()),
  severity: Severity,
  repeatMs: Type.Number(),
  enabled: Type.Boolean(),
  stock: Type.Boolean(),
  /** The rule as one line: `temp > 80 for 2m on all`. */
  summary: Type.String(),
  /** Nodes it fires for now. */
  firing: Type.Integer({ minimum: 0 }),
});
export type AlertRuleView = Static<typeof AlertRuleViewSchema>;

/** `GET /api/alerts`: the rules in force, what pends and fires, the channels. */
export const AlertsAnswerSchema = Type.Object({
  enabled: Type.Boolean(),
  rules: Type.Array(AlertRuleViewSchema),
  states: Type.Array(AlertStateSchema),
  channels: Type.Array(Type.Object({ name: Type.String(), type: Type.String() })),
});
export type AlertsAnswer = Static<typeof AlertsAnswerSchema>;

/** `POST /api/alerts/test`: whether a test message went through one channel. */
export const ChannelTestSchema = Type.Object({
  channel: Type.String(),
  ...TestResultSchema.properties,
});
export type ChannelTest = Static<typeof ChannelTestSchema>;
