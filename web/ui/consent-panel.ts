import { fill, h } from "./dom.js";

/**
 * The page's one primary action, "Start contributing", with the consent text beside it. Consent
 * comes before anything heavy happens: no weights download, no socket opens, until the contributor
 * has read what contributing means (including that they can see the prompts they serve) and pressed
 * the button. After a failed load the same button offers "Try again" (the model list below is
 * enabled again, so another model can be chosen): no reload needed.
 */
export interface ConsentPanel {
  button: HTMLButtonElement;
  /** Waiting for the contributor (first time, or "Try again" after a failure). */
  ready(afterFailure?: boolean): void;
  /** Contributing or loading: the button is spent. */
  started(): void;
}

export function renderConsent(region: HTMLElement, onConsent: () => void): ConsentPanel {
  // The hidden words keep the button findable by its older name ("Contribute this GPU").
  const button = h(
    "button",
    { id: "consent", type: "button", class: "primary" },
    "Start contributing",
    h("span", { class: "visually-hidden" }, " — contribute this GPU"),
  );
  button.addEventListener("click", () => {
    button.disabled = true;
    onConsent();
  });
  fill(
    region,
    h(
      "div",
      { class: "consent" },
      h("div", { class: "consent-action" }, button),
      h(
        "ul",
        { id: "consent-terms", class: "consent-terms" },
        h(
          "li",
          {},
          "This tab downloads the chosen model (it can be several GB) and uses your GPU to answer requests from the Tabgrid network.",
        ),
        h(
          "li",
          {},
          "You will see the prompts you serve and the answers your GPU writes: requests are not hidden from contributors.",
        ),
        h(
          "li",
          {},
          "Pause or close this tab at any time; set how much GPU time to give under “Your controls”.",
        ),
      ),
    ),
  );
  button.disabled = true;
  return {
    button,
    ready(afterFailure) {
      button.disabled = false;
      button.firstChild!.textContent = afterFailure ? "Try again" : "Start contributing";
    },
    started() {
      button.disabled = true;
    },
  };
}
