// ClusterTree: the hierarchy as a collapsible list with sizes, descriptions and a search box.
// Traits (see clio_lab/widgets/tree.py): tree (nested nodes), selected (node id), query (search text).
// Every name and description is set with textContent, never as HTML: cluster texts are data, not markup.

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function matches(node, q) {
  if (!q) return true;
  const hay = `${node.name} ${node.description || ""}`.toLowerCase();
  return hay.includes(q);
}

function render({ model, el: root }) {
  root.classList.add("clio-tree");
  const search = el("input", "clio-tree-search");
  search.type = "search";
  search.placeholder = "Search clusters";
  search.setAttribute("aria-label", "Search clusters");
  const list = el("div", "clio-tree-list");
  list.setAttribute("role", "tree");
  root.append(search, list);
  const open = new Set();
  const rows = new Map();

  function draw() {
    const tree = model.get("tree") || [];
    const q = (model.get("query") || "").trim().toLowerCase();
    const selected = model.get("selected");
    list.replaceChildren();
    rows.clear();
    const total = tree.reduce((s, n) => s + (n.size || 0), 0) || 1;

    // a node is shown when it or any descendant matches; matching descendants open their ancestors
    function visible(node) {
      const kids = (node.children || []).map(visible).some(Boolean);
      return matches(node, q) || kids;
    }

    function add(node, depth, parentEl) {
      if (!visible(node)) return;
      const kids = node.children || [];
      const isOpen = open.has(node.id) || (q && kids.some(visible));
      const row = el("div", "clio-tree-row");
      row.setAttribute("role", "treeitem");
      row.dataset.id = node.id;
      row.style.paddingLeft = `${depth * 14 + 4}px`;
      if (node.id === selected) row.classList.add("selected");
      if (node.withheld) row.classList.add("withheld");
      const toggle = el("span", "clio-tree-toggle", kids.length ? (isOpen ? "▾" : "▸") : "·");
      const name = el("span", "clio-tree-name", node.name);
      const size = el("span", "clio-tree-size", String(node.size));
      const bar = el("span", "clio-tree-bar");
      bar.style.width = `${Math.max(2, Math.round(60 * node.size / total))}px`;
      row.title = node.description || "";
      row.append(toggle, name, bar, size);
      toggle.addEventListener("click", (ev) => {
        ev.stopPropagation();
        if (open.has(node.id)) open.delete(node.id); else open.add(node.id);
        draw();
      });
      row.addEventListener("click", () => {
        model.set("selected", node.id === model.get("selected") ? "" : node.id);
        model.save_changes();
      });
      parentEl.append(row);
      rows.set(node.id, row);
      if (node.id === selected && node.description) {
        parentEl.append(el("div", "clio-tree-desc", node.description));
      }
      if (isOpen) for (const k of kids) add(k, depth + 1, parentEl);
    }
    for (const node of tree) add(node, 0, list);
    if (!list.childElementCount) list.append(el("div", "clio-tree-empty", "No cluster matches."));
  }

  // selecting from Python opens the node's ancestors so that it can be seen
  function openPathTo(id) {
    const path = [];
    function walk(nodes) {
      for (const n of nodes) {
        path.push(n.id);
        if (n.id === id || walk(n.children || [])) return true;
        path.pop();
      }
      return false;
    }
    if (walk(model.get("tree") || [])) path.slice(0, -1).forEach((p) => open.add(p));
  }

  search.value = model.get("query") || "";
  search.addEventListener("input", () => {
    model.set("query", search.value);
    model.save_changes();
  });
  model.on("change:tree", draw);
  model.on("change:query", () => {
    if (search.value !== model.get("query")) search.value = model.get("query");
    draw();
  });
  model.on("change:selected", () => {
    openPathTo(model.get("selected"));
    draw();
    const row = rows.get(model.get("selected"));
    if (row && row.scrollIntoView) row.scrollIntoView({ block: "nearest" });
  });
  openPathTo(model.get("selected"));
  draw();
}

export default { render };
