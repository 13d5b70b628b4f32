// A qube's graphical console in noVNC, loaded as a module by the console page through Blazor's JS interop (CSP:
// script-src 'self', connect-src 'self'; noVNC's core needs neither eval nor workers). RFB goes both ways over the
// console's own WebSocket, which this module opens itself so that the page learns the relay's close code and reason
// (busy, taken over, stopped). noVNC comes from npm (wwwroot/lib, made by the build); only its core/ is served.
import RFB from "../lib/novnc/core/rfb.js";
import { initLogging } from "../lib/novnc/core/util/logging.js";

// The page says why a console closed, from the relay's close frame; noVNC's own "connection closed" errors would
// only repeat it less precisely in the browser's console.
initLogging("none");

/**
 * Opens the display in `host` on the socket at `path` (same origin; `force` takes the console over), scaled to fit
 * its box when `fit`, and tells `page` (a DotNetObjectReference) when the socket opens and closes. Returns the
 * console, for setFit(), ctrlAltDel(), fullScreen() and dispose().
 */
export function open(host, path, force, fit, page) {
  // Relative to the console's base (<base href="/">), not to this page's own address.
  const url = new URL(path + (force ? "?force=1" : ""), document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  let disposed = false;
  socket.addEventListener("open", () => { if (!disposed) page.invokeMethodAsync("OnConsoleOpened"); });
  socket.addEventListener("close", (e) => { if (!disposed) page.invokeMethodAsync("OnConsoleClosed", e.code, e.reason || ""); });

  // Shared: the relay, not the VNC server, keeps one viewer at a time (and a take-over is the relay's to do).
  const rfb = new RFB(host, socket, { shared: true });
  rfb.background = "#000";
  rfb.scaleViewport = fit;
  rfb.clipViewport = false;
  rfb.focusOnClick = true;
  rfb.addEventListener("connect", () => rfb.focus());

  return {
    /** Fit to the box (true) or one screen pixel per CSS pixel, with scroll bars (false). */
    setFit(on) { rfb.scaleViewport = on; },
    /** Sends Ctrl-Alt-Del, which the browser's own keyboard would keep. */
    ctrlAltDel() { rfb.sendCtrlAltDel(); rfb.focus(); },
    /** The qube's whole frame (its colour and name stay on screen) full screen, or back. */
    fullScreen() {
      const frame = host.closest(".qube-frame") ?? host;
      if (document.fullscreenElement) document.exitFullscreen();
      else frame.requestFullscreen().then(() => rfb.focus(), () => { /* refused: no user gesture */ });
    },
    /** Closes the socket and removes the display. */
    dispose() {
      disposed = true;
      try { rfb.disconnect(); } catch { /* already closed */ }
      if (socket.readyState <= WebSocket.OPEN) socket.close(1000, "The page closed its console.");
      if (document.fullscreenElement && host.contains(document.fullscreenElement)) document.exitFullscreen();
      host.replaceChildren();
    },
  };
}
