/** `FROM..TO` (whole numbers, either may be negative) as a job's range of items, or undefined. */
export function readItemRange(
  text: string,
): { kind: "range"; from: number; to: number } | undefined {
  const m = /^\s*(-?\d{1,15})\s*\.\.\s*(-?\d{1,15})\s*$/.exec(text);
  return m === null ? undefined : { kind: "range", from: Number(m[1]), to: Number(m[2]) };
}
