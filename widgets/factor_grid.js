// Factor-grid selector: a 2-D grid of factor-level cells showing n and the success
// rate; clicking a cell selects it. An anywidget front-end module (AFM): it only uses
// model.get / model.set / model.save_changes / model.on, so the same file runs in
// Panel's AnyWidgetComponent (notebook, `panel serve`, saved HTML) and as an
// anywidget.AnyWidget in Jupyter.
//
// Model traits
//   cells     [{x, y, n, k, rate, lo, hi}]   one entry per cell
//   x_title   label of the columns' factor(s)
//   y_title   label of the rows' factor(s)
//   selected  {x, y, t}                      written on click (t makes repeated clicks distinct)
//
// Every label is inserted with textContent: factor values are data, never markup.

const get = (obj, key) => (obj instanceof Map ? obj.get(key) : obj?.[key]);

function color(rate) {
  // red (0) → amber (0.5) → green (1), as the heatmap's RdYlGn
  if (rate === null || rate === undefined || Number.isNaN(rate)) return "#eeeeee";
  const r = Math.max(0, Math.min(1, rate));
  const hue = 120 * r;
  return `hsl(${hue.toFixed(0)}, 62%, ${(78 - 18 * Math.abs(r - 0.5)).toFixed(0)}%)`;
}

function fmt(v) {
  return v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(2);
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "wb-factor-grid";
  el.appendChild(root);

  function draw() {
    const cells = Array.from(model.get("cells") || []);
    const sel = model.get("selected");
    const selX = sel ? get(sel, "x") : undefined;
    const selY = sel ? get(sel, "y") : undefined;
    const xs = [...new Set(cells.map((c) => String(get(c, "x"))))].sort();
    const ys = [...new Set(cells.map((c) => String(get(c, "y"))))].sort();
    const byKey = new Map(cells.map((c) => [`${get(c, "x")}\u0000${get(c, "y")}`, c]));

    root.replaceChildren();
    const title = document.createElement("div");
    title.className = "wb-fg-title";
    title.textContent = `${model.get("y_title") || "rows"} × ${model.get("x_title") || "columns"}`;
    root.appendChild(title);

    const grid = document.createElement("div");
    grid.className = "wb-fg-grid";
    grid.style.gridTemplateColumns = `max-content repeat(${Math.max(xs.length, 1)}, minmax(5.5rem, 1fr))`;
    grid.appendChild(document.createElement("div"));
    for (const x of xs) {
      const h = document.createElement("div");
      h.className = "wb-fg-colhead";
      h.textContent = x;
      grid.appendChild(h);
    }
    for (const y of ys) {
      const h = document.createElement("div");
      h.className = "wb-fg-rowhead";
      h.textContent = y;
      grid.appendChild(h);
      for (const x of xs) {
        const c = byKey.get(`${x}\u0000${y}`);
        const cell = document.createElement("div");
        cell.className = "wb-fg-cell";
        if (!c) {
          cell.classList.add("wb-fg-empty");
          cell.textContent = "n=0";
          grid.appendChild(cell);
          continue;
        }
        const rate = get(c, "rate");
        cell.dataset.x = x;
        cell.dataset.y = y;
        cell.setAttribute("role", "button");
        cell.tabIndex = 0;
        cell.style.background = color(rate);
        cell.title = `${y} · ${x}: ${fmt(rate)} [${fmt(get(c, "lo"))}, ${fmt(get(c, "hi"))}], ${get(c, "k")}/${get(c, "n")} runs`;
        if (x === String(selX) && y === String(selY)) cell.classList.add("wb-fg-selected");
        const big = document.createElement("span");
        big.className = "wb-fg-rate";
        big.textContent = fmt(rate);
        const small = document.createElement("span");
        small.className = "wb-fg-n";
        small.textContent = `${get(c, "k")}/${get(c, "n")}`;
        cell.append(big, small);
        const choose = () => {
          model.set("selected", { x, y, t: Date.now() });
          model.save_changes();
        };
        cell.addEventListener("click", choose);
        cell.addEventListener("keydown", (ev) => {
          if (ev.key === "Enter" || ev.key === " ") {
            ev.preventDefault();
            choose();
          }
        });
        grid.appendChild(cell);
      }
    }
    root.appendChild(grid);
  }

  draw();
  const events = ["change:cells", "change:selected", "change:x_title", "change:y_title"];
  for (const ev of events) model.on(ev, draw);
  // AFM cleanup callback (Panel calls it when the view is removed, e.g. on a tab switch)
  return () => {
    for (const ev of events) model.off(ev, draw);
    root.remove();
  };
}

export default { render };
