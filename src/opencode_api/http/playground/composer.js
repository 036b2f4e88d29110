// The message box: Enter sends, Shift+Enter starts a new line, Esc aborts the running turn; and
// the files of the next message (the attach button, a drop onto the composer, a pasted image),
// shown as removable chips until it is sent. Files are checked here first (kind and size, the
// server's MAX_INPUT_BYTES default) and again by the server.

import { ACCEPTED, formatSize, isImage } from "./files.js";
import { h } from "./markdown.js";

const $ = (id) => document.getElementById(id);

export const MAX_BYTES = 20 * 1024 * 1024; // all the files of one message, decoded
const KINDS = "PNG, JPEG, GIF or WebP images and PDFs";

const dataUri = (file) =>
  new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error ?? new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });

/** The MessageRequest fields of a message: content alone, or parts (the text first, then files). */
export async function messageBody(text, files) {
  if (!files.length) return { content: text };
  const parts = text ? [{ type: "text", text }] : [];
  for (const { file } of files) {
    const part = { type: "file", mime: file.type, data: await dataUri(file) };
    if (file.name) part.filename = file.name;
    parts.push(part);
  }
  return { parts };
}

export class Composer {
  /** hooks: {send(text, files), abort(), busy()}; files: [{file, url, mime, filename, size}] */
  constructor(hooks) {
    this.hooks = hooks;
    this.form = $("composer");
    this.input = $("composer-input");
    this.chips = $("attachments");
    this.note = $("attach-error");
    this.picker = $("attach-input");
    this.files = [];
    this.picker.accept = Object.keys(ACCEPTED).join(",");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.form.requestSubmit();
      }
      if (event.key === "Escape" && this.hooks.busy()) this.hooks.abort();
    });
    $("attach").addEventListener("click", () => this.picker.click());
    this.picker.addEventListener("change", () => {
      this.add([...this.picker.files]);
      this.picker.value = "";
    });
    this.input.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (!files.length) return;
      // An image copied alone: attach it. With text alongside (a copied web page), the text is
      // pasted too.
      if (!event.clipboardData.types.includes("text/plain")) event.preventDefault();
      this.add(files);
    });
    const dragging = (on) => this.form.classList.toggle("dragging", on);
    const carriesFiles = (event) => event.dataTransfer?.types?.includes("Files");
    this.form.addEventListener("dragover", (event) => {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      dragging(true);
    });
    this.form.addEventListener("dragleave", (event) => {
      if (!this.form.contains(event.relatedTarget)) dragging(false);
    });
    // Files dropped next to the composer are not taken, and do not navigate away either.
    document.addEventListener("dragover", (event) => {
      if (!carriesFiles(event) || this.form.contains(event.target)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "none";
    });
    document.addEventListener("drop", (event) => carriesFiles(event) && event.preventDefault());
    this.form.addEventListener("drop", (event) => {
      dragging(false);
      if (!carriesFiles(event)) return;
      event.preventDefault();
      this.add([...event.dataTransfer.files]);
      this.input.focus();
    });
  }

  submit() {
    const text = this.input.value.trim();
    if (!text && !this.files.length) return;
    this.input.value = "";
    const files = this.files;
    this.files = [];
    this.say(null);
    this.draw();
    this.hooks.send(text, files);
  }

  total() {
    return this.files.reduce((sum, { size }) => sum + size, 0);
  }

  /** Take what fits: the rest is refused here, with the reason, before anything is sent. */
  add(list) {
    const refused = [];
    for (const file of list) {
      const name = file.name || "the pasted file";
      if (!ACCEPTED[file.type]) {
        refused.push(`“${name}” cannot be attached: only ${KINDS} can.`);
      } else if (file.size > MAX_BYTES) {
        refused.push(`“${name}” is too large (${formatSize(file.size)}): at most 20 MB.`);
      } else if (this.total() + file.size > MAX_BYTES) {
        refused.push(`“${name}” does not fit: a message's files may hold 20 MB in all.`);
      } else {
        const url = isImage(file.type) ? URL.createObjectURL(file) : null;
        this.files.push({ file, url, mime: file.type, filename: file.name, size: file.size });
      }
    }
    this.say(refused.join(" "));
    this.draw();
  }

  remove(entry) {
    const index = this.files.indexOf(entry);
    if (index < 0) return;
    this.files.splice(index, 1);
    if (entry.url) URL.revokeObjectURL(entry.url);
    this.draw();
    // The keyboard stays in the list: on the chip that took its place, else the message box.
    const buttons = this.chips.querySelectorAll("button.chip-remove");
    (buttons[Math.min(index, buttons.length - 1)] ?? this.input).focus();
  }

  say(message) {
    this.note.hidden = !message;
    this.note.textContent = message ?? "";
  }

  draw() {
    this.chips.hidden = !this.files.length;
    this.chips.replaceChildren(
      ...this.files.map((entry) => {
        const name = entry.filename || "image";
        const preview = entry.url
          ? h("img", { class: "chip-thumb", src: entry.url, alt: "" })
          : h("span", { class: "file-kind" }, ACCEPTED[entry.mime] ?? "file");
        const remove = h("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${name}`, title: `Remove ${name}`, onclick: () => this.remove(entry) }, "×");
        return h("li", { class: "chip", title: `${name} (${formatSize(entry.size)})` }, preview, h("span", { class: "chip-name" }, name), remove);
      }),
    );
  }
}
