/** A tiny inline SVG line: cheap enough for a thousand tiles. */
export function Sparkline({ values, max = 100 }: { values: number[]; max?: number }) {
  if (values.length < 2) return <svg class="spark" viewBox="0 0 60 16" aria-hidden="true" />;
  const step = 60 / (values.length - 1);
  const points = values
    .map((v, i) => `${(i * step).toFixed(1)},${(16 - (Math.min(v, max) / max) * 15).toFixed(1)}`)
    .join(" ");
  return (
    <svg class="spark" viewBox="0 0 60 16" preserveAspectRatio="none" aria-hidden="true">
      <polyline points={points} />
    </svg>
  );
}
