/** Light, dark, or the system's choice (prefers-color-scheme); the toggle's choice is remembered. */
const KEY = "agentgate.theme";

function apply(theme: string | null): void {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

export function setupTheme(button: HTMLElement): void {
  apply(localStorage.getItem(KEY));
  button.addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme ? document.documentElement.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    localStorage.setItem(KEY, next);
    apply(next);
  });
}
