
"use strict";
// Fetches this page again every few seconds and swaps its live part in place: one renderer
// (the server's) for the first view and every refresh, and no reload that loses the scroll
// position or an open <details>.
(() => {
  const banner = document.getElementById("conn");
  let live = document.getElementById("live");
  const every = Math.max(1, Number(live.dataset.refresh) || 5) * 1000;
  let busy = false;
  const refresh = async () => {
    if (busy) {
      return;
    }
    busy = true;
    try {
      const resp = await fetch(location.href, { cache: "no-store", headers: { Accept: "text/html" } });
      if (!resp.ok) {
        throw new Error("HTTP " + resp.status);
      }
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const next = doc.getElementById("live");
      if (!next) {
        throw new Error("the answer holds no figures");
      }
      live.replaceWith(document.adoptNode(next));
      live = next;
      document.title = doc.title;
      banner.hidden = true;
    } catch (err) {
      banner.textContent = "Cannot reach the admin listener (" + err.message + "): the figures below are from " +
        (document.getElementById("updated")?.textContent || "earlier") + ".";
      banner.hidden = false;
    } finally {
      busy = false;
    }
  };
  setInterval(refresh, every);
})();
