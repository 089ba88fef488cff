/// <reference types="@fastly/js-compute" />
// httpcache.js, built with --enable-http-cache (internal/jssdk
// httpcache_test.go): fetch goes through the HTTP cache API
// (fastly_http_cache). GET /P fetches P from the backend "origin";
// ?force=1 adds a CacheOverride whose afterSend hook stores the response
// for 60 s whatever its headers say.
import { CacheOverride } from "fastly:cache-override";

addEventListener("fetch", (event) =>
  event.respondWith(handle(event.request).catch((e) => new Response(String(e) + "\n" + (e.stack ?? ""), { status: 500 }))),
);

async function handle(req) {
  const url = new URL(req.url);
  const init = { backend: "origin" };
  if (url.searchParams.get("force") === "1") {
    init.cacheOverride = new CacheOverride({
      afterSend(res) {
        res.ttl = 60;
        return { cache: true };
      },
    });
  }
  const r = await fetch("http://origin.test" + url.pathname, init);
  return new Response(await r.text(), { status: r.status, headers: { "x-cache": r.headers.get("x-cache") ?? "" } });
}
