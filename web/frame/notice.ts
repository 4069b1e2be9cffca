import { siteName } from "./consent.js";

/**
 * What the frame shows of its own while the tab contributes on another site: whose tab, for
 * which site, at what share, what it is doing, and a Stop. The host page's widget has its own
 * Stop, but it is the host's DOM; this one is the coordinator's, so a host that leaves the widget
 * out (or frames /frame/ itself) still cannot run the GPU with nothing the visitor can see or stop.
 * Where the browser can tell (IntersectionObserver v2), the tab takes no job while this notice is
 * not in front of the visitor (frame-main.ts).
 */
export interface Notice {
  update(text: string): void;
  close(): void;
}

export function showNotice(
  root: HTMLElement,
  host: string,
  share: number,
  onStop: () => void,
): Notice {
  const lead = document.createElement("p");
  lead.className = "lead";
  lead.textContent = `Tabgrid is using this tab's GPU for ${siteName(host)} (up to ${share} % of the time). You can see the prompts you serve.`;
  const line = document.createElement("span");
  line.setAttribute("role", "status");
  const stop = document.createElement("button");
  stop.type = "button";
  stop.textContent = "Stop";
  stop.addEventListener("click", (event) => {
    if (event.isTrusted) onStop();
  });
  const row = document.createElement("p");
  row.append(stop, " ", line);
  root.replaceChildren(lead, row);
  root.hidden = false;
  return {
    update(text) {
      line.textContent = text;
    },
    close() {
      root.hidden = true;
      root.replaceChildren();
    },
  };
}
