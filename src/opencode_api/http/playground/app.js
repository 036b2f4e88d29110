// The playground's entry point: state, the event bus, the open session's stream, and controls.
//
// The open session's stream (GET /session/{id}/stream) is the one source the conversation is
// drawn from: it replays the running or last turn on open (after=0), resumes with Last-Event-ID
// after a broken connection, and shows turns sent from anywhere. The POST of a message (or a
// regenerate) is read to its end too, for what only it knows: which stored message the local
// bubble became, and a refusal (409, 429...) before the turn started.

import { api, ApiError, getToken, server, setToken, stream } from "./api.js";
import { Chat } from "./chat.js";
import { Composer, messageBody } from "./composer.js";
import * as files from "./files.js";
import * as panels from "./panels.js";
import { SessionFeed } from "./follow.js";
import { SessionList } from "./sessions.js";

const $ = (id) => document.getElementById(id);

const state = {
  session: null, // the open session
  feed: null, // the open session's SessionFeed
  sending: 0, // this page's turns still streaming
};

const chat = new Chat($("chat"), {
  regenerate: (mid, content) => regenerate(mid, content),
  fork: (mid) => fork(mid),
  answer: (qid, answers) => act(() => api("POST", `question/${qid}/reply`, { answers })),
  reject: (qid) => act(() => api("POST", `question/${qid}/reject`)),
});
const list = new SessionList($("sessions"), (id) => openSession(id));

// -- feedback -----------------------------------------------------------------------------------
let toastTimer = null;
function toast(message) {
  const el = $("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 6000);
}

function explain(error) {
  if (error instanceof ApiError) {
    if (error.status === 401) return server.jwt ? "Unauthorized: check the user token." : "Unauthorized.";
    return `${error.type}: ${error.message}`;
  }
  return String(error?.message ?? error);
}

async function act(action) {
  try {
    return await action();
  } catch (error) {
    if (error?.name !== "AbortError") toast(explain(error));
    return undefined;
  }
}

const wait = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

// -- the session header -------------------------------------------------------------------------
function showSession(session) {
  state.session = session;
  const open = Boolean(session);
  $("title-input").disabled = !open;
  $("title-input").value = session?.title ?? "";
  for (const id of ["fork-session", "delete-session", "compact"]) $(id).disabled = !open;
  $("empty").hidden = open;
  showStatus(session?.status ?? "idle");
  panels.showDefaultModel(session);
  document.title = open ? `${session.title || "Untitled session"} · opencode-api` : "opencode-api playground";
}

function showStatus(status) {
  const busy = Boolean(state.session) && status === "busy";
  const badge = $("session-status");
  badge.hidden = !busy;
  badge.textContent = busy ? "busy" : "";
  badge.dataset.state = busy ? "busy" : "";
  $("abort").hidden = !busy;
  document.body.dataset.busy = busy ? "true" : "false";
}

// -- opening a session and following its stream -------------------------------------------------
async function openSession(id) {
  state.feed?.stop();
  state.feed = null;
  chat.clear();
  files.setSession(id);
  list.select(id);
  toggleSidebar(false);
  if (!id) {
    showSession(null);
    history.replaceState(null, "", location.pathname + location.search);
    return;
  }
  history.replaceState(null, "", `#${id}`);
  const session = await act(() => api("GET", `session/${id}`));
  if (!session || list.current !== id) return;
  showSession(session);
  const page = await act(() => api("GET", `session/${id}/message`));
  if (list.current !== id) return;
  const messages = page?.messages ?? [];
  chat.renderStored(messages);
  act(() => panels.refreshCost(id));
  act(() => panels.refreshCompaction(id));
  act(() => panels.refreshTodos(id));
  follow(id, messages);
}

function follow(id, messages) {
  const feed = new SessionFeed(id, chat, {
    event: (event) => {
      if (event.type === "done" || event.type === "error") {
        act(() => panels.refreshCost(id));
        act(() => panels.refreshCompaction(id));
        refreshStatus(id);
      }
    },
    state: (value) => (document.body.dataset.stream = value),
    failed: (error) => toast(explain(error)),
  });
  feed.stored(messages);
  state.feed = feed;
  feed.run();
}

/** The session's live status from the server (the bus tells changes; this settles races). */
async function refreshStatus(id) {
  const session = await act(() => api("GET", `session/${id}`));
  if (!session) return;
  list.upsert(session);
  if (state.session?.id === id) {
    state.session = { ...state.session, ...session };
    showStatus(state.sending > 0 ? "busy" : session.status);
  }
}

// -- sending --------------------------------------------------------------------------------------
async function ensureSession() {
  if (state.session) return state.session;
  const created = await api("POST", "session", {});
  list.upsert(created);
  await openSession(created.id);
  return state.session;
}

async function send(text, attached) {
  const session = await act(ensureSession);
  if (!session) return;
  const queued = state.session.status === "busy" || state.sending > 0;
  const bubble = chat.addLocal(text, queued, attached);
  let body;
  try {
    body = await messageBody(text, attached);
  } catch (error) {
    return chat.failLocal(bubble, explain(error));
  }
  await runTurn(session.id, `session/${session.id}/message`, { ...body, ...panels.pickedModel() }, bubble);
}

async function regenerate(mid, content) {
  const session = state.session;
  const target = chat.byId(mid);
  if (!session || !target) return;
  const body = { ...panels.pickedModel() };
  if (content !== undefined) body.content = content;
  // The server replaces the user message (a new one, with the new text) and drops what followed:
  // hide those until it said yes; the new messages come over the session's stream.
  let user = target;
  while (user && !user.classList.contains("user")) user = user.previousElementSibling;
  const replaced = [];
  for (let el = user ?? target; el; el = el.nextElementSibling) replaced.push(el);
  for (const el of replaced) el.hidden = true;
  const ok = await runTurn(session.id, `session/${session.id}/message/${mid}/regenerate`, body, null, () => {
    for (const el of replaced) el.remove();
  });
  if (!ok) for (const el of replaced) el.hidden = false;
}

async function runTurn(sessionId, path, body, bubble, accepted) {
  // True once the server took the turn: from then on the session's stream shows it, even if this
  // connection breaks.
  let opened = false;
  state.sending += 1;
  showStatus("busy");
  try {
    await stream("POST", path, {
      body,
      onOpen: () => {
        opened = true;
        accepted?.();
      },
      onFrame: (frame) => {
        const event = frame.data;
        if (bubble && event?.type === "message_start") chat.bind(bubble, event.parent_id);
      },
    });
  } catch (error) {
    if (!opened) {
      if (bubble) chat.failLocal(bubble, explain(error));
      else toast(explain(error));
      if (state.session?.id === sessionId) showStatus(state.session.status);
    }
  } finally {
    state.sending -= 1;
    refreshStatus(sessionId);
  }
  return opened;
}

async function reloadMessages(sessionId) {
  const page = await act(() => api("GET", `session/${sessionId}/message`));
  if (!page || state.session?.id !== sessionId) return;
  chat.renderStored(page.messages);
  state.feed?.stored(page.messages);
}

// -- session actions ------------------------------------------------------------------------------
async function fork(messageId) {
  const session = state.session;
  if (!session) return;
  const body = messageId ? { message_id: messageId } : {};
  const forked = await act(() => api("POST", `session/${session.id}/fork`, body));
  if (!forked) return;
  list.upsert(forked);
  await openSession(forked.id);
  toast(`Forked into “${forked.title || forked.id}”.`);
}

$("new-session").addEventListener("click", async () => {
  const created = await act(() => api("POST", "session", {}));
  if (!created) return;
  list.upsert(created);
  await openSession(created.id);
  $("composer-input").focus();
});

$("title-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter") event.target.blur();
  if (event.key === "Escape") {
    event.target.value = state.session?.title ?? "";
    event.target.blur();
  }
});
$("title-input").addEventListener("change", async (event) => {
  const session = state.session;
  if (!session) return;
  const updated = await act(() => api("PATCH", `session/${session.id}`, { title: event.target.value.trim() }));
  if (updated) {
    list.upsert(updated);
    if (state.session?.id === updated.id) state.session = { ...state.session, ...updated };
  }
});

$("delete-session").addEventListener("click", async () => {
  const session = state.session;
  if (!session || !confirm(`Delete “${session.title || "Untitled session"}” and its messages?`)) return;
  if (await act(() => api("DELETE", `session/${session.id}`))) {
    list.remove(session.id);
    await openSession(list.ordered()[0]?.id ?? null);
  }
});

$("fork-session").addEventListener("click", () => fork(null));

$("compact").addEventListener("click", async () => {
  const session = state.session;
  if (!session) return;
  $("compact").disabled = true;
  $("compaction").textContent = "compaction running…";
  const status = await act(() => api("POST", `session/${session.id}/compact`, {}));
  $("compact").disabled = false;
  if (status) panels.showCompaction(status);
  if (state.session?.id === session.id) reloadMessages(session.id);
});

async function abort() {
  if (state.session) await act(() => api("POST", `session/${state.session.id}/abort`));
}
$("abort").addEventListener("click", abort);

new Composer({ send, abort, busy: () => document.body.dataset.busy === "true" });
$("chat").addEventListener("file-error", (event) => toast(explain(event.detail)));
document.addEventListener("keydown", (event) => {
  if (event.altKey && event.key.toLowerCase() === "n") {
    event.preventDefault();
    $("new-session").click();
  }
});

function toggleSidebar(open) {
  document.body.classList.toggle("sidebar-open", open);
  $("toggle-sidebar").setAttribute("aria-expanded", String(open));
  if (open) $("new-session").focus();
}
$("toggle-sidebar").addEventListener("click", () => toggleSidebar(!document.body.classList.contains("sidebar-open")));
// Phone width: a tap on the dimmed chat or Escape closes the list again.
$("main").addEventListener("click", (event) => {
  if (document.body.classList.contains("sidebar-open") && !event.target.closest("#toggle-sidebar")) toggleSidebar(false);
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && document.body.classList.contains("sidebar-open")) toggleSidebar(false);
});

// -- the token field (Supabase JWTs) ----------------------------------------------------------------
if (server.jwt) {
  $("token-form").hidden = false;
  $("token-input").value = getToken();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken($("token-input").value.trim());
    location.reload();
  });
}

// -- the event bus: session list, busy state, todos, compaction -----------------------------------
function onBusEvent(event) {
  const props = event.properties ?? {};
  const sessionId = props.session_id ?? props.info?.id;
  const current = state.session?.id === sessionId;
  switch (event.type) {
    case "session.created":
    case "session.updated":
      list.upsert(props.info);
      if (current) {
        state.session = { ...state.session, ...props.info };
        if (document.activeElement !== $("title-input")) $("title-input").value = props.info.title ?? "";
      }
      break;
    case "session.deleted":
      list.remove(sessionId);
      if (current) openSession(null);
      break;
    case "session.status":
      list.status(sessionId, props.status);
      if (current) {
        state.session.status = props.status;
        showStatus(props.status);
      }
      break;
    case "todo.updated":
      if (current) panels.showTodos(props.todos ?? []);
      break;
    case "session.compacted":
      if (current) act(() => panels.refreshCompaction(sessionId));
      break;
  }
}

async function followBus() {
  let delay = 500;
  for (;;) {
    try {
      await stream("GET", "event", {
        onOpen: () => {
          delay = 500;
          $("connection").textContent = "live";
          $("connection").dataset.state = "live";
          // Whatever happened while the bus was down: fetch the list again.
          act(async () => list.set(await api("GET", "session?limit=200")));
        },
        onFrame: (frame) => typeof frame.data === "object" && onBusEvent(frame.data),
      });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) toast(explain(error));
    }
    $("connection").textContent = "reconnecting…";
    $("connection").dataset.state = "reconnecting";
    await wait(delay);
    delay = Math.min(delay * 2, 8000);
  }
}

// -- start ----------------------------------------------------------------------------------------
showSession(null);
act(panels.loadModels);
followBus();
(async () => {
  const sessions = await act(() => api("GET", "session?limit=200"));
  list.set(sessions ?? []);
  const wanted = location.hash.slice(1);
  if (wanted) await openSession(wanted);
})();
