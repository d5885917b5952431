/**
 * Task runs as the primary stores them and its API answers with them: the
 * one definition the primary, the CLI and the dashboard share.
 */

export interface StoredNodeResult {
  nodeId: string;
  name: string;
  status: string;
  exitCode: number | null;
  signal: string | null;
  startedAt?: number;
  finishedAt?: number;
  output: string;
  truncated: boolean;
  error?: string;
}

export interface StoredTaskRun {
  id: number;
  task: string;
  selector: string;
  args: Record<string, string>;
  requestedBy: string;
  createdAt: number;
  finishedAt?: number;
  status: string;
  nodes: StoredNodeResult[];
  /** In lists, where `nodes` is left empty: how many nodes ended each way. */
  counts?: Record<string, number>;
}
