// The files a user message carries, drawn in the conversation: image thumbnails (a click opens
// the full size in a dialog) and PDF names (a click downloads the file).
//
// A stored file part names its bytes by metadata.file_id, served by GET /session/{id}/file/{id}
// behind the same auth as every API call. An <img src> could not carry a user token, so the bytes
// are fetched with the page's credentials and shown from blob: URLs (the page's CSP allows blob:
// images, nothing remote). A message sent from this page shows the picked files themselves.

import { fetchBlob } from "./api.js";
import { h } from "./markdown.js";

export const ACCEPTED = {
  "image/png": "PNG",
  "image/jpeg": "JPEG",
  "image/gif": "GIF",
  "image/webp": "WebP",
  "application/pdf": "PDF",
};

let session = null;
const loaded = new Map(); // file_id -> Promise of an object URL, for the open session's files

/** The open session: the files of the one before are let go. */
export function setSession(id) {
  if (id === session) return;
  session = id;
  for (const promise of loaded.values()) promise.then((url) => URL.revokeObjectURL(url), () => {});
  loaded.clear();
}

export function formatSize(bytes) {
  if (bytes == null) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export const isImage = (mime) => typeof mime === "string" && mime.startsWith("image/");

/** The file parts of a stored message, as {mime, filename, size, fileId?, remote?}. */
export function storedFiles(parts) {
  return (parts ?? [])
    .filter((part) => part.type === "file")
    .map((part) => {
      const meta = part.metadata ?? {};
      return { mime: meta.mime, filename: meta.filename || part.content || "", size: meta.size, fileId: meta.file_id, remote: meta.url };
    });
}

/** The object URL of a file's bytes: its own (picked here) or fetched once per session. */
function objectUrl(file) {
  if (file.url) return Promise.resolve(file.url);
  const id = file.fileId;
  if (!loaded.has(id)) {
    const path = `session/${encodeURIComponent(session)}/file/${encodeURIComponent(id)}`;
    const promise = fetchBlob(path).then((blob) => URL.createObjectURL(blob));
    promise.catch(() => loaded.delete(id)); // tried again the next time it is drawn
    loaded.set(id, promise);
  }
  return loaded.get(id);
}

// Thumbnails load when they scroll into view.
const lazy = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    lazy.unobserve(entry.target);
    entry.target.load();
  }
}, { rootMargin: "200px" });

function thumbnail(file, name) {
  const img = h("img", { alt: name, class: "thumb" });
  const button = h("button", { type: "button", class: "file thumb-button", title: `${name} (${formatSize(file.size)})`, "aria-label": `Open ${name} full size`, dataset: { state: "loading" } }, img);
  button.load = () =>
    objectUrl(file).then(
      (url) => {
        img.src = url;
        button.dataset.state = "loaded";
      },
      () => {
        button.dataset.state = "failed";
        button.disabled = true;
        button.replaceChildren(h("span", { class: "file-name" }, `${name} (unavailable)`));
      },
    );
  button.addEventListener("click", async () => openImage(await objectUrl(file), name));
  lazy.observe(button);
  return button;
}

function documentLink(file, name) {
  const label = [h("span", { class: "file-kind" }, ACCEPTED[file.mime] ?? "file"), h("span", { class: "file-name" }, name), h("span", { class: "file-size" }, formatSize(file.size))];
  if (file.remote) {
    // A file given by https URL: the page does not fetch other hosts; the link opens it.
    const href = String(file.remote).startsWith("https://") ? file.remote : null;
    return h("a", { class: "file doc", href, target: "_blank", rel: "noopener noreferrer nofollow" }, ...label);
  }
  const button = h("button", { type: "button", class: "file doc", "aria-label": `Download ${name}` }, ...label);
  button.addEventListener("click", async () => {
    try {
      save(await objectUrl(file), name);
    } catch (error) {
      button.dispatchEvent(new CustomEvent("file-error", { bubbles: true, detail: error }));
    }
  });
  return button;
}

function save(url, name) {
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
}

/** The strip of a message's files (null when it has none). */
export function fileStrip(files) {
  if (!files.length) return null;
  const strip = h("div", { class: "files", role: "group", "aria-label": "Attached files" });
  for (const file of files) {
    const name = file.filename || (isImage(file.mime) ? "image" : "file");
    strip.append(isImage(file.mime) && !file.remote ? thumbnail(file, name) : documentLink(file, name));
  }
  return strip;
}

// -- the full-size view -----------------------------------------------------------------------------
let viewer = null;

function openImage(url, name) {
  if (!viewer) {
    const close = h("button", { type: "button", class: "secondary", onclick: () => viewer.close() }, "Close");
    viewer = h(
      "dialog",
      { class: "viewer", "aria-label": "Image" },
      h("div", { class: "viewer-bar" }, h("span", { class: "viewer-name" }), h("a", { class: "viewer-save" }, "Download"), close),
      h("img", { class: "viewer-image", alt: "" }),
    );
    // A click on the dimmed backdrop (the dialog itself, not its content) closes it too.
    viewer.addEventListener("click", (event) => event.target === viewer && viewer.close());
    document.body.append(viewer);
  }
  viewer.querySelector(".viewer-name").textContent = name;
  viewer.querySelector(".viewer-image").src = url;
  viewer.querySelector(".viewer-image").alt = name;
  const saveLink = viewer.querySelector(".viewer-save");
  saveLink.href = url;
  saveLink.download = name;
  viewer.showModal();
  viewer.querySelector("button").focus();
}
