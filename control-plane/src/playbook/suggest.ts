/**
 * "Did you mean" for unknown keys: most unknown keys are typos of an allowed one.
 */

/** Optimal-string-alignment distance: Levenshtein plus adjacent transpositions (`imgae` → `image` is 1). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate within `maxDistance` edits (and closer than rewriting the whole word), if any. */
export function closest(word: string, candidates: readonly string[], maxDistance = 2): string | undefined {
  if (word.length > 64) return undefined;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const dist = editDistance(word.toLowerCase(), c);
    if (dist <= maxDistance && dist < word.length && dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}
