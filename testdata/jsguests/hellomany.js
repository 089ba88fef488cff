/// <reference types="@fastly/js-compute" />
// The JS SDK's hello with sandbox reuse (fastly:experimental
// setReusableSandboxOptions, SDK 3.40 and later): one sandbox serves
// requests in turn, and says how many it has served, as
// testdata/guests/hellomany does for guestsdk.ServeMany.
import { setReusableSandboxOptions } from "fastly:experimental";

setReusableSandboxOptions({ maxRequests: 0 });

let served = 0;
addEventListener("fetch", (event) => {
  served++;
  event.respondWith(new Response("served " + served));
});
