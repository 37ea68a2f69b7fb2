// The chat sidebar: a conversation dragged onto a project goes into it (onto the dated
// groups, out of any project), and the projects folded stay folded in this browser.
// The conversation's menu moves it too, without dragging.
"use strict";

(() => {
  const FOLDED_KEY = "parley.folded-projects";

  function foldedProjects() {
    try {
      return new Set(JSON.parse(localStorage.getItem(FOLDED_KEY) || "[]"));
    } catch {
      return new Set();
    }
  }

  function applyFolded() {
    const folded = foldedProjects();
    document.querySelectorAll("#conversation-list details.project-group").forEach((group) => {
      if (folded.has(group.dataset.projectId)) group.open = false;
    });
  }

  // "toggle" does not bubble: listened to on its way down.
  document.addEventListener("toggle", (event) => {
    const group = event.target;
    if (!(group instanceof HTMLDetailsElement) || !group.matches("#conversation-list .project-group")) return;
    const folded = foldedProjects();
    if (group.open) folded.delete(group.dataset.projectId);
    else folded.add(group.dataset.projectId);
    try {
      localStorage.setItem(FOLDED_KEY, JSON.stringify([...folded]));
    } catch {
      // storage refused (private mode, full): folding lasts until the page changes
    }
  }, true);

  let dragged = null;

  function dropTarget(event) {
    if (!dragged || !(event.target instanceof Element)) return null;
    return event.target.closest("#conversation-list [data-drop-project]");
  }

  function unmark() {
    document.querySelectorAll("#conversation-list .drop-here").forEach((group) => group.classList.remove("drop-here"));
  }

  document.addEventListener("dragstart", (event) => {
    const link = event.target instanceof Element && event.target.closest("#conversation-list a[draggable=true]");
    if (!link) return;
    dragged = link;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/uri-list", link.href);
  });

  document.addEventListener("dragend", () => {
    dragged = null;
    unmark();
  });

  document.addEventListener("dragover", (event) => {
    const target = dropTarget(event);
    if (!target) return;
    event.preventDefault();
    if (!target.classList.contains("drop-here")) {
      unmark();
      target.classList.add("drop-here");
    }
  });

  document.addEventListener("drop", (event) => {
    const target = dropTarget(event);
    if (!target) return;
    event.preventDefault();
    const list = document.getElementById("conversation-list");
    const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    // the server moves it and answers with the sidebar redrawn; a conversation's move is at
    // its own address + "move" (webapp/chat/urls.py), rather than a second address per link
    htmx.ajax("POST", new URL("move", dragged.href).pathname, {
      target: list,
      swap: "outerHTML",
      headers,
      values: { project: target.dataset.dropProject, current: list.dataset.current },
    });
    dragged = null;
    unmark();
  });

  document.addEventListener("htmx:afterSettle", applyFolded);
  applyFolded();
})();
