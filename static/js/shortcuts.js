// Keyboard shortcuts of the chat pages, and the cheat sheet that lists them (built from
// SHORTCUTS below, the one list of them). A key without Ctrl or ⌘ is never taken while the
// user types in a field, where it stays text; the exceptions are Shift+Esc, and Esc in the
// message box, where neither means anything (elsewhere Esc is left alone: it clears a
// search box).
"use strict";

(() => {
  const mac = /Mac|iPhone|iPad/.test(navigator.platform);
  const modifier = mac ? "⌘" : "Ctrl";

  const typing = (target) =>
    target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]") !== null;
  // Ctrl on Linux and Windows, ⌘ on a Mac; either is accepted on both
  const withModifier = (event) => (event.ctrlKey || event.metaKey) && !event.altKey;
  const plain = (event) => !event.ctrlKey && !event.metaKey && !event.altKey;
  const letter = (event) => event.key.toLowerCase();

  function click(element) {
    if (!element) return false;
    element.click();
    return true;
  }

  function focus(element) {
    if (!element) return false;
    element.focus();
    if (element.select) element.select();
    return true;
  }

  function lastAnswerCopyButton() {
    const answers = [...document.querySelectorAll("#thread .message-assistant")];
    const finished = answers.filter((m) => !["queued", "generating"].includes(m.dataset.status));
    const answer = finished.at(-1);
    return answer ? answer.querySelector("button.copy") : null;
  }

  function stopAnswers() {
    const buttons = document.querySelectorAll(
      '#thread .message[data-status="queued"] button.stop, #thread .message[data-status="generating"] button.stop',
    );
    buttons.forEach((button) => button.click());
    return buttons.length > 0;
  }

  // keys: what the cheat sheet shows; matches: whether a keydown is this shortcut;
  // inFields: whether it may also work while typing in a field (matches gets inField to narrow it);
  // run: does it, and says whether there was anything to do (only then is the key taken).
  const SHORTCUTS = [
    {
      action: "New chat",
      keys: [[modifier, "Shift", "O"]],
      inFields: true,
      matches: (e) => withModifier(e) && e.shiftKey && letter(e) === "o",
      run: () => click(document.querySelector(".chat-sidebar .new-chat")),
    },
    {
      action: "Search messages",
      keys: [[modifier, "K"], ["/"]],
      inFields: true,
      matches: (e, inField) => (withModifier(e) && !e.shiftKey && letter(e) === "k") || (!inField && plain(e) && e.key === "/"),
      run: () => focus(document.querySelector(".chat-search input[type=search]")),
    },
    {
      action: "Stop the answer being written",
      keys: [["Esc"]],
      inFields: true,
      matches: (e, inField) =>
        plain(e) && !e.shiftKey && e.key === "Escape" && (!inField || e.target.closest("#composer") !== null),
      run: stopAnswers,
    },
    {
      action: "Copy the last answer",
      keys: [[modifier, "Shift", "C"]],
      inFields: true,
      matches: (e) => withModifier(e) && e.shiftKey && letter(e) === "c",
      run: () => click(lastAnswerCopyButton()),
    },
    {
      action: "Focus the message box",
      keys: [["Shift", "Esc"]],
      inFields: true,
      matches: (e) => plain(e) && e.shiftKey && e.key === "Escape",
      run: () => {
        const input = document.querySelector("#composer textarea");
        if (!input) return false;
        input.focus();
        return true;
      },
    },
    {
      action: "Show these shortcuts",
      keys: [["?"]],
      inFields: false,
      matches: (e) => plain(e) && e.key === "?",
      run: () => openCheatSheet(),
    },
  ];

  let cheatSheet = null;
  let focusedBefore = null;

  function buildCheatSheet() {
    const dialog = document.createElement("dialog");
    dialog.id = "shortcuts";
    dialog.className = "shortcuts";
    dialog.setAttribute("aria-labelledby", "shortcuts-title");
    const title = document.createElement("h2");
    title.id = "shortcuts-title";
    title.textContent = "Keyboard shortcuts";
    const list = document.createElement("dl");
    for (const shortcut of SHORTCUTS) {
      const term = document.createElement("dt");
      shortcut.keys.forEach((combination, index) => {
        if (index > 0) term.append(" or ");
        combination.forEach((key, position) => {
          if (position > 0) term.append("+");
          const kbd = document.createElement("kbd");
          kbd.textContent = key;
          term.append(kbd);
        });
      });
      const description = document.createElement("dd");
      description.textContent = shortcut.action;
      list.append(term, description);
    }
    const form = document.createElement("form");
    form.method = "dialog";
    const close = document.createElement("button");
    close.type = "submit";
    close.textContent = "Close";
    form.append(close);
    dialog.append(title, list, form);
    // the focus goes back where it was (Esc and Close both end here)
    dialog.addEventListener("close", () => {
      if (focusedBefore && focusedBefore.isConnected) focusedBefore.focus();
      focusedBefore = null;
    });
    document.body.append(dialog);
    return dialog;
  }

  function openCheatSheet() {
    cheatSheet ??= buildCheatSheet();
    if (cheatSheet.open) return true;
    focusedBefore = document.activeElement;
    cheatSheet.showModal(); // modal: focus moves in and stays, Esc closes it
    cheatSheet.querySelector("button").focus();
    return true;
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing || event.repeat) return;
    // an open dialog (the cheat sheet, a confirm) has the keyboard to itself
    if (document.querySelector("dialog[open]")) return;
    const inField = typing(event.target);
    for (const shortcut of SHORTCUTS) {
      if (inField && !shortcut.inFields) continue;
      if (!shortcut.matches(event, inField)) continue;
      if (shortcut.run()) event.preventDefault();
      return;
    }
  });

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-show-shortcuts]")) openCheatSheet();
  });
})();
