// A gallery page loads its next page as the reader nears the end: the "Next page" link's page is
// fetched and its tiles appended (already escaped by the server; nothing here builds markup).
// Without JavaScript, or if a fetch fails, the link works as a plain link.
const grid = document.querySelector("ul.grid");
const pages = document.querySelector("nav.pages");
if (grid && pages && "IntersectionObserver" in window) {
  let loading = false;
  const observer = new IntersectionObserver(async (entries) => {
    const next = pages.querySelector("a[rel=next]");
    if (!next || loading || !entries.some((entry) => entry.isIntersecting)) return;
    loading = true;
    try {
      const response = await fetch(next.href, { headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const tiles = page.querySelectorAll("ul.grid > li");
      grid.append(...Array.from(tiles, (tile) => document.importNode(tile, true)));
      const following = page.querySelector("nav.pages a[rel=next]");
      if (following) next.href = new URL(following.getAttribute("href"), next.href).href;
      else next.remove();
      // Still in view (a short page): observing again reports it again.
      observer.unobserve(pages);
      observer.observe(pages);
    } catch {
      observer.disconnect();
    } finally {
      loading = false;
    }
  }, { rootMargin: "600px 0px" });
  observer.observe(pages);
}
