// The paper's entity–relationship graph, drawn with Cytoscape (vendored) and filled in live: a node per
// entity_extracted, an arrow per relationship_extracted. A canvas cannot take focus, so the list beside it names
// the same relationships as buttons; hovering an arrow, or hovering or focusing a button, shows its evidence.
import cytoscape from "../vendor/cytoscape/cytoscape.esm.min.mjs";
import { el } from "./ui.js";

// Node colours are graph.css's (--graph-MODEL, ...), so the legend and the canvas cannot disagree.
const css = getComputedStyle(document.documentElement);
const colorOf = (type) => css.getPropertyValue(`--graph-${type}`).trim() || "#5d6679";
// Text and its backdrop follow the page's scheme (app.css's --ink and --card, dark mode included).
const INK = css.getPropertyValue("--ink").trim() || "#1c2230";
const CARD = css.getPropertyValue("--card").trim() || "#ffffff";
const STYLE = [
  { selector: "node", style: { "background-color": (n) => colorOf(n.data("type")), label: "data(label)",
    "font-size": 13, "text-valign": "bottom", "text-margin-y": 3, width: 18, height: 18, color: INK,
    "text-wrap": "ellipsis", "text-max-width": 120 } },
  { selector: "node[?key]", style: { width: 26, height: 26, "border-width": 2, "border-color": "#7a5600" } },
  { selector: "edge", style: { width: 1.5, "line-color": "#9aa3b5", "target-arrow-color": "#9aa3b5",
    "target-arrow-shape": "triangle", "curve-style": "bezier" } },
  // Only the chosen arrow is labelled: the list names them all, and labels on every arrow overlap.
  { selector: "edge.active", style: { width: 3.5, "line-color": "#2f6fed", "target-arrow-color": "#2f6fed",
    label: "data(label)", "font-size": 12, color: INK, "text-rotation": "autorotate",
    "text-background-color": CARD, "text-background-opacity": 0.85, "z-index": 9 } },
];
const LAYOUT = { name: "cose", animate: false, fit: true, padding: 24, nodeDimensionsIncludeLabels: true,
  componentSpacing: 40, idealEdgeLength: () => 60, randomize: false };
const EVIDENCE_DELAY = 300; // ms: one read of the relationships for a burst of relationship_extracted events

export function startGraph(stream, paperId) {
  const container = document.getElementById("graph");
  if (!container) return null;
  const cy = cytoscape({ container, style: STYLE, minZoom: 0.2, maxZoom: 3, boxSelectionEnabled: false });
  const list = document.getElementById("graph-edges");
  const panel = document.getElementById("graph-evidence");
  const edges = new Map(); // relationship_id → the event's fields plus evidence once known
  let active = null;
  let layoutTimer = null;
  let evidenceTimer = null;
  let fetching = null;

  const nameOf = (id) => cy.getElementById(id).data("label") || "…";
  const describe = (r) => `${nameOf(r.source_id)} ${r.relationship_type.toLowerCase().replace("_", " ")} ${nameOf(r.target_id)}`
    + (r.metric && r.score ? ` (${r.metric} ${r.score})` : "");

  function relayout() {
    clearTimeout(layoutTimer);
    layoutTimer = setTimeout(() => cy.layout(LAYOUT).run(), 150);
  }

  function addNode({ entity_id, entity_type, entity_name, key }) {
    const node = cy.getElementById(entity_id);
    if (node.nonempty()) { // made as a placeholder by an arrow that came first
      node.data({ label: entity_name, type: entity_type, key: Boolean(key) });
    } else {
      cy.add({ group: "nodes", data: { id: entity_id, label: entity_name, type: entity_type, key: Boolean(key) } });
    }
    for (const r of edges.values()) if (r.source_id === entity_id || r.target_id === entity_id) render(r);
    relayout();
  }

  function addEdge(r) {
    const known = edges.get(r.relationship_id);
    edges.set(r.relationship_id, { ...known, ...r, evidence: r.evidence ?? known?.evidence });
    if (known) return render(edges.get(r.relationship_id));
    for (const id of [r.source_id, r.target_id]) {
      if (cy.getElementById(id).empty()) cy.add({ group: "nodes", data: { id, label: "…", type: "" } });
    }
    cy.add({ group: "edges", data: { id: r.relationship_id, source: r.source_id, target: r.target_id,
      label: r.relationship_type.toLowerCase().replace("_", " ") } });
    const button = el("button", { type: "button", "data-edge-id": r.relationship_id,
      "aria-describedby": "graph-evidence" });
    for (const type of ["focus", "mouseenter"]) button.addEventListener(type, () => show(r.relationship_id));
    list.append(el("li", {}, button));
    render(edges.get(r.relationship_id));
    if (r.evidence === undefined) readEvidenceSoon();
    relayout();
  }

  function render(r) {
    const button = list.querySelector(`[data-edge-id="${r.relationship_id}"]`);
    button?.replaceChildren(describe(r), " ", el("span", { class: "kind" }, `· ${Math.round(r.confidence * 100)}%`));
    if (active === r.relationship_id) show(active);
  }

  function show(id) {
    const r = edges.get(id);
    if (!r) return;
    cy.edges(".active").removeClass("active");
    cy.getElementById(id).addClass("active");
    for (const b of list.querySelectorAll("button.active")) b.classList.remove("active");
    list.querySelector(`[data-edge-id="${id}"]`)?.classList.add("active");
    active = id;
    const evidence = r.evidence === undefined ? "Reading the evidence…" : r.evidence ? `“${r.evidence}”` : "No sentence recorded.";
    panel.replaceChildren(el("strong", {}, describe(r)), el("br"), evidence);
  }

  function clear() {
    cy.elements().remove();
    edges.clear();
    list.replaceChildren();
    active = null;
    panel.textContent = "No relationship chosen.";
  }

  const get = async (part) => {
    const response = await fetch(`/api/papers/${paperId}/${part}/`, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`${part}: HTTP ${response.status}`);
    return response.json();
  };
  const fromApi = (r) => ({ ...r, relationship_id: r.id, metric: r.metric_name });

  // Events carry no evidence: it is read from the API, once for a burst, one read in flight at a time.
  function readEvidenceSoon() {
    clearTimeout(evidenceTimer);
    evidenceTimer = setTimeout(readEvidence, EVIDENCE_DELAY);
  }
  async function readEvidence() {
    if (fetching) return void fetching.then(readEvidenceSoon);
    fetching = get("relationships").then((rows) => { for (const r of rows) addEdge(fromApi(r)); })
      .catch((error) => console.warn("graph: evidence not read", error))
      .finally(() => { fetching = null; });
  }

  async function reload() {
    const [entities, relationships] = await Promise.all([get("entities"), get("relationships")]);
    clear();
    for (const e of entities) addNode({ entity_id: e.id, entity_type: e.entity_type, entity_name: e.name, key: e.key });
    for (const r of relationships) addEdge(fromApi(r));
  }

  cy.on("mouseover", "edge", (event) => show(event.target.id()));
  stream.addEventListener("entity_extracted", ({ detail }) => detail.paper_id === paperId && addNode(detail));
  stream.addEventListener("relationship_extracted", ({ detail }) => detail.paper_id === paperId && addEdge(detail));
  stream.addEventListener("status_changed", ({ detail }) => {
    if (detail.paper_id === paperId && detail.new_status === "queued") clear(); // reprocessed: results are gone
  });
  // When the log could not close the gap (pruned), the server's results are the truth: read them again.
  stream.addEventListener("subscribed", ({ detail }) => {
    if (detail.paper_id === paperId && detail.recovery && !detail.recovery.complete) reload();
  });

  const initial = JSON.parse(document.getElementById("graph-data").textContent);
  for (const node of initial.nodes) addNode(node);
  for (const edge of initial.edges) addEdge(edge);
  // The card changes size (a phone turned, the window resized, the layout switching columns): fit the graph again.
  new ResizeObserver(() => {
    cy.resize();
    cy.fit(undefined, LAYOUT.padding);
  }).observe(container);
  window.paperGraph = cy; // for the browser tests and for poking at it from the console
  return cy;
}
