/**
 * The two numbers the trust test is made of, in plain arithmetic (no runtime needed):
 * the one-sided binomial tail P[X ≥ k] for X ~ Binomial(n, p), and the Clopper–Pearson upper bound
 * on a rate from k events in n trials. Computed in log space so tails of 1e-30 stay exact enough.
 */

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9); |error| < 1e-13 for x > 0.
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** P[X ≥ k] for X ~ Binomial(n, p). */
export function binomialUpperTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  // Terms from k upwards, each from the previous by the ratio (n-i)/(i+1)·p/q, in log space;
  // stop once past the mode and the terms no longer matter.
  let term = logChoose(n, k) + k * lp + (n - k) * lq;
  let max = term;
  let sum = 1; // in units of exp(max)
  for (let i = k; i < n; i++) {
    term += Math.log((n - i) / (i + 1)) + lp - lq;
    if (term > max) {
      sum = sum * Math.exp(max - term) + 1;
      max = term;
    } else {
      sum += Math.exp(term - max);
      if (i > n * p && term - max < -40) break;
    }
  }
  return Math.min(1, Math.exp(max + Math.log(sum)));
}

/**
 * Clopper–Pearson upper bound at confidence `conf` (one-sided) on a rate observed as k of n: the
 * largest p with P[X ≤ k | n, p] ≥ 1 − conf, found by bisection.
 */
export function clopperPearsonUpper(k: number, n: number, conf = 0.99): number {
  if (n <= 0) return 1;
  if (k >= n) return 1;
  const alpha = 1 - conf;
  const lowerTail = (p: number) => 1 - binomialUpperTail(k + 1, n, p);
  let lo = k / n;
  let hi = 1;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (lowerTail(mid) > alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}
