/**
 * The least of the DOM that the page's panels (web/ui/) use, for web unit tests, which run in Node
 * without a DOM library: elements with attributes, children, text, click listeners and the form
 * fields' properties. `installFakeDocument()` puts a `document` on globalThis and returns the
 * function that takes it away again (the web project shares globals between files).
 */
export class FakeElement {
  children: (FakeElement | string)[] = [];
  readonly attrs = new Map<string, string>();
  private readonly listeners = new Map<string, ((event: { isTrusted: boolean }) => void)[]>();
  hidden = false;
  className = "";
  type = "";
  href = "";
  target = "";
  rel = "";
  disabled = false;
  checked = false;
  value = "";
  dataset: Record<string, string> = {};

  constructor(readonly tagName: string) {}

  setAttribute(name: string, value: string): void {
    this.attrs.set(name, value);
    if (name === "value") this.value = value;
    if (name === "hidden") this.hidden = true;
  }
  getAttribute(name: string): string | null {
    return this.attrs.get(name) ?? null;
  }
  removeAttribute(name: string): void {
    this.attrs.delete(name);
  }
  append(...children: (FakeElement | string)[]): void {
    this.children.push(...children);
  }
  replaceChildren(...children: (FakeElement | string)[]): void {
    this.children = children;
  }
  addEventListener(type: string, listener: (event: { isTrusted: boolean }) => void): void {
    const list = this.listeners.get(type) ?? [];
    list.push(listener);
    this.listeners.set(type, list);
  }
  /** A click as a script would make it (`element.click()`): not trusted. */
  click(): void {
    for (const listener of this.listeners.get("click") ?? []) listener({ isTrusted: false });
  }
  /** A real (trusted) click by the visitor, as the browser delivers it. */
  trustedClick(): void {
    for (const listener of this.listeners.get("click") ?? []) listener({ isTrusted: true });
  }
  /** The button labelled `label`, here or below. */
  button(label: string): FakeElement | null {
    if (this.tagName === "button" && this.textContent === label) return this;
    for (const c of this.children) {
      const found = typeof c === "string" ? null : c.button(label);
      if (found) return found;
    }
    return null;
  }
  get textContent(): string {
    return this.children.map((c) => (typeof c === "string" ? c : c.textContent)).join("");
  }
  set textContent(text: string) {
    this.children = [text];
  }
  /** The element with this id, here or below. */
  find(id: string): FakeElement | null {
    if (this.attrs.get("id") === id) return this;
    for (const c of this.children) {
      const found = typeof c === "string" ? null : c.find(id);
      if (found) return found;
    }
    return null;
  }
}

export function installFakeDocument(): () => void {
  const g = globalThis as { document?: unknown };
  const before = g.document;
  g.document = { createElement: (tag: string) => new FakeElement(tag) };
  return () => {
    if (before === undefined) delete g.document;
    else g.document = before;
  };
}
