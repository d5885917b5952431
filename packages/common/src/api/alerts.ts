/** Alert states and channel tests as the primary's API answers with them. */
import type { AlertRuleDef } from "../config/alerts.js";

export interface AlertState {
  rule: string;
  nodeId: string;
  name: string;
  /** About a tutorial (legacy) node. */
  legacy: boolean;
  severity: AlertRuleDef["severity"];
  state: "pending" | "firing";
  since: number;
  firedAt: number | null;
  value: number;
  /** What the message said when it fired ("pi-3 is down"); empty while pending. */
  title: string;
}

export interface TestResult {
  ok: boolean;
  attempts: number;
  ms: number;
  error?: string;
}
