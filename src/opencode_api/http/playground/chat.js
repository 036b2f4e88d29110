// The conversation: stored messages and live turn events rendered into one list.
//
// Turn events come from the session's stream in order; message_start (re)builds its assistant
// message from scratch, so a replay after a reload renders the same thing as the live turn did.

import { fileStrip, storedFiles } from "./files.js";
import { h, renderMarkdown } from "./markdown.js";

const num = new Intl.NumberFormat("en-US");

export function formatCost(cost, priced = true) {
  if (!priced) return "unpriced";
  if (!cost) return "$0";
  return cost < 0.01 ? `$${cost.toPrecision(2)}` : `$${cost.toFixed(4)}`;
}

export function formatUsage(usage) {
  if (!usage) return "";
  const parts = [`${num.format(usage.input_tokens ?? 0)} in`, `${num.format(usage.output_tokens ?? 0)} out`];
  if (usage.reasoning_tokens) parts.push(`${num.format(usage.reasoning_tokens)} reasoning`);
  if (usage.cache_read_tokens) parts.push(`${num.format(usage.cache_read_tokens)} cached`);
  return parts.join(" · ");
}

function pretty(value) {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

// A stored step keeps its tool calls ahead of its reasoning and text; a model streams them the
// other way round, and the live view shows them as they came: draw stored steps the same way.
const RANK = { reasoning: 0, text: 1, tool_call: 2 };

function streamOrder(parts) {
  const ordered = [];
  let step = [];
  const flush = () => {
    ordered.push(...step.sort((a, b) => (RANK[a.type] ?? 3) - (RANK[b.type] ?? 3)));
    step = [];
  };
  for (const part of parts) {
    if (part.type === "step_start") flush();
    else step.push(part);
  }
  flush();
  return ordered;
}

export class Chat {
  /** hooks: {regenerate(mid, content?), fork(mid), answer(qid, answers), reject(qid)} */
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.pending = []; // local user bubbles not yet matched to a stored message
    this.dirty = new Set();
  }

  clear() {
    this.root.replaceChildren();
    this.pending = [];
  }

  byId(id) {
    return id ? this.root.querySelector(`article[data-id="${CSS.escape(id)}"]`) : null;
  }

  // -- stored messages ------------------------------------------------------------------------
  renderStored(messages) {
    this.clear();
    for (const message of messages) this.root.append(this.storedMessage(message));
    this.scroll(true);
  }

  storedMessage(message) {
    const el = this.article(message.role, message.id);
    if (message.role === "user") {
      this.setUserText(el, message.content);
      this.attachFiles(el, storedFiles(message.parts));
      if (message.status === "queued") this.badge(el, "queued");
    } else {
      for (const part of streamOrder(message.parts ?? [])) {
        if (part.type === "text") this.textPart(el, "text", true).append(part.content ?? "");
        else if (part.type === "reasoning") this.textPart(el, "reasoning", true).append(part.content ?? "");
        else if (part.type === "tool_call") {
          const tool = this.toolPart(el, part.tool_call_id, part.tool_name, part.tool_args);
          if (part.tool_output != null || part.tool_status === "completed" || part.tool_status === "error")
            this.toolResult(tool, part.tool_output ?? "", part.tool_status === "error");
        }
      }
      if (message.error) this.errorPart(el, message.error);
      if (message.status === "running") this.badge(el, "running");
      else if (message.status !== "completed") this.badge(el, message.status);
      this.footer(el, message.usage, message.cost, message.finish, message.priced);
      this.flush();
    }
    if (message.compacted) el.classList.add("compacted");
    if (message.summary) this.badge(el, "summary");
    return el;
  }

  // -- local user messages --------------------------------------------------------------------
  addLocal(text, queued, files = []) {
    const el = this.article("user", null);
    this.setUserText(el, text);
    this.attachFiles(el, files);
    this.badge(el, queued ? "queued" : "sending");
    this.pending.push(el);
    this.root.append(el);
    this.scroll(true);
    return el;
  }

  /** The server stored the local bubble as message id (its turn's message_start said so). */
  bind(el, id) {
    this.pending = this.pending.filter((other) => other !== el);
    const existing = this.byId(id);
    if (existing && existing !== el) {
      el.remove();
      return existing;
    }
    el.dataset.id = id;
    this.badge(el, null);
    return el;
  }

  failLocal(el, message) {
    this.pending = this.pending.filter((other) => other !== el);
    this.badge(el, "failed");
    el.querySelector(".msg-foot").before(h("div", { class: "part error", role: "alert" }, message));
  }

  // -- turn events ----------------------------------------------------------------------------
  apply(event) {
    const el = event.type === "message_start" ? this.start(event) : this.assistant(event);
    switch (event.type) {
      case "reasoning":
        this.textPart(el, "reasoning").append(event.text);
        break;
      case "text":
        this.textPart(el, "text").append(event.text);
        break;
      case "tool_call": {
        const call = event.tool_call ?? {};
        this.toolPart(el, call.id, call.name, call.arguments);
        break;
      }
      case "tool_result": {
        const tool = el.querySelector(`details.tool[data-call="${CSS.escape(event.tool_call_id)}"]`);
        this.toolResult(tool ?? this.toolPart(el, event.tool_call_id, event.name, null), event.text, event.is_error);
        if (event.name === "question") this.closeQuestions(el);
        break;
      }
      case "question":
        this.question(el, event);
        break;
      case "step_finish":
        this.footer(el, event.usage, null, null, true);
        break;
      case "done":
        this.badge(el, event.stop_reason === "stop" ? null : event.stop_reason);
        this.footer(el, event.usage, event.cost, event.stop_reason, true);
        this.closeQuestions(el);
        break;
      case "error":
        this.badge(el, "error");
        this.errorPart(el, event.error ?? {});
        this.closeQuestions(el);
        break;
    }
    this.schedule();
  }

  start(event) {
    let user = this.byId(event.parent_id);
    if (!user && this.pending.length) user = this.bind(this.pending[0], event.parent_id);
    if (user) this.badge(user, null);
    let el = this.byId(event.message_id);
    if (el) {
      el.querySelector(".msg-body").replaceChildren();
      el.querySelector(".msg-foot").replaceChildren();
    } else {
      el = this.article("assistant", event.message_id);
    }
    if (user) user.after(el);
    else this.root.append(el);
    this.badge(el, "running");
    return el;
  }

  assistant(event) {
    let el = this.byId(event.message_id);
    if (!el) {
      el = this.article("assistant", event.message_id);
      this.root.append(el);
    }
    return el;
  }

  // -- building blocks ------------------------------------------------------------------------
  article(role, id) {
    const actions = h("span", { class: "msg-actions" });
    const el = h(
      "article",
      { class: `msg ${role}`, dataset: id ? { id } : {}, tabindex: "-1" },
      h("header", { class: "msg-head" }, h("span", { class: "role" }, role === "user" ? "You" : "Assistant"), h("span", { class: "badge", hidden: true }), actions),
      h("div", { class: "msg-body" }),
      h("footer", { class: "msg-foot" }),
    );
    const mid = () => el.dataset.id;
    if (role === "user") {
      actions.append(h("button", { type: "button", class: "link", title: "Edit this message and run the turn again", onclick: () => mid() && this.edit(el) }, "Edit"));
    } else {
      actions.append(h("button", { type: "button", class: "link", title: "Run this turn again", onclick: () => mid() && this.hooks.regenerate(mid()) }, "Regenerate"));
    }
    actions.append(h("button", { type: "button", class: "link", title: "A new session with the messages up to here", onclick: () => mid() && this.hooks.fork(mid()) }, "Fork"));
    return el;
  }

  setUserText(el, text) {
    el.dataset.text = text ?? "";
    el.querySelector(".msg-body").replaceChildren(text ? h("div", { class: "part plain" }, text) : "");
  }

  /** A user message's files, next to its text (an edit of the text keeps them). */
  attachFiles(el, files) {
    const strip = fileStrip(files);
    if (strip) el.querySelector(".msg-foot").before(strip);
  }

  edit(el) {
    const body = el.querySelector(".msg-body");
    if (body.querySelector("textarea")) return;
    const area = h("textarea", { class: "edit", rows: "3", "aria-label": "Edited message" });
    area.value = el.dataset.text ?? "";
    const cancel = () => this.setUserText(el, el.dataset.text ?? "");
    const submit = () => {
      const content = area.value.trim();
      if (content) this.hooks.regenerate(el.dataset.id, content);
    };
    area.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submit(); }
      if (e.key === "Escape") cancel();
    });
    body.replaceChildren(area, h("div", { class: "row" }, h("button", { type: "button", onclick: submit }, "Send edit"), h("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel")));
    area.focus();
  }

  badge(el, text) {
    const badge = el.querySelector(".badge");
    badge.hidden = !text;
    badge.textContent = text ?? "";
    badge.dataset.state = text ?? "";
    el.dataset.state = text ?? "";
  }

  /** The last part of the message when it is of this kind, else a new one; returns its text sink. */
  textPart(el, kind, fresh = false) {
    const body = el.querySelector(".msg-body");
    let part = body.lastElementChild;
    if (fresh || !part || !part.classList.contains(kind)) {
      if (kind === "reasoning") {
        part = h("details", { class: "part reasoning" }, h("summary", {}, "Reasoning"), h("div", { class: "markdown" }));
      } else {
        part = h("div", { class: "part text markdown" });
      }
      part.source = [];
      body.append(part);
    }
    const sink = { append: (text) => { part.source.push(text); this.dirty.add(part); } };
    return sink;
  }

  toolPart(el, id, name, args) {
    const part = h(
      "details",
      { class: "part tool", dataset: { call: id ?? "", status: "running" } },
      h("summary", {}, h("span", { class: "tool-name" }, name ?? "tool"), " ", h("span", { class: "tool-status" }, "running")),
      h("div", { class: "tool-label" }, "Arguments"),
      h("pre", { class: "tool-args" }, pretty(args ?? {})),
    );
    el.querySelector(".msg-body").append(part);
    return part;
  }

  toolResult(part, text, isError) {
    part.dataset.status = isError ? "error" : "completed";
    part.querySelector(".tool-status").textContent = isError ? "error" : "done";
    part.querySelector(".tool-output")?.remove();
    part.append(h("div", { class: "tool-label" }, isError ? "Error" : "Result"), h("pre", { class: "tool-output" }, text ?? ""));
  }

  errorPart(el, error) {
    el.querySelector(".msg-body").append(h("div", { class: "part error", role: "alert" }, `${error.type ?? "error"}: ${error.message ?? ""}`));
  }

  question(el, event) {
    const form = h("form", { class: "part question", dataset: { qid: event.question_id } });
    (event.questions ?? []).forEach((item, index) => {
      const kind = item.multiple ? "checkbox" : "radio";
      const set = h("fieldset", {}, h("legend", {}, item.header ? `${item.header}: ` : "", item.question));
      for (const option of item.options ?? []) {
        set.append(h("label", { class: "option" }, h("input", { type: kind, name: `q${index}`, value: option.label }), h("span", {}, option.label), option.description ? h("small", {}, option.description) : null));
      }
      set.append(h("input", { type: "text", class: "other", name: `q${index}-other`, placeholder: "Other answer", "aria-label": "Other answer" }));
      form.append(set);
    });
    const reject = h("button", { type: "button", class: "secondary", onclick: () => this.hooks.reject(event.question_id) }, "Dismiss");
    form.append(h("div", { class: "row" }, h("button", { type: "submit" }, "Answer"), reject));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const answers = [...form.querySelectorAll("fieldset")].map((set, index) => {
        const picked = [...set.querySelectorAll(`input[name="q${index}"]:checked`)].map((input) => input.value);
        const other = set.querySelector(".other").value.trim();
        return other ? [...picked, other] : picked;
      });
      this.hooks.answer(event.question_id, answers);
    });
    el.querySelector(".msg-body").append(form);
    // Keyboard users land on the answer, unless they are typing something else.
    const typing = document.activeElement?.matches?.("textarea, input") && document.activeElement.value;
    if (!typing) form.querySelector("input")?.focus({ preventScroll: true });
  }

  closeQuestions(el) {
    for (const form of el.querySelectorAll("form.question:not(.closed)")) {
      form.classList.add("closed");
      for (const control of form.querySelectorAll("input, button")) control.disabled = true;
    }
  }

  footer(el, usage, cost, stop, priced) {
    const foot = el.querySelector(".msg-foot");
    const items = [formatUsage(usage)];
    if (cost != null) items.push(formatCost(cost, priced !== false));
    if (stop && stop !== "stop") items.push(stop);
    foot.textContent = items.filter(Boolean).join(" · ");
  }

  // -- rendering ------------------------------------------------------------------------------
  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.flush();
    });
  }

  flush() {
    const stick = this.atBottom();
    for (const part of this.dirty) {
      const target = part.classList.contains("reasoning") ? part.querySelector(".markdown") : part;
      renderMarkdown(target, part.source.join(""));
    }
    this.dirty.clear();
    this.scroll(stick);
  }

  atBottom() {
    const scroller = this.root.parentElement;
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  scroll(force) {
    if (force) this.root.parentElement.scrollTop = this.root.parentElement.scrollHeight;
  }
}
