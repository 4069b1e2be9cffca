import { MAX_DISPLAY_NAME } from "../../shared/credits/credit-proofs.js";
import { chooseName, linkToKey, type StatementSigner } from "../ledger/credit-link.js";
import { fill, h } from "../ui/dom.js";

/**
 * "Use your credit": link this tab's identity to an API key (its credit then buys that key's
 * requests a place ahead in the queue) and, if the contributor wants, a name on the public list
 * of top contributors. Both are signed with the tab's identity key in this browser.
 */
export function renderCreditLink(region: HTMLElement, sign: StatementSigner): void {
  const said = h("p", {
    "data-field": "credit-link-status",
    role: "status",
    "aria-live": "polite",
  });
  const keyInput = h("input", {
    id: "credit-api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "tg_…",
  });
  const nameInput = h("input", {
    id: "credit-name",
    type: "text",
    maxlength: String(MAX_DISPLAY_NAME),
    placeholder: "optional",
  });
  const linkButton = h("button", { type: "button", id: "credit-link" }, "Link this tab to my key");
  const nameButton = h("button", { type: "button", id: "credit-name-show" }, "Show this name");
  const hideButton = h("button", { type: "button", id: "credit-name-hide" }, "Hide my name");
  const run = async (button: HTMLButtonElement, act: () => ReturnType<typeof linkToKey>) => {
    button.disabled = true;
    said.textContent = "Signing with this tab's identity…";
    const answer = await act();
    button.disabled = false;
    said.textContent = answer.ok ? "Done." : answer.message;
  };
  linkButton.addEventListener("click", () => {
    void run(linkButton, async () => {
      const answer = await linkToKey(keyInput.value, sign);
      if (answer.ok) keyInput.value = "";
      return answer;
    });
  });
  nameButton.addEventListener("click", () => {
    void run(nameButton, () => chooseName(nameInput.value, sign));
  });
  hideButton.addEventListener("click", () => {
    void run(hideButton, () => chooseName(null, sign));
  });
  fill(
    region,
    h("h2", {}, "Use your credit"),
    h(
      "p",
      { class: "hint" },
      "Link this tab to your API key: the credit it earns then moves your key's requests ahead " +
        "in the queue when the network is busy. The key is sent only to this coordinator.",
    ),
    h("p", {}, h("label", { for: "credit-api-key" }, "API key "), keyInput, " ", linkButton),
    h(
      "p",
      {},
      h("label", { for: "credit-name" }, "Name on the public list "),
      nameInput,
      " ",
      nameButton,
      " ",
      hideButton,
    ),
    said,
  );
}
