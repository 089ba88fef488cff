/// <reference types="@fastly/js-compute" />
// Routes of app.js for the readthrough cache (internal/jssdk cache_test.go):
// fetches through the backend "origin" with a CacheOverride, and purges.
import { CacheOverride } from "fastly:cache-override";
import { purgeSurrogateKey } from "fastly:compute";

export const cacheRoutes = {
  // GET /cache/fetch?path=P[&mode=none|pass|override][&ttl=S][&swr=S][&sk=KEYS]:
  // fetch P from "origin" with that CacheOverride (none without mode);
  // answer the origin's body and the cache's X-Cache and X-Cache-Hits.
  "/cache/fetch": async (req, url) => {
    const q = url.searchParams;
    const init = {};
    if (q.has("ttl")) init.ttl = Number(q.get("ttl"));
    if (q.has("swr")) init.swr = Number(q.get("swr"));
    if (q.has("sk")) init.surrogateKey = q.get("sk");
    const cacheOverride = new CacheOverride(q.get("mode") ?? "none", init);
    const r = await fetch("http://origin.test" + q.get("path"), { backend: "origin", cacheOverride });
    return new Response(await r.text(), {
      status: r.status,
      headers: { "x-cache": r.headers.get("x-cache") ?? "", "x-cache-hits": r.headers.get("x-cache-hits") ?? "" },
    });
  },

  // GET /cache/purge?key=K[&soft=1]: purgeSurrogateKey(K, soft).
  "/cache/purge": async (req, url) => {
    purgeSurrogateKey(url.searchParams.get("key"), url.searchParams.get("soft") === "1");
    return new Response("purged\n");
  },
};
