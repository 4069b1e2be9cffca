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
      h(
        "li",
        {},
        "Close this tab or press Pause at any time to stop; set how much of your GPU's time to give, and whether to pause on battery, under “Your controls”.",
      ),
    ),
    button,
  );
  return button;
}
