/**
 * One engine per browser: contributor tabs of the same site share one GPU, and two models loaded
 * side by side would only compete for its memory and time. The tab that serves holds the Web Lock
 * `tabgrid-engine`; another tab asks for it with `ifAvailable` and, when the contributor chooses to
 * take over there, with `steal` — the first tab's lock is then taken from it and it stops serving.
 * Locks are per storage partition, so an embedded frame on another site does not compete with the
 * full page (each is its own contributor, as its browser sees it).
 */
export const ENGINE_LOCK = "tabgrid-engine";

export interface EngineClaim {
  /** Resolves when another tab took the engine over (steal); this tab must stop serving. */
  readonly lost: Promise<void>;
  release(): void;
}

/** The parts of `navigator.locks` used here (absent in old browsers: every tab may serve). */
export interface LockManagerLike {
  request(
    name: string,
    options: { ifAvailable?: boolean; steal?: boolean },
    callback: (lock: unknown) => Promise<unknown>,
  ): Promise<unknown>;
  query(): Promise<{ held?: { name?: string }[] }>;
}

function browserLocks(): LockManagerLike | null {
  return (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks ?? null;
}

/** Is another tab of this browser serving now? */
export async function engineHeldElsewhere(locks = browserLocks()): Promise<boolean> {
  if (!locks) return false;
  const state = await locks.query().catch(() => ({ held: [] }));
  return (state.held ?? []).some((l) => l.name === ENGINE_LOCK);
}

/**
 * Claim the engine for this tab: null when another tab holds it (and `steal` is false). Without
 * Web Locks the claim is always granted and never lost.
 */
export function claimEngine(steal: boolean, locks = browserLocks()): Promise<EngineClaim | null> {
  if (!locks) return Promise.resolve({ lost: new Promise<void>(() => {}), release: () => {} });
  return new Promise((resolve, reject) => {
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    let lose = () => {};
    const lost = new Promise<void>((r) => (lose = r));
    let granted = false;
    locks
      .request(ENGINE_LOCK, steal ? { steal: true } : { ifAvailable: true }, async (lock) => {
        if (!lock) return resolve(null);
        granted = true;
        resolve({ lost, release });
        await held;
      })
      .catch((err: unknown) => {
        // A stolen lock rejects its request with AbortError.
        if (granted) lose();
        else reject(err instanceof Error ? err : new Error(String(err)));
      });
  });
}
