"use strict";
(() => {
  // Sorting: a header's button sorts its table by that column; numbers by data-value, text case-insensitively.
  // Each row's key is read once per sort and the rows move in one fragment: a large report has thousands.
  const valueOf = (row, index, type) => {
    const cell = row.cells[index];
    const raw = cell.dataset.value ?? cell.textContent.trim();
    return type === "number" ? Number(raw) || 0 : raw.toLowerCase();
  };
  const sorted = new Map(); // table -> callback after its rows moved
  for (const table of document.querySelectorAll("table[data-sortable]")) {
    const headers = Array.from(table.tHead.rows[0].cells);
    headers.forEach((th, index) => {
      const button = th.querySelector("button");
      if (!button) return;
      button.addEventListener("click", () => {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        for (const other of headers) other.removeAttribute("aria-sort");
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const type = th.dataset.type || "text";
        const body = table.tBodies[0];
        const keyed = Array.from(body.rows)
          .filter((row) => !row.classList.contains("placeholder"))
          .map((row) => [valueOf(row, index, type), row]);
        keyed.sort(([x], [y]) => {
          const order = type === "number" ? x - y : x.localeCompare(y, undefined, { numeric: true });
          return ascending ? order : -order;
        }); // stable: ties keep their previous order
        const fragment = document.createDocumentFragment();
        for (const [, row] of keyed) fragment.appendChild(row);
        body.prepend(fragment);
        (sorted.get(table) || (() => {}))();
      });
    });
  }

  // Filtering the findings: every word of the text must appear in the row (as shown), and the kind must match.
  // Only the first LIMIT matches are displayed until "Show all": laying out ten thousand rows takes the browser
  // seconds, hiding them costs nothing.
  const table = document.getElementById("findings");
  const text = document.getElementById("finding-filter");
  const kind = document.getElementById("kind-filter");
  const shown = document.getElementById("shown-count");
  const none = document.getElementById("no-match");
  const more = document.getElementById("show-all");
  if (!table || !text || !kind || !shown) return;
  const limit = Number(table.dataset.limit) || Infinity;
  let showAll = false;
  const texts = new Map();
  const textOf = (row) => {
    if (!texts.has(row)) texts.set(row, row.textContent.toLowerCase());
    return texts.get(row);
  };
  const apply = () => {
    const words = text.value.toLowerCase().split(/\s+/).filter(Boolean);
    const wanted = kind.value;
    let matches = 0;
    const rows = table.tBodies[0].querySelectorAll("tr[data-kind]");
    for (const row of rows) {
      const match = (!wanted || row.dataset.kind === wanted) && words.every((w) => textOf(row).includes(w));
      if (match) matches += 1;
      row.hidden = !match || (!showAll && matches > limit);
    }
    shown.textContent = String(matches);
    shown.dataset.shown = String(matches);
    if (none) none.hidden = matches !== 0 || rows.length === 0;
    if (more) {
      more.hidden = showAll || matches <= limit;
      more.textContent = `Show all ${matches} (the first ${limit} are shown)`;
    }
  };
  text.addEventListener("input", apply);
  kind.addEventListener("change", apply);
  if (more) {
    more.addEventListener("click", () => {
      showAll = true;
      apply();
    });
  }
  sorted.set(table, apply);
  apply();
})();
