import type { RegionView, VerificationView } from "./status-types.js";

/**
 * The page's verification panel (docs/trust.md, docs/status.md): answer audits and canaries
 * judged and tabs in quarantine, from /v1/status and /v1/status/regions. Two bars show the share
 * of audits and of canaries that passed; each bar has a text alternative (its `<title>` and the
 * sentence beside it), and the per-region table carries every figure as text.
 */

const SVG = "http://www.w3.org/2000/svg";

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function share(passed: number, failed: number): string {
  const total = passed + failed;
  return total ? `${Math.round((1000 * passed) / total) / 10}%` : "—";
}

/** One sentence that says everything the bars show. */
export function verificationText(v: VerificationView | null): string {
  if (!v) return "Answer verification is off on this coordinator: answers are not audited.";
  const audits = v.audits.passed + v.audits.failed;
  const canaries = v.canaries.passed + v.canaries.failed;
  return (
    `${plural(audits, "answer audit")} judged: ${v.audits.passed} passed, ${v.audits.failed} failed` +
    (audits ? ` (${share(v.audits.passed, v.audits.failed)} passed)` : "") +
    `; ${plural(canaries, "canary job")}: ${v.canaries.passed} passed, ${v.canaries.failed} failed; ` +
    `${plural(v.quarantined_tabs, "connected tab")} in quarantine ` +
    `(${v.quarantined_identities} ${v.quarantined_identities === 1 ? "identity" : "identities"} in all)` +
    (v.audits_pending ? `; ${v.audits_pending} audits waiting for a verifier.` : ".")
  );
}

/** A bar of `passed` (green) and `failed` (red) with its text alternative. */
function bar(svg: SVGSVGElement, label: string, passed: number, failed: number): void {
  const total = passed + failed;
  const title = document.createElementNS(SVG, "title");
  title.textContent = total
    ? `${label}: ${passed} passed, ${failed} failed (${share(passed, failed)} passed)`
    : `${label}: none judged yet`;
  const rects: SVGElement[] = [title];
  const width = total ? (300 * passed) / total : 0;
  for (const [x, w, cls] of [
    [0, width, "passed"],
    [width, total ? 300 - width : 300, total ? "failed" : "none"],
  ] as const) {
    if (w <= 0) continue;
    const r = document.createElementNS(SVG, "rect");
    r.setAttribute("x", String(x));
    r.setAttribute("y", "0");
    r.setAttribute("width", String(w));
    r.setAttribute("height", "16");
    r.setAttribute("class", `bar-${cls}`);
    rects.push(r);
  }
  svg.replaceChildren(...rects);
  svg.setAttribute("aria-label", title.textContent);
}

function cell(text: string, header = false): HTMLTableCellElement {
  const td = document.createElement(header ? "th" : "td");
  if (header) td.setAttribute("scope", "row");
  td.textContent = text;
  return td;
}

export function renderVerification(network: VerificationView | null, regions: RegionView[]): void {
  const $ = <T extends Element>(s: string) => document.querySelector<T>(s)!;
  $("#verification-text").textContent = verificationText(network);
  $<HTMLElement>("#verification-bars").hidden = !network;
  if (network) {
    bar(
      $<SVGSVGElement>("#audit-bar"),
      "Answer audits",
      network.audits.passed,
      network.audits.failed,
    );
    bar(
      $<SVGSVGElement>("#canary-bar"),
      "Canary jobs",
      network.canaries.passed,
      network.canaries.failed,
    );
  }
  const rows = regions
    .filter((r) => r.verification)
    .map((r) => {
      const v = r.verification!;
      const tr = document.createElement("tr");
      tr.append(
        cell(r.region, true),
        cell(`${v.audits.passed} / ${v.audits.failed}`),
        cell(share(v.audits.passed, v.audits.failed)),
        cell(`${v.canaries.passed} / ${v.canaries.failed}`),
        cell(String(v.quarantined_tabs)),
        cell(String(v.quarantined_identities)),
        cell(String(v.audits_pending)),
      );
      return tr;
    });
  $<HTMLElement>("#verification-table").hidden = rows.length === 0;
  $<HTMLTableSectionElement>("#verification-table tbody").replaceChildren(...rows);
}
