// Live progress of background jobs: a websocket per running job, reconnecting by itself;
// when a job ends, the section is fetched again from the server. The words come from the
// server too (each frame's text, written by Job.progress_text): this only puts them in place.
"use strict";

(() => {
  const FINISHED = new Set(["done", "failed", "cancelled"]);
  // Close codes after which the server would refuse again: not signed in, signed out, no such job.
  const FOR_GOOD = new Set([4401, 4403, 4404]);

  // The job's section (an element with an id and data-refresh-url) comes again from the server;
  // a job whose end changes the whole page (a reading: the text, the summary form) reloads it.
  function refresh(element) {
    const section = element.closest("[data-refresh-url]");
    if (section) htmx.ajax("GET", section.dataset.refreshUrl, { target: `#${section.id}`, swap: "outerHTML" }).then(watchAll);
    else if ("reloadWhenDone" in element.dataset) window.location.reload();
  }

  function watch(element, delay = 500) {
    if (element.dataset.watching) return;
    element.dataset.watching = "1";
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}${element.dataset.jobSocket}`);
    socket.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type !== "progress") return;
      if (FINISHED.has(frame.state)) {
        socket.close(1000);
        refresh(element);
        return;
      }
      const bar = element.querySelector("progress");
      if (bar) { bar.max = Math.max(frame.total, 1); bar.value = frame.done; }
      const status = element.querySelector(".job-status");
      if (status) status.textContent = frame.text;
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 1000 || !document.body.contains(element)) return;
      if (FOR_GOOD.has(event.code)) { // signed out, or the job is gone: knocking again cannot help
        element.dataset.socket = "closed";
        return;
      }
      delete element.dataset.watching;
      window.setTimeout(() => watch(element, Math.min(delay * 2, 8000)), delay);
    });
  }

  function watchAll() {
    document.querySelectorAll("[data-job-socket]").forEach((element) => watch(element));
  }

  document.addEventListener("DOMContentLoaded", watchAll);
})();
