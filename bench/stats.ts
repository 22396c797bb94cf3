/** Summary statistics of a sample of measurements (any unit). */

export interface Summary {
  n: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
}

/**
 * The q-quantile (0..1) of an ascending-sorted sample, linearly interpolated between the two
 * nearest ranks (numpy's default), so p95 of 20 samples is not simply the maximum.
 */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = n === 0 ? NaN : sorted.reduce((s, x) => s + x, 0) / n;
  return {
    n,
    min: n ? sorted[0]! : NaN,
    max: n ? sorted[n - 1]! : NaN,
    mean,
    p50: quantile(sorted, 0.5),
    p95: quantile(sorted, 0.95),
    p99: quantile(sorted, 0.99),
  };
}

/** Median of a few repeated timings: the usual way to quote a CPU-bound figure. */
export function median(samples: readonly number[]): number {
  return quantile([...samples].sort((a, b) => a - b), 0.5);
}

/** "p50 12.3  p95 20.1  p99 22.0  mean 13.0  (n=20, min 9.8, max 22.4)" */
export function formatSummary(s: Summary, digits = 1): string {
  const f = (x: number) => x.toFixed(digits);
  return `p50 ${f(s.p50)}  p95 ${f(s.p95)}  p99 ${f(s.p99)}  mean ${f(s.mean)}  (n=${s.n}, min ${f(s.min)}, max ${f(s.max)})`;
}
