/**
 * A small typed store for page state: read `state`, change it with `update(patch)` (a typed partial
 * of the state), and `subscribe` to hear about changes. No framework: listeners re-render what
 * they own. Listeners run after every update that changed a field (compared with Object.is), in
 * the order they subscribed, with the set of fields that changed.
 */
export interface Store<S extends object> {
  readonly state: Readonly<S>;
  update(patch: Partial<S>): void;
  /** Returns a function that unsubscribes. */
  subscribe(listener: Listener<S>): () => void;
}

export type Listener<S extends object> = (
  state: Readonly<S>,
  changed: ReadonlySet<keyof S>,
) => void;

export function createStore<S extends object>(initial: S): Store<S> {
  let state: Readonly<S> = { ...initial };
  const listeners = new Set<Listener<S>>();
  return {
    get state() {
      return state;
    },
    update(patch) {
      const changed = new Set<keyof S>();
      for (const key of Object.keys(patch) as (keyof S)[]) {
        if (!Object.is(patch[key], state[key])) changed.add(key);
      }
      if (changed.size === 0) return;
      state = { ...state, ...patch };
      for (const listener of [...listeners]) listener(state, changed);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
