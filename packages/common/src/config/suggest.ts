/**
 * "Did you mean …?" for a mistyped name in the configuration.
 *
 * The edit distance is written here rather than taken from
 * fastest-levenshtein: that library allocates a 256 KiB table when it loads,
 * in every process that reads a config (the agent's RSS budget, issue 18),
 * and the names compared here are a few dozen characters, so a plain
 * two-row Levenshtein costs nothing measurable.
 */

/** Levenshtein distance (insertions, deletions, substitutions, each 1). */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      cur[j] = Math.min(
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
        (prev[j - 1] as number) + cost,
      );
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length] as number;
}

/**
 * ` (did you mean X?)` when a candidate is close enough to be a typo of
 * `name` (the first of the closest), else "". `show` writes the candidate
 * as the user would (a bracketed section, a flag).
 */
export function suggestion(
  name: string,
  candidates: Iterable<string>,
  show: (c: string) => string = (c) => c,
): string {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3))
    ? ` (did you mean ${show(best)}?)`
    : "";
}
