// The session list: newest first, titles, and a live busy marker (fed by the /event bus).

import { h } from "./markdown.js";

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

function ago(iso) {
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  const steps = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"], [4.35, "week"], [12, "month"]];
  let value = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return relative.format(Math.round(value), unit);
    value /= size;
  }
  return relative.format(Math.round(value), "year");
}

export class SessionList {
  constructor(root, onSelect) {
    this.root = root;
    this.onSelect = onSelect;
    this.sessions = new Map();
    this.current = null;
    root.addEventListener("keydown", (event) => this.keys(event));
  }

  set(sessions) {
    this.sessions = new Map(sessions.map((session) => [session.id, session]));
    this.render();
  }

  upsert(session) {
    const known = this.sessions.get(session.id);
    this.sessions.set(session.id, { ...known, ...session });
    this.render();
  }

  remove(id) {
    this.sessions.delete(id);
    this.render();
  }

  status(id, status) {
    const session = this.sessions.get(id);
    if (!session) return;
    session.status = status;
    this.render();
  }

  select(id) {
    this.current = id;
    this.render();
  }

  ordered() {
    return [...this.sessions.values()].sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1));
  }

  render() {
    const focused = document.activeElement?.closest?.("li")?.dataset.id;
    const items = this.ordered().map((session) => {
      const busy = session.status === "busy";
      const button = h(
        "button",
        { type: "button", class: "session", "aria-current": session.id === this.current ? "true" : null, onclick: () => this.onSelect(session.id) },
        h("span", { class: "session-title" }, session.title || "Untitled session"),
        h("span", { class: "session-meta" }, h("span", { class: `dot${busy ? " busy" : ""}`, title: busy ? "busy" : "idle" }), busy ? "busy · " : "", ago(session.updated_at)),
      );
      return h("li", { dataset: { id: session.id, status: session.status } }, button);
    });
    if (!items.length) items.push(h("li", { class: "empty" }, "No sessions yet."));
    this.root.replaceChildren(...items);
    if (focused) this.root.querySelector(`li[data-id="${CSS.escape(focused)}"] button`)?.focus();
  }

  keys(event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const buttons = [...this.root.querySelectorAll("button.session")];
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    event.preventDefault();
    buttons[Math.max(0, Math.min(buttons.length - 1, index + (event.key === "ArrowDown" ? 1 : -1)))].focus();
  }
}
