/**
 * Nodes as every part names and picks them: the states a node is in, and
 * the selector language (`all`, states, `label=value`, names or ids, joined
 * by commas: a node is picked when any term matches it). The primary's
 * tasks and jobs, the alert config check, the API's `?on=`, the CLI and
 * the dashboard's preview all read a selector with this one parser.
 */
import { PiclusterError } from "./errors.js";

export const NODE_STATES = ["alive", "suspect", "down", "left"] as const;
export type NodeState = (typeof NODE_STATES)[number];

export function isNodeState(word: string): word is NodeState {
  return (NODE_STATES as readonly string[]).includes(word);
}

export type SelectorTerm =
  | { kind: "all" }
  | { kind: "state"; state: NodeState }
  | { kind: "label"; key: string; value: string }
  | { kind: "name"; name: string };

/** What a selector looks at: the API's node views and the primary's records both have it. */
export interface Selectable {
  id: string;
  name: string;
  state: NodeState;
  labels: Readonly<Record<string, string>>;
}

/** A selector that cannot be read; the message says what was wrong. */
export class SelectorError extends PiclusterError {
  constructor(message: string) {
    super("E_BAD_SELECTOR", message);
  }
}

export function parseSelector(text: string): SelectorTerm[] {
  const terms = text
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  if (terms.length === 0)
    throw new SelectorError("empty selector: give `all`, names, label=value or a state");
  return terms.map((t): SelectorTerm => {
    if (t === "all") return { kind: "all" };
    if (isNodeState(t)) return { kind: "state", state: t };
    const eq = t.indexOf("=");
    if (eq >= 0) {
      const key = t.slice(0, eq).trim();
      const value = t.slice(eq + 1).trim();
      if (key === "") throw new SelectorError(`"${t}": a label term is key=value`);
      return { kind: "label", key, value };
    }
    return { kind: "name", name: t };
  });
}

function matches(node: Selectable, term: SelectorTerm): boolean {
  switch (term.kind) {
    case "all":
      return true;
    case "state":
      return node.state === term.state;
    case "label":
      return node.labels[term.key] === term.value;
    case "name":
      return node.name === term.name || node.id === term.name;
  }
}

/** Whether `node` is picked by any of `terms`. */
export function nodeMatches(node: Selectable, terms: readonly SelectorTerm[]): boolean {
  return terms.some((t) => matches(node, t));
}

/** The nodes `terms` select, by name (numbers in order: pi-2 before pi-10); names that matched nothing too. */
export function selectNodes<T extends Selectable>(
  nodes: readonly T[],
  terms: readonly SelectorTerm[],
): { nodes: T[]; unknownNames: string[] } {
  const selected = nodes
    .filter((n) => nodeMatches(n, terms))
    .sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
  const unknownNames = terms
    .filter((t): t is Extract<SelectorTerm, { kind: "name" }> => t.kind === "name")
    .filter((t) => !nodes.some((n) => matches(n, t)))
    .map((t) => t.name);
  return { nodes: selected, unknownNames };
}
