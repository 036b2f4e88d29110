// Markdown to safe DOM: marked parses, DOMPurify sanitizes what it produced (model output is
// untrusted), and only the sanitized fragment is inserted. Links open in a new tab, without the
// opener; the page's CSP keeps remote images from loading at all.

import { Marked } from "./marked-18.3.0.esm.js";
import DOMPurify from "./purify-3.5.0.es.mjs";

const marked = new Marked({ gfm: true, breaks: false, async: false });

const PURIFY = {
  RETURN_DOM_FRAGMENT: true,
  USE_PROFILES: { html: true }, // no SVG or MathML from a model

  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe"],
  FORBID_ATTR: ["style"],
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** Replace el's children with the rendered markdown of text. */
export function renderMarkdown(el, text) {
  let fragment;
  try {
    fragment = DOMPurify.sanitize(marked.parse(text), PURIFY);
  } catch {
    el.textContent = text;
    return;
  }
  el.replaceChildren(fragment);
}

/** Element helper: h("div", {class: "x", onclick}, child, "text"); text is never parsed. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}
