/**
 * Waits the pages read from their URL, so browser tests can shorten them (`?bench-ms=`,
 * `?idle-ms=`, `?backoff-ms=` on the contributor page, `?poll-ms=` on /status); each is kept
 * within sane bounds and has a production default.
 */
/** A duration from the page's URL (tests shorten waits with it), kept within sane bounds. */
function msParam(
  name: string,
  fallback: number,
  min: number,
  max: number,
  search = location.search,
): number {
  const asked = Number(new URLSearchParams(search).get(name));
  return Number.isFinite(asked) && asked > 0 ? Math.min(max, Math.max(min, asked)) : fallback;
}

/** Benchmark length: a few seconds; `?bench-ms=` shortens it. */
export const benchmarkMs = () => msParam("bench-ms", 3000, 300, 10_000);
/** How long without input before the contributor counts as away again; `?idle-ms=`. */
export const idleMs = () => msParam("idle-ms", 60_000, 500, 600_000);
/** How long to back off after a sustained speed drop; `?backoff-ms=`. */
export const backoffMs = () => msParam("backoff-ms", 60_000, 500, 600_000);
/**
 * How often /status polls the status API (three requests each time); `?poll-ms=` shortens it, but
 * not below half a second: a shared link with `poll-ms=1` must not turn viewers into a flood.
 */
export const statusPollMs = (search = location.search) =>
  msParam("poll-ms", 5000, 500, 600_000, search);
