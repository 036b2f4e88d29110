// The session header's panels: model picker, session cost, compaction status, todos.

import { api } from "./api.js";
import { formatCost, formatUsage } from "./chat.js";
import { h } from "./markdown.js";

const $ = (id) => document.getElementById(id);
const MODEL_KEY = "opencode-playground-model";

/** Fill the model picker from /provider (the providers whose keys are configured). */
export async function loadModels() {
  const select = $("model-select");
  const providers = await api("GET", "provider");
  const usable = providers.filter((provider) => provider.available);
  const groups = await Promise.all(
    usable.map(async (provider) => {
      const models = await api("GET", `provider/${encodeURIComponent(provider.id)}/model`);
      const group = h("optgroup", { label: provider.name || provider.id });
      for (const model of models) {
        const value = JSON.stringify([model.provider_id ?? provider.id, model.id]);
        group.append(h("option", { value }, model.name || model.id));
      }
      return group;
    }),
  );
  select.append(...groups);
  const saved = localStorage.getItem(MODEL_KEY);
  if (saved && [...select.options].some((option) => option.value === saved)) select.value = saved;
  select.addEventListener("change", () => localStorage.setItem(MODEL_KEY, select.value));
}

/** The picked model as MessageRequest fields ({} for the session's default). */
export function pickedModel() {
  const value = $("model-select").value;
  if (!value) return {};
  const [provider_id, model_id] = JSON.parse(value);
  return { provider_id, model_id };
}

export function showDefaultModel(session) {
  const first = $("model-select").options[0];
  first.textContent = session?.model_id ? `Session default (${session.model_id})` : "Session default model";
}

export async function refreshCost(sessionId) {
  const cost = await api("GET", `session/${sessionId}/cost`);
  $("session-cost").textContent = `Session ${formatCost(cost.total_cost, cost.priced !== false)} · ${formatUsage(cost)}`;
  $("session-cost").dataset.cost = String(cost.total_cost);
}

export async function refreshCompaction(sessionId) {
  showCompaction(await api("GET", `session/${sessionId}/compaction-status`));
}

export function showCompaction(status) {
  const parts = [`compaction ${status.status}`];
  const count = status.compaction_count;
  if (count) parts.push(`compacted ${count} time${count === 1 ? "" : "s"}`);
  if (status.remaining_until_compaction != null) parts.push(`${status.remaining_until_compaction} msgs to go`);
  if (status.last_error) parts.push(`last error: ${status.last_error}`);
  const el = $("compaction");
  el.textContent = parts.join(" · ");
  el.dataset.status = status.status;
}

const TODO_MARK = { pending: "○", in_progress: "◐", completed: "●", cancelled: "×" };

export function showTodos(todos) {
  const panel = $("todos");
  panel.hidden = !todos.length;
  const done = todos.filter((todo) => todo.status === "completed").length;
  panel.querySelector("summary").textContent = `Todos (${done}/${todos.length})`;
  $("todo-list").replaceChildren(
    ...todos.map((todo) =>
      h("li", { class: `todo ${todo.status}`, dataset: { priority: todo.priority } }, h("span", { class: "mark", "aria-hidden": "true" }, TODO_MARK[todo.status] ?? "○"), h("span", {}, todo.content), h("small", {}, ` ${todo.status.replace("_", " ")}`)),
    ),
  );
}

export async function refreshTodos(sessionId) {
  showTodos(await api("GET", `session/${sessionId}/todo`));
}
