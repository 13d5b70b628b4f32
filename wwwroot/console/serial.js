// A qube's serial console in xterm.js, loaded as a module by the console page through Blazor's JS interop
// (CSP: script-src 'self', connect-src 'self'). Bytes go both ways over the console's own WebSocket; the guest's
// output is written to the terminal as terminal data, never as HTML. xterm.js comes from npm (wwwroot/lib, made by
// the build).
import { Terminal } from "../lib/xterm/xterm.mjs";
import { FitAddon } from "../lib/xterm/addon-fit.mjs";

const encoder = new TextEncoder();

/**
 * Opens a terminal in `host` on the socket at `path` (same origin; `force` takes the console over) and tells `page`
 * (a DotNetObjectReference) when the socket opens and closes. Returns the console, for paste() and dispose().
 */
export function open(host, path, force, page) {
  const term = new Terminal({ cursorBlink: true, scrollback: 5000, fontSize: 14,
    fontFamily: "'DejaVu Sans Mono', 'Liberation Mono', monospace" });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(host);
  fit.fit();

  // Relative to the console's base (<base href="/">), not to this page's own address.
  const url = new URL(path + (force ? "?force=1" : ""), document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  let disposed = false;

  const send = (bytes) => { if (socket.readyState === WebSocket.OPEN) socket.send(bytes); };
  socket.onopen = () => { if (!disposed) page.invokeMethodAsync("OnConsoleOpened"); };
  socket.onmessage = (e) => term.write(new Uint8Array(e.data));
  socket.onclose = (e) => { if (!disposed) page.invokeMethodAsync("OnConsoleClosed", e.code, e.reason || ""); };
  const typed = term.onData((data) => send(encoder.encode(data)));
  // Some keys (mouse reports in X10 mode) come as binary strings, one byte per character.
  const binary = term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));

  // The terminal fills its box: again whenever the window (or the box) changes size.
  const refit = () => { try { fit.fit(); } catch { /* hidden: nothing to measure */ } };
  window.addEventListener("resize", refit);
  const observer = new ResizeObserver(refit);
  observer.observe(host);
  term.focus();

  return {
    /** Types `text` into the qube, as a terminal pastes: line ends become Enter (CR). */
    paste(text) {
      send(encoder.encode(String(text).replace(/\r?\n/g, "\r")));
      term.focus();
    },
    /** Closes the socket and removes the terminal. */
    dispose() {
      disposed = true;
      window.removeEventListener("resize", refit);
      observer.disconnect();
      typed.dispose();
      binary.dispose();
      if (socket.readyState <= WebSocket.OPEN) socket.close(1000, "The page closed its console.");
      term.dispose();
      host.replaceChildren();
    },
  };
}
