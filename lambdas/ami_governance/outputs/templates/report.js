"use strict";
(() => {
  // Sorting: a header's button sorts its table by that column; numbers by data-value, text case-insensitively.
  const valueOf = (row, index, type) => {
    const cell = row.cells[index];
    const raw = cell.dataset.value ?? cell.textContent.trim();
    return type === "number" ? Number(raw) || 0 : raw.toLowerCase();
  };
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
        const rows = Array.from(body.rows).filter((row) => !row.classList.contains("placeholder"));
        rows.sort((a, b) => {
          const x = valueOf(a, index, type);
          const y = valueOf(b, index, type);
          const order = type === "number" ? x - y : x.localeCompare(y, undefined, { numeric: true });
          return ascending ? order : -order;
        });
        for (const row of rows) body.appendChild(row);
      });
    });
  }

  // Filtering the findings: every word of the text must appear in the row, and the kind must match.
  const text = document.getElementById("finding-filter");
  const kind = document.getElementById("kind-filter");
  const shown = document.getElementById("shown-count");
  const none = document.getElementById("no-match");
  const rows = Array.from(document.querySelectorAll("#findings tbody tr[data-kind]"));
  const apply = () => {
    const words = text.value.toLowerCase().split(/\s+/).filter(Boolean);
    const wanted = kind.value;
    let visible = 0;
    for (const row of rows) {
      const match = (!wanted || row.dataset.kind === wanted) && words.every((w) => row.dataset.search.includes(w));
      row.hidden = !match;
      if (match) visible += 1;
    }
    shown.textContent = String(visible);
    shown.dataset.shown = String(visible);
    if (none) none.hidden = visible !== 0 || rows.length === 0;
  };
  if (text && kind && shown) {
    text.addEventListener("input", apply);
    kind.addEventListener("change", apply);
    apply();
  }
})();
