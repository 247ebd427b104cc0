/** Order statistics for benchmark samples (milliseconds). */
export function quantile(samples: readonly number[], q: number): number {
  const s = [...samples].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))));
  return s[i]!;
}

export const median = (s: readonly number[]) => quantile(s, 0.5);

export const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
