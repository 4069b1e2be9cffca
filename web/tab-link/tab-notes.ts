import { fill, h } from "../ui/dom.js";

/**
 * What the browser allows a contributor tab, in plain words, and the "one engine per browser"
 * notices (web/runtime/engine-lock.ts). Rendered into its own region, placed after the consent
 * panel, so the page's other regions stay as they are.
 */
export const BROWSER_ALLOWS =
  "Keep this tab open: it keeps serving while you use other tabs or windows. It pauses while " +
  "the computer sleeps, and the browser may freeze or unload a background tab to save power " +
  "or memory — it then reconnects by itself, under the same identity, when the browser wakes it " +
  "or you come back to it. One tab per browser contributes at a time.";

export interface TabNotes {
  /** Another tab of this browser serves now; with `takeOver`, offer to serve from here instead. */
  otherTab(words: string, takeOver?: { label: string; onClick: () => void }): void;
  /** A plain note (e.g. the tab was unloaded and came back). */
  note(words: string): void;
  clear(): void;
}

export function renderTabNotes(doc: Document = document): TabNotes {
  const region =
    doc.getElementById("tab-notes") ??
    h("section", { id: "tab-notes", "aria-label": "This tab and your browser" });
  if (!region.isConnected) {
    const after = doc.getElementById("consent-panel");
    if (after) after.after(region);
    else (doc.querySelector("main") ?? doc.body).append(region);
  }
  const notice = h("div", { id: "one-engine", role: "status", "aria-live": "polite" });
  fill(region, h("p", { id: "browser-allows", class: "note" }, BROWSER_ALLOWS), notice);
  return {
    otherTab(words, takeOver) {
      const button = takeOver
        ? h("button", { id: "take-over", type: "button" }, takeOver.label)
        : null;
      button?.addEventListener("click", () => {
        button.disabled = true;
        takeOver?.onClick();
      });
      fill(notice, h("p", { id: "other-tab", class: "problem" }, words), button);
    },
    note(words) {
      fill(notice, h("p", { class: "note" }, words));
    },
    clear() {
      fill(notice);
    },
  };
}
