// decision-log web page: client-side filters and, when served live, new
// events from the server's event stream. No dependencies, nothing fetched
// but the stream.
"use strict";
(function () {
  const body = document.body;
  const space = body.dataset.space;
  const list = document.getElementById("decisions");
  const withdrawn = document.getElementById("withdrawn");
  const inputs = ["f-key", "f-tag", "f-actor", "f-text"].map((id) => document.getElementById(id));

  // One lowercased haystack per row, built once (and for each new row):
  // filtering 10,000 rows then touches no layout but `hidden`.
  const index = new Map();
  function remember(li) {
    let tags = [];
    try { tags = JSON.parse(li.dataset.tags || "[]"); } catch (e) { tags = []; }
    index.set(li, {
      key: (li.dataset.key || "").toLowerCase(),
      actor: (li.dataset.actor || "").toLowerCase(),
      tags: tags.map((t) => t.toLowerCase()),
      text: li.textContent.toLowerCase(),
    });
  }

  function filter() {
    if (!list) return;
    const [key, tag, actor, text] = inputs.map((i) => (i ? i.value.trim().toLowerCase() : ""));
    let shown = 0;
    // Over the index, not the live `children` collection: with 10,000 rows,
    // walking a live collection while changing its rows was quadratic.
    for (const [li, e] of index) {
      const ok = (!key || e.key.includes(key)) && (!actor || e.actor.includes(actor)) &&
        (!tag || e.tags.some((t) => t.includes(tag))) && (!text || e.text.includes(text));
      if (li.hidden === ok) li.hidden = !ok;
      if (ok) shown++;
    }
    const count = document.getElementById("f-count");
    if (count) count.textContent = shown + " of " + index.size + " shown";
    const none = document.getElementById("none");
    if (none) none.hidden = shown > 0 || index.size === 0;
  }

  function setCount(id, n) {
    const el = document.getElementById(id);
    if (el) el.textContent = String(n);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  // The file name the server and `dlog site` give a key's page.
  function keyFile(key) {
    let out = "";
    for (const b of new TextEncoder().encode(key)) {
      const c = String.fromCharCode(b);
      out += /[A-Za-z0-9_-]/.test(c) ? c : "~" + b.toString(16).toUpperCase().padStart(2, "0");
    }
    return out + ".html";
  }

  function when(ms) {
    return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function decisionItem(ev) {
    const b = ev.body;
    const h3 = el("h3", {}, el("a", { class: "key", href: "decisions/" + keyFile(b.key) }, b.key), " ",
      el("span", { class: "eq" }, "="), " ", el("span", { class: "choice" }, b.choice));
    if (typeof b.status === "string") h3.append(" ", el("span", { class: "status" }, b.status));
    const tags = Array.isArray(b.tags) ? b.tags.filter((t) => typeof t === "string") : [];
    if (tags.length) h3.append(" ", el("ul", { class: "tags", "aria-label": "Tags" }, ...tags.map((t) => el("li", {}, t))));
    const article = el("article", {}, h3);
    if (typeof b.title === "string") article.append(el("p", { class: "title" }, b.title));
    article.append(el("p", { class: "why" }, el("span", { class: "label" }, "Why"), " " + b.rationale));
    if (Array.isArray(b.rejected) && b.rejected.length) {
      article.append(el("ul", { class: "why-not" }, ...b.rejected.map((r) =>
        el("li", {}, el("span", { class: "label" }, "Why not"), " ", el("strong", {}, r.option), ": " + r.why))));
    }
    article.append(el("p", { class: "by" }, ev.actor + " · #" + ev.seq + " · ",
      el("time", { datetime: String(ev.at_ms) }, when(ev.at_ms))));
    return el("li", { class: "decision fresh", "data-key": b.key, "data-actor": ev.actor,
      "data-tags": JSON.stringify(tags), "data-seq": String(ev.seq) }, article);
  }

  function rowFor(container, key) {
    if (!container) return null;
    return Array.from(container.children).find((li) => li.dataset.key === key) || null;
  }

  function apply(ev) {
    const b = ev.body || {};
    if (ev.kind === "decide" && list) {
      const old = rowFor(list, b.key) || rowFor(withdrawn, b.key);
      if (old) { index.delete(old); old.remove(); }
      const li = decisionItem(ev);
      list.prepend(li);
      remember(li);
    } else if (ev.kind === "retract" && list) {
      const old = rowFor(list, b.key);
      if (old) {
        index.delete(old);
        old.remove();
        old.classList.add("fresh");
        if (withdrawn) withdrawn.prepend(old);
      }
    }
    if (list) {
      setCount("n-force", list.children.length);
      if (withdrawn) setCount("n-withdrawn", withdrawn.children.length);
      filter();
    }
    const timeline = document.getElementById("timeline");
    if (timeline && b.key === body.dataset.key && !document.getElementById("ev-" + ev.seq)) {
      const what = ev.kind === "decide" ? "Decided " + b.choice : "Withdrew the decision";
      const li = el("li", { id: "ev-" + ev.seq, class: "event fresh " + ev.kind, tabindex: "-1" },
        el("article", {}, el("h3", {}, "#" + ev.seq + " · " + what),
          el("p", { class: "why" }, el("span", { class: "label" }, "Why"), " " + b.rationale),
          el("p", { class: "by" }, ev.actor + " · " + when(ev.at_ms) + " · id " + ev.id)));
      timeline.prepend(li);
    }
  }

  if (list) {
    for (const li of Array.from(list.children)) remember(li);
    for (const i of inputs) if (i) i.addEventListener("input", filter);
    const form = document.querySelector("form.filters");
    if (form) form.addEventListener("submit", (e) => e.preventDefault());
    filter();
  }

  const status = document.getElementById("live");
  if (body.dataset.live === "true" && space && "EventSource" in window) {
    const root = body.dataset.root || "";
    let url = root + "v1/spaces/" + encodeURIComponent(space) + "/events/stream";
    if (body.dataset.seq) url += "?from=" + (Number(body.dataset.seq) + 1);
    const source = new EventSource(url);
    source.onopen = () => { if (status) status.textContent = "· live"; };
    source.onerror = () => { if (status) status.textContent = "· reconnecting…"; };
    source.onmessage = (m) => {
      try { apply(JSON.parse(m.data)); } catch (e) { /* a malformed message is skipped */ }
    };
  }
})();
