/**
 * Consent for an embedded tab is given here, in the coordinator's own frame: a click in this
 * document, which the host page can neither forge (it cannot script a cross-origin frame or
 * dispatch trusted events into it) nor read. The host page's `start` message only asks.
 *
 * - Whose consent: the host origin, from `#parent=` checked against `location.ancestorOrigins`
 *   where the browser has it (a page cannot name someone else's origin), and against each
 *   message's `event.origin`.
 * - Remembered per host origin in the frame's own localStorage (partitioned by the top-level site
 *   in Chrome, so one site's consent is invisible to another); where the browser refuses the
 *   frame storage, consent holds for this page view only and the next visit asks again.
 * - Clickjacking: where the browser supports IntersectionObserver v2 (`trackVisibility`), a click
 *   counts only while the frame is really visible (not transparent, transformed or covered).
 * - The coordinator's own pages (parent origin = this origin) need no second consent: a same-origin
 *   page can script this frame anyway, and the full contributor page asks on its own.
 */
const KEY_PREFIX = "tabgrid.frame.consent:";

/** The host origin this frame serves, or null if it cannot be trusted to be who it names. */
export function hostOrigin(loc: Location = location): string | null {
  const named = new URLSearchParams(loc.hash.slice(1)).get("parent");
  if (!named) return null;
  const ancestors = loc.ancestorOrigins;
  if (ancestors && ancestors.length > 0 && ancestors[0] !== named) return null;
  return named;
}

export interface ConsentStore {
  given(origin: string): boolean;
  remember(origin: string): void;
  forget(origin: string): void;
}

/** localStorage where allowed; otherwise this page view only. */
export function consentStore(storage: () => Storage = () => localStorage): ConsentStore {
  const memory = new Set<string>();
  const tryStorage = <T>(f: (s: Storage) => T, fallback: T): T => {
    try {
      return f(storage());
    } catch {
      return fallback;
    }
  };
  return {
    given: (origin) =>
      memory.has(origin) || tryStorage((s) => s.getItem(KEY_PREFIX + origin) === "yes", false),
    remember(origin) {
      memory.add(origin);
      tryStorage((s) => s.setItem(KEY_PREFIX + origin, "yes"), undefined);
    },
    forget(origin) {
      memory.delete(origin);
      tryStorage((s) => s.removeItem(KEY_PREFIX + origin), undefined);
    },
  };
}

/**
 * Show the question in this frame and resolve true on "Start contributing" (a trusted click while
 * the frame is visible) or false on "No thanks".
 */
export function askInFrame(root: HTMLElement, host: string): Promise<boolean> {
  // "Start contributing" shows as disabled (aria-disabled, so a click still reaches the handler and
  // can say why it did not count) until the frame has been seen visible: before the first
  // visibility report a click cannot count, and a greyed-out button says so instead of an error
  // after a quick click.
  const visible = trackVisibility(root, (seen) => setEnabled(start, seen));
  const site = (() => {
    try {
      return new URL(host).host;
    } catch {
      return host;
    }
  })();
  const para = (text: string, cls?: string) => {
    const p = document.createElement("p");
    p.textContent = text;
    if (cls) p.className = cls;
    return p;
  };
  const button = (label: string, primary: boolean) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (primary) b.className = "primary";
    return b;
  };
  const start = button("Start contributing", true);
  setEnabled(start, visible.now());
  const no = button("No thanks", false);
  const problem = para("", "problem");
  problem.setAttribute("role", "alert");
  const actions = document.createElement("p");
  actions.append(start, " ", no);
  root.replaceChildren(
    para(`Tabgrid on ${site}: lend this tab's GPU while the page is open?`, "lead"),
    para(
      "Your browser downloads a small AI model and runs other people's prompts on your GPU. You (the contributor) can see the prompts you serve. Stop at any time.",
    ),
    actions,
    problem,
  );
  root.hidden = false;
  return new Promise((resolve) => {
    const done = (answer: boolean) => {
      visible.stop();
      root.hidden = true;
      root.replaceChildren();
      resolve(answer);
    };
    start.addEventListener("click", (event) => {
      if (!event.isTrusted) return;
      if (!visible.now()) {
        problem.textContent =
          "This question is hidden or covered on the page, so Tabgrid cannot count the click. Nothing started.";
        return;
      }
      done(true);
    });
    no.addEventListener("click", (event) => {
      if (event.isTrusted) done(false);
    });
  });
}

function setEnabled(button: HTMLButtonElement, enabled: boolean): void {
  if (enabled) button.removeAttribute("aria-disabled");
  else button.setAttribute("aria-disabled", "true");
}

/**
 * IntersectionObserver v2 where supported; elsewhere the frame counts as visible. `onChange` hears
 * each visibility report.
 */
function trackVisibility(
  target: Element,
  onChange: (visible: boolean) => void,
): { now(): boolean; stop(): void } {
  type V2Entry = IntersectionObserverEntry & { isVisible?: boolean };
  const supported =
    typeof IntersectionObserverEntry !== "undefined" &&
    "isVisible" in IntersectionObserverEntry.prototype;
  let visible: boolean | null = null;
  let observer: IntersectionObserver | null = null;
  try {
    observer = new IntersectionObserver(
      (entries) => {
        const last = entries.at(-1) as V2Entry | undefined;
        if (last && typeof last.isVisible === "boolean") {
          visible = last.isVisible;
          onChange(visible);
        }
      },
      { trackVisibility: true, delay: 100 } as IntersectionObserverInit,
    );
    observer.observe(target);
  } catch {
    observer = null;
  }
  return {
    // Without v2 support the frame cannot tell; with it, a click counts only once it was seen.
    now: () => (supported && observer ? visible === true : true),
    stop: () => observer?.disconnect(),
  };
}
