// The conversation page: a websocket per conversation that replays saved answers and
// streams new text, reconnecting by itself; the composer's keyboard behaviour; Copy, for
// an answer and for each code block in it.
// All HTML put into the page comes rendered and sanitized from the server.
"use strict";

(() => {
  const FINAL = new Set(["complete", "interrupted", "failed"]);
  let socket = null;
  let retryDelay = 500;
  let threadRefresh = null;
  // Requests whose response replaces the thread (send, regenerate, edit, refresh). A frame
  // for a message not on the page yet is held until they are swapped in: the answer a send
  // queues is announced before the send's own response arrives, and fetching the thread
  // for it as well would render the whole thread twice.
  const threadRequests = new Set(); // their XHRs, until each is done
  let heldFrames = [];
  const notShown = new Set(); // answers on a branch this page does not show

  const thread = () => document.getElementById("thread");
  const messageElement = (id) => document.getElementById(`message-${id}`);

  function nearBottom() {
    const scroller = document.scrollingElement;
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  }

  function keepScrolled(wasNearBottom) {
    if (wasNearBottom) window.scrollTo(0, document.scrollingElement.scrollHeight);
  }

  function refreshThread() {
    // several frames may ask at once; one request is enough
    if (threadRefresh || !thread()) return;
    threadRefresh = htmx.ajax("GET", thread().dataset.threadUrl, { target: "#thread", swap: "outerHTML" })
      .finally(() => { threadRefresh = null; });
  }

  function refreshMessage(element) {
    htmx.ajax("GET", element.dataset.messageUrl, { target: element, swap: "outerHTML" });
  }

  function setBody(element, html) {
    const body = element.querySelector(".message-body");
    if (!body) return;
    body.innerHTML = html;
    addCodeCopyButtons(body);
  }

  // The sanitizer lets no button through, so each code block gets its own here, beside the
  // block rather than inside it (a wide block scrolls sideways; the button stays put).
  function addCodeCopyButtons(root) {
    for (const pre of root.querySelectorAll(".message-assistant .message-body pre")) {
      if (pre.parentElement.classList.contains("code-block")) continue;
      const block = document.createElement("div");
      block.className = "code-block";
      pre.replaceWith(block);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "linklike copy-code";
      button.textContent = "Copy code";
      block.append(pre, button);
    }
  }

  function copy(button, text, label) {
    navigator.clipboard.writeText(text).then(() => {
      button.textContent = "Copied";
      window.setTimeout(() => { button.textContent = label; }, 1500);
    });
  }

  // A frame about a message the page does not show: held until the thread being fetched
  // (by a send, or else by refreshThread) is swapped in, then handled. A message still
  // missing from the new thread is on a branch the page does not show: its frames are
  // ignored from then on, instead of fetching the thread again for each of them.
  function missing(frame, replayed) {
    if (notShown.has(frame.message)) return;
    if (replayed) {
      notShown.add(frame.message);
      return;
    }
    heldFrames.push(frame);
    if (threadRequests.size === 0) refreshThread();
  }

  function replayHeldFrames() {
    const frames = heldFrames;
    heldFrames = [];
    for (const frame of frames) handle(frame, true);
  }

  function handle(frame, replayed = false) {
    const element = frame.message ? messageElement(frame.message) : null;
    const stick = nearBottom();
    switch (frame.type) {
      case "answer":
        if (!element) return missing(frame, replayed);
        element.dataset.seq = frame.seq;
        element.dataset.status = frame.status;
        setBody(element, frame.html);
        setQueue(element, frame.position);
        if (FINAL.has(frame.status)) refreshMessage(element);
        break;
      case "delta":
        if (!element) return missing(frame, replayed);
        element.dataset.seq = frame.seq;
        element.dataset.status = "generating";
        setBody(element, frame.html);
        break;
      case "status":
        if (!element) return missing(frame, replayed);
        element.dataset.status = frame.status;
        if (frame.html !== undefined) setBody(element, frame.html);
        if (FINAL.has(frame.status)) refreshMessage(element);
        break;
      case "queue":
        if (element) setQueue(element, frame.position);
        break;
      case "created":
        if (!element) missing(frame, replayed);
        break;
      case "error":
        showError(frame.error);
        break;
      case "title":
        showTitle(frame.title);
        return;
    }
    keepScrolled(stick);
  }

  // The model titled the conversation: the header, the tab, the sidebar and the rename field
  // (unless the user is typing in it) show it. Set as text, never as HTML.
  function showTitle(title) {
    const heading = document.getElementById("conversation-title");
    if (heading) heading.textContent = title;
    document.title = `${title} · Parley`;
    const link = document.querySelector('#conversation-list a[aria-current="page"]');
    if (link) link.textContent = title;
    const field = document.getElementById("rename-title");
    if (field && document.activeElement !== field) field.value = title;
  }

  function setQueue(element, position) {
    const note = element.querySelector(".queue-position");
    if (note) note.textContent = position > 1 ? `(number ${position} in the queue)` : "";
  }

  function showError(text) {
    const box = document.getElementById("chat-error");
    if (!box) return;
    const p = document.createElement("p");
    p.className = "form-error";
    p.setAttribute("role", "alert");
    p.textContent = text;
    box.replaceChildren(p);
  }

  function connect() {
    const element = thread();
    if (!element) return;
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${window.location.host}${element.dataset.wsUrl}`);
    if (document.body.dataset.socket !== "reconnecting") document.body.dataset.socket = "connecting";
    socket.addEventListener("open", () => {
      // After a drop, answers may have finished unseen: the server replays only those
      // still in progress, so fetch the thread once to catch up on the rest.
      if (document.body.dataset.socket === "reconnecting") refreshThread();
      retryDelay = 500;
      document.body.dataset.socket = "open";
    });
    socket.addEventListener("message", (event) => handle(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      if (event.code === 4401 || event.code === 4403 || event.code === 4404) { // logged out, or no such conversation: do not knock again
        document.body.dataset.socket = "closed";
        return;
      }
      document.body.dataset.socket = "reconnecting";
      // reconnect with backoff; the server replays what was missed
      window.setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 8000);
    });
  }

  function setUpComposer() {
    const composer = document.getElementById("composer");
    if (!composer) return;
    const input = composer.querySelector("textarea");
    const grow = () => {
      input.style.height = "auto";
      input.style.height = `${Math.min(input.scrollHeight, 320)}px`;
    };
    input.addEventListener("input", grow);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (input.value.trim()) composer.requestSubmit();
      }
    });
    composer.addEventListener("htmx:afterRequest", (event) => {
      if (event.detail.successful) {
        input.value = "";
        grow();
        document.getElementById("chat-error").replaceChildren();
      }
    });
    input.focus();
  }

  // A send or a regenerate says which message the page shows last, so that the server
  // can answer with just the new messages when they go right after it.
  const replacesThread = (detail) => Boolean(detail.target && detail.target.id === "thread");

  document.addEventListener("htmx:configRequest", (event) => {
    if (event.detail.verb !== "post" || !replacesThread(event.detail)) return;
    const last = thread().lastElementChild;
    if (last && last.dataset.messageId) event.detail.parameters.shown = last.dataset.messageId;
  });

  document.addEventListener("htmx:beforeRequest", (event) => {
    if (replacesThread(event.detail)) threadRequests.add(event.detail.xhr);
  });
  // after the response is swapped in (a refusal is shown elsewhere), or failed
  document.addEventListener("htmx:afterRequest", (event) => {
    // matched by XHR: a refusal's response is retargeted, so the target no longer says
    if (!threadRequests.delete(event.detail.xhr)) return;
    // A failed request swapped nothing: the held frames prove nothing, and are dropped
    // (a lost connection is caught up on when the socket reconnects).
    if (!event.detail.successful) heldFrames = [];
    if (threadRequests.size === 0) replayHeldFrames();
  });

  document.addEventListener("click", (event) => {
    const codeButton = event.target.closest("button.copy-code");
    if (codeButton) {
      copy(codeButton, codeButton.parentElement.querySelector("pre").innerText, "Copy code");
      return;
    }
    const button = event.target.closest("button.copy");
    if (!button) return;
    const message = button.closest(".message");
    const raw = message.querySelector(".raw");
    const text = raw && raw.textContent ? raw.textContent : message.querySelector(".message-body").innerText;
    copy(button, text, "Copy");
  });

  // answers drawn by the server: on the first page and in every swapped-in thread or message
  htmx.onLoad(addCodeCopyButtons);

  document.addEventListener("DOMContentLoaded", () => {
    setUpComposer();
    connect();
    // a search result opens the conversation at the message it found
    const found = document.querySelector(".message-found");
    if (found) found.scrollIntoView({ block: "center" });
    else keepScrolled(true);
  });
})();
