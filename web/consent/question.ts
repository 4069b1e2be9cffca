/**
 * The consent question, as the frame (web/frame/consent.ts) and the consent window
 * (consent-window.ts) both show it: who asks, the GPU share it agrees to, what contributing means,
 * the two buttons and a line for what went wrong. The same words in both places, so what a
 * visitor agrees to does not depend on where they answered.
 */
export interface ConsentQuestion {
  start: HTMLButtonElement;
  no: HTMLButtonElement;
  /** Where a refused click or a blocked window is explained (role=alert). */
  problem: HTMLParagraphElement;
}

export function para(text: string, cls?: string): HTMLParagraphElement {
  const p = document.createElement("p");
  p.textContent = text;
  if (cls) p.className = cls;
  return p;
}

function button(label: string, primary: boolean): HTMLButtonElement {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (primary) b.className = "primary";
  return b;
}

/**
 * Fill `root` with the question for `site` at `share` %: `tab` names the tab that would contribute
 * ("this" in the frame, "that" in the window), `stopWhere` ends the sentence about stopping, and
 * `notes` are paragraphs shown before the buttons.
 */
export function showQuestion(
  root: HTMLElement,
  q: { site: string; share: number; tab: "this" | "that"; stopWhere: string; notes: string[] },
): ConsentQuestion {
  const start = button("Start contributing", true);
  const no = button("No thanks", false);
  const problem = para("", "problem");
  problem.setAttribute("role", "alert");
  const actions = document.createElement("p");
  actions.append(start, " ", no);
  root.replaceChildren(
    para(
      `Tabgrid on ${q.site}: lend ${q.tab} tab's GPU (up to ${q.share} % of the time) while the page is open?`,
      "lead",
    ),
    para(
      `Your browser downloads a small AI model and runs other people's prompts on your GPU. You (the contributor) can see the prompts you serve. Stop at any time${q.stopWhere}.`,
    ),
    ...q.notes.map((n) => para(n)),
    actions,
    problem,
  );
  return { start, no, problem };
}
