/// <reference types="@fastly/js-compute" />
// The smallest JS guest: the hello of edgehost's JS SDK benchmarks.
addEventListener("fetch", (event) => event.respondWith(new Response("hello from js\n")));
