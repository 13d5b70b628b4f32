// The dashboard's small live screens: each picture is asked for again every few seconds while the page is visible,
// and not at all while it is hidden (another tab, a minimised window). The server never caches one.
const every = 4000;

export function start() {
  const refresh = () => {
    if (document.hidden) return;
    for (const img of document.querySelectorAll('img.qw-screen')) {
      img.src = img.dataset.src + '?t=' + Date.now();
    }
  };
  const timer = setInterval(refresh, every);
  document.addEventListener('visibilitychange', refresh);
  return {
    stop: () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', refresh);
    },
  };
}
