/**
 * Which nodes a task (or a ping) goes to. A selector is terms joined with
 * commas, and a node is selected when any term matches it:
 *   all              every node
 *   alive, suspect, down, left   nodes in that state
 *   key=value        nodes with that label
 *   anything else    a node name or node id
 */
import type { NodeState } from "../events.js";
import type { NodeRecord } from "../registry.js";

const STATES: readonly NodeState[] = ["alive", "suspect", "down", "left"];

export type SelectorTerm =
  | { kind: "all" }
  | { kind: "state"; state: NodeState }
  | { kind: "label"; key: string; value: string }
  | { kind: "name"; name: string };

export class SelectorError extends Error {}

export function parseSelector(text: string): SelectorTerm[] {
  const terms = text
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
  if (terms.length === 0)
    throw new SelectorError("empty selector: give `all`, names, label=value or a state");
  return terms.map((t): SelectorTerm => {
    if (t === "all") return { kind: "all" };
    if ((STATES as readonly string[]).includes(t)) return { kind: "state", state: t as NodeState };
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

function matches(node: NodeRecord, term: SelectorTerm): boolean {
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

/** The nodes `terms` select, by name; names that matched nothing are returned too. */
/** Whether `node` is picked by any of `terms`. */
export function nodeMatches(node: NodeRecord, terms: readonly SelectorTerm[]): boolean {
  return terms.some((t) => matches(node, t));
}

export function selectNodes(
  nodes: readonly NodeRecord[],
  terms: readonly SelectorTerm[],
): { nodes: NodeRecord[]; unknownNames: string[] } {
  const selected = nodes
    .filter((n) => terms.some((t) => matches(n, t)))
    .sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
  const unknownNames = terms
    .filter((t): t is Extract<SelectorTerm, { kind: "name" }> => t.kind === "name")
    .filter((t) => !nodes.some((n) => matches(n, t)))
    .map((t) => t.name);
  return { nodes: selected, unknownNames };
}
