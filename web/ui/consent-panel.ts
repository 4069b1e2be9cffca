import { fill, h } from "./dom.js";

/**
 * Consent comes before anything heavy happens: no weights download, no socket opens, until the
 * contributor has read what contributing means (including that they can see the prompts they serve)
 * and pressed the button.
 */
export function renderConsent(region: HTMLElement, onConsent: () => void): HTMLButtonElement {
  const button = h("button", { id: "consent", type: "button" }, "Contribute this GPU");
  button.addEventListener("click", () => {
    button.disabled = true;
    onConsent();
  });
  fill(
    region,
    h("h2", {}, "Contribute"),
    h(
      "ul",
      { id: "consent-terms" },
      h(
        "li",
        {},
        "This tab will download the chosen model (it can be several GB) and use your GPU to answer requests from the Tabgrid network.",
      ),
      h(
        "li",
        {},
        "You will see the prompts you serve and the answers your GPU writes: requests are not hidden from contributors. Don't contribute if you don't want to see other people's text.",
      ),
      h("li", {}, "Close this tab or press Pause at any time to stop."),
    ),
    button,
  );
  return button;
}

/** Pause / resume, shown once contributing has started. */
export function renderPauseToggle(region: HTMLElement, onToggle: (paused: boolean) => void): void {
  let paused = false;
  const button = h("button", { id: "pause", type: "button", "aria-pressed": "false" }, "Pause");
  button.addEventListener("click", () => {
    paused = !paused;
    button.textContent = paused ? "Resume" : "Pause";
    button.setAttribute("aria-pressed", String(paused));
    onToggle(paused);
  });
  region.append(button);
}
