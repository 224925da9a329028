/**
 * The page builds every node with these helpers: text always goes in as text
 * (textContent), attributes are set one by one. No HTML string is ever parsed,
 * so nothing an agent or a user sends can become markup or script.
 */
type Child = Node | string | false | undefined | null;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  for (const child of children) if (child) el.append(child);
  return el;
}

export const byId = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
