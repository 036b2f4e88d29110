// Following one session's stream (GET /session/{id}/stream): the single source of the live
// conversation. It starts with after=0, so the running turn is replayed from its message_start
// (a reload mid-turn misses nothing), and resumes a broken connection with Last-Event-ID.
//
// The replay buffer may also hold turns that are over (drawn from the stored list already) and
// turns whose messages are gone (reverted by a regenerate, deleted): an event of a message the
// page does not know holds the stream until the message list says what it is.

import { api, ApiError, stream } from "./api.js";

const LIVE = new Set(["running", "queued"]);

const wait = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

export class SessionFeed {
  /** hooks: {event(event), state("open"|"reconnecting"), failed(error)} */
  constructor(sessionId, chat, hooks) {
    this.sessionId = sessionId;
    this.chat = chat;
    this.hooks = hooks;
    this.controller = new AbortController();
    this.lastEventId = null;
    this.settled = new Set(); // finished messages drawn from the store: their replay is skipped
    this.ghosts = new Set(); // messages that are gone
    this.live = new Set(); // looked up: running, draw its events
    this.held = null; // events waiting while a message is looked up
  }

  /** Messages drawn from the store: the finished ones need no replay. */
  stored(messages) {
    for (const message of messages) if (!LIVE.has(message.status)) this.settled.add(message.id);
  }

  stop() {
    this.controller.abort();
  }

  async run() {
    const { signal } = this.controller;
    let delay = 500;
    while (!signal.aborted) {
      const resume = this.lastEventId;
      try {
        await stream("GET", `session/${this.sessionId}/stream${resume == null ? "?after=0" : ""}`, {
          lastEventId: resume,
          signal,
          onOpen: () => {
            delay = 500;
            this.hooks.state("open");
          },
          onFrame: (frame) => this.frame(frame),
        });
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError && error.status !== 503) {
          this.hooks.failed(error);
          return;
        }
      }
      if (signal.aborted) return;
      this.hooks.state("reconnecting");
      await wait(delay, signal);
      delay = Math.min(delay * 2, 8000);
    }
  }

  frame(frame) {
    if (this.controller.signal.aborted || typeof frame.data !== "object" || !frame.data) return;
    if (frame.id != null) {
      const id = Number(frame.id);
      if (this.lastEventId != null && id <= this.lastEventId) return; // seen already
      this.lastEventId = id;
    }
    if (this.held) this.held.push(frame.data);
    else this.handle(frame.data);
  }

  handle(event) {
    const id = event.message_id;
    if (!id || this.ghosts.has(id) || this.settled.has(id)) return;
    if (!this.chat.byId(id) && !(event.type === "message_start" && this.unanswered(event.parent_id))) {
      this.held = [event];
      this.lookUp(id).finally(() => this.drain());
      return;
    }
    this.deliver(event);
  }

  /** A user message on the page with no answer after it (or one of this page's bubbles still on
   * its way): a turn starting for it is live, even one that never reached the store (aborted
   * while queued). */
  unanswered(parentId) {
    const user = this.chat.byId(parentId);
    if (!user) return this.chat.pending.length > 0; // a bubble sent from here, not yet bound
    let next = user.nextElementSibling;
    while (next?.hidden) next = next.nextElementSibling; // what a regenerate is replacing
    return !(next && next.classList.contains("assistant"));
  }

  deliver(event) {
    this.chat.apply(event);
    this.hooks.event(event);
  }

  drain() {
    if (this.controller.signal.aborted) return;
    const queue = this.held ?? [];
    this.held = null;
    while (queue.length) {
      if (this.held) {
        this.held.push(...queue);
        return;
      }
      const event = queue.shift();
      const id = event.message_id;
      if (this.ghosts.has(id) || this.settled.has(id)) continue;
      if (this.chat.byId(id) || this.live.has(id)) this.deliver(event);
      else this.handle(event);
    }
  }

  async lookUp(id) {
    // The list, not GET .../message/{mid}: that one still answers for messages a regenerate or
    // revert hid. A message the stream just started is among the newest.
    let page;
    try {
      const path = `session/${this.sessionId}/message?order=desc&limit=50`;
      page = await api("GET", path, undefined, { signal: this.controller.signal });
    } catch {
      this.live.add(id); // cannot tell: draw it rather than lose it
      return;
    }
    const message = page.messages.find((listed) => listed.id === id);
    if (!message) {
      this.ghosts.add(id);
      return;
    }
    this.live.add(id);
    const parent = message.parent_id;
    if (parent && !this.chat.byId(parent) && !this.chat.pending.length) {
      // A turn sent from elsewhere, or a regenerate's new user message: draw it first.
      const user = page.messages.find((listed) => listed.id === parent);
      if (user) this.chat.root.append(this.chat.storedMessage(user));
    }
    if (!LIVE.has(message.status)) {
      // Over already (it ended between the list and the stream): the store has all of it.
      this.settled.add(id);
      const el = this.chat.storedMessage(message);
      const user = this.chat.byId(parent);
      if (user) user.after(el);
      else this.chat.root.append(el);
      this.hooks.event({ type: "done", message_id: id });
    }
  }
}
