import type { LoadProgress } from "../engine/inference-engine.js";
import type { ContributorView } from "../runtime/tab-status.js";
import { fill, h } from "./dom.js";
import { trustWords } from "./trust-words.js";

/**
 * Load progress and live status. Fields carry `data-field` attributes so the page can be read by
 * assistive tools and by the browser test alike; the connection state is also on the region as
 * `data-connection`.
 */
export function renderProgress(region: HTMLElement, p: LoadProgress): void {
  const pct = Math.round(Math.max(0, Math.min(1, p.progress)) * 100);
  fill(
    region,
    h("label", { for: "load-progress" }, "Loading model"),
    h("progress", { id: "load-progress", max: 100, value: pct }, `${pct}%`),
    h("p", { class: "progress-text", "aria-live": "polite" }, p.text),
  );
}

const connectionText: Record<ContributorView["connection"], string> = {
  "not started": "not connected",
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "disconnected — reconnecting…",
  stopped: "disconnected",
  fatal: "disconnected — please reload the page",
};

export function renderStatus(region: HTMLElement, v: ContributorView, now = Date.now()): void {
  region.dataset.connection = v.connection;
  region.dataset.state = v.state;
  const trust = trustWords(v.trust, now);
  if (v.trust) region.dataset.trust = v.trust.state;
  else delete region.dataset.trust;
  const row = (label: string, value: string, key: string) =>
    h("div", { class: "row" }, h("dt", {}, label), h("dd", { "data-field": key }, value));
  fill(
    region,
    h("h2", {}, "Status"),
    h(
      "dl",
      { "aria-live": "polite", "aria-label": "Contributor status" },
      row(
        "Connection",
        connectionText[v.connection] +
          (v.connectionDetail && v.connection !== "connected" ? ` (${v.connectionDetail})` : ""),
        "connection",
      ),
      row("State", v.state, "state"),
      row("Model", v.model ?? "none", "model"),
      row("Jobs served", String(v.jobsServed), "jobs-served"),
      row(
        "Tokens/s (last job)",
        v.lastTokensPerSecond === null ? "—" : v.lastTokensPerSecond.toFixed(1),
        "tokens-per-second",
      ),
      trust ? row("Trust", trust.label, "trust") : null,
    ),
    trust
      ? h(
          "p",
          {
            "data-field": "trust-words",
            ...(v.trust?.state === "quarantined" ? { class: "problem", role: "alert" } : {}),
          },
          trust.summary,
        )
      : null,
    trust?.detail ? h("p", { class: "hint", "data-field": "trust-reason" }, trust.detail) : null,
    v.error ? h("p", { class: "problem", role: "alert" }, v.error) : null,
  );
}
