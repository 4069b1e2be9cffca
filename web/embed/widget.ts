import type { EmbedConfig } from "./config.js";

/**
 * The consent widget, in a Shadow DOM so host styles don't reach it and its styles don't
 * leak out. Everything is inline: showing it makes no network request. It says plainly what
 * contributing means, including that contributors see the prompts they serve. Its "Contribute"
 * only opens the coordinator's frame: the consent itself is a click in that frame (see
 * web/frame/consent.ts), which this page cannot forge.
 */
export interface Widget {
  /** Show the offer (first visit, or after withdrawal via "Contribute again"). */
  ask(): void;
  /** The frame asks for consent in its own document, shown in the widget's frame slot. */
  confirming(): void;
  /** Where the contributor frame goes (kept across views, so the frame is never reloaded). */
  readonly frameSlot: HTMLElement;
  /** Loading failed: say why and offer to try again. */
  failed(text: string, retry: () => void): void;
  /** Show the running state with a one-click Stop. */
  running(text: string): void;
  /** Collapsed: the visitor said no. */
  declined(): void;
}

const CSS = `:host{all:initial}
.w{position:fixed;bottom:16px;z-index:2147483647;max-width:320px;font:13px/1.4 system-ui,sans-serif;
border-radius:10px;padding:12px 14px;box-shadow:0 4px 18px #0003;background:var(--bg);color:var(--fg)}
.r{right:16px}.l{left:16px}
.light{--bg:#fff;--fg:#1b1f24;--mu:#57606a;--ac:#0b63ce}
.dark{--bg:#1f2328;--fg:#e6edf3;--mu:#9aa4ae;--ac:#4c9aff}
@media (prefers-color-scheme:dark){.auto{--bg:#1f2328;--fg:#e6edf3;--mu:#9aa4ae;--ac:#4c9aff}}
@media (prefers-color-scheme:light){.auto{--bg:#fff;--fg:#1b1f24;--mu:#57606a;--ac:#0b63ce}}
p{margin:0 0 8px}small{color:var(--mu)}a{color:var(--ac)}
button{font:inherit;border-radius:6px;padding:5px 10px;margin-right:6px;cursor:pointer;
border:1px solid var(--ac);background:transparent;color:var(--fg)}
button.p{background:var(--ac);color:#fff}`;

export function createWidget(
  config: EmbedConfig,
  actions: { consent(): void; decline(): void; withdraw(): void },
): Widget {
  const host = document.createElement("div");
  host.setAttribute("data-tabgrid-widget", "");
  const root = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = CSS;
  const box = document.createElement("div");
  box.className = `w ${config.position === "bottom-left" ? "l" : "r"} ${config.theme}`;
  box.setAttribute("role", "region");
  box.setAttribute("aria-label", "Tabgrid");
  const content = document.createElement("div");
  const frameSlot = document.createElement("div");
  box.append(content, frameSlot);
  root.append(style, box);
  document.body.append(host);

  const button = (label: string, primary: boolean, onClick: () => void) => {
    const b = document.createElement("button");
    b.textContent = label;
    b.dataset.action = label;
    if (primary) b.className = "p";
    b.addEventListener("click", onClick);
    return b;
  };
  const para = (text: string) => {
    const p = document.createElement("p");
    p.textContent = text;
    return p;
  };
  const more = () => {
    const small = document.createElement("small");
    const a = document.createElement("a");
    a.href = `${config.origin}/`;
    a.target = "_blank";
    a.rel = "noopener";
    a.textContent = "full contributor page";
    small.append("Larger models: the ", a, ".");
    return small;
  };

  // The current view is also on the host element, for the page and for tests.
  const show = (state: string, ...nodes: Node[]) => {
    host.dataset.state = state;
    content.replaceChildren(...nodes);
  };
  return {
    frameSlot,
    confirming() {
      show("confirming", para("Please confirm below (this part comes from Tabgrid itself):"));
    },
    failed(text, retry) {
      show(
        "failed",
        para(text),
        button("Try again", true, retry),
        button("Stop", false, actions.withdraw),
        more(),
      );
    },
    ask() {
      show(
        "asking",
        para(
          "Lend this tab's GPU to Tabgrid, an open network that answers AI requests, while this page is open.",
        ),
        para(
          "Your browser downloads a small AI model and runs other people's prompts on your GPU. You (the contributor) can see the prompts you serve. Nothing starts unless you agree; you can stop at any time.",
        ),
        button("Contribute", true, actions.consent),
        button("No thanks", false, actions.decline),
        more(),
      );
    },
    running(text) {
      show("running", para(text), button("Stop", false, actions.withdraw), more());
    },
    declined() {
      show(
        "declined",
        button("Tabgrid: contribute GPU?", false, () => this.ask()),
      );
    },
  };
}
