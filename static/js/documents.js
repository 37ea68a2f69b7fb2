// Documents page: dropping files on the drop zone uploads them.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const zone = document.querySelector(".dropzone");
  if (!zone) return;
  const input = zone.querySelector("input[type=file]");
  const form = zone.closest("form");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    input.files = event.dataTransfer.files;
    form.requestSubmit();
  });
  input.addEventListener("change", () => { if (input.files.length) form.requestSubmit(); });
});
