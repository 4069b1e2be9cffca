/**
 * What the contributor does when the browser freezes or resumes the page (Page Lifecycle API).
 *
 * - `freeze` (a background tab the browser stops to save power, or a page entering the
 *   back/forward cache): the tab drops its job and closes its socket, so the coordinator moves the
 *   job to another tab at once. If the browser freezes the tab-link Worker before it can close the
 *   socket, the socket goes silent and the coordinator's liveness sweep and job lease do the same
 *   within two status intervals (docs/failure-handling.md) — the tab never holds a job forever.
 * - `resume`: connect again; the coordinator's challenge is signed with the same stored key
 *   (tab-identity.ts), so the tab comes back under the same id.
 * - Discard (the browser drops the page to free memory) runs no script at all: when the contributor
 *   returns, the page reloads with `document.wasDiscarded` and web/main.ts resumes contributing
 *   (consent was given in this tab's session; the identity comes from IndexedDB).
 */
export interface Suspendable {
  suspend(reason: string): void;
  reconnect(): void;
}

export function followLifecycle(target: EventTarget, contributor: Suspendable): () => void {
  const frozen = () => contributor.suspend("page frozen by the browser");
  const resumed = () => contributor.reconnect();
  target.addEventListener("freeze", frozen);
  target.addEventListener("resume", resumed);
  return () => {
    target.removeEventListener("freeze", frozen);
    target.removeEventListener("resume", resumed);
  };
}
