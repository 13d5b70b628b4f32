// QubesWeb's few browser-side helpers, loaded as a module through Blazor's JS interop (CSP: script-src 'self').

/** Reads a remembered setting of this browser. */
export function load(key) {
  try { return window.localStorage.getItem("qubesweb." + key); } catch { return null; }
}

/** Remembers a setting in this browser. */
export function save(key, value) {
  try { window.localStorage.setItem("qubesweb." + key, value); } catch { /* private mode: not remembered */ }
}

let slashHandler = null;

/** '/' focuses the element with this id unless the user is typing somewhere, as in GitHub or Gmail. */
export function focusOnSlash(id) {
  if (slashHandler) document.removeEventListener("keydown", slashHandler);
  slashHandler = (e) => {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
    const el = document.getElementById(id);
    if (!el) return;
    e.preventDefault();
    el.focus();
  };
  document.addEventListener("keydown", slashHandler);
  document.getElementById(id)?.setAttribute("data-slash", "ready");
}
