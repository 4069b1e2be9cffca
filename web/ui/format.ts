/**
 * Measured rates in words a person can read: three significant figures at most, and a smaller unit
 * instead of "0.0" (SwiftShader computes ~0.03 GFLOP/s, which is 30 MFLOP/s, not zero).
 */
const PREFIXES = ["T", "G", "M", "k", ""] as const;

function figures(v: number): string {
  if (v >= 100) return Math.round(v).toString();
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** `value` in units of `prefix`+`unit` (e.g. 0.031, "G", "FLOP/s" → "31.0 MFLOP/s"). */
export function formatRate(value: number, prefix: "G", unit: string): string {
  if (!Number.isFinite(value) || value <= 0) return `0 ${prefix}${unit}`;
  let i = PREFIXES.indexOf(prefix);
  let v = value;
  while (v < 1 && i < PREFIXES.length - 1) {
    v *= 1000;
    i++;
  }
  return `${figures(v)} ${PREFIXES[i]}${unit}`;
}
