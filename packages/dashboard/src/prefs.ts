/** Choices this browser keeps for the page (localStorage): how the cluster is shown. */

export type ClusterView = "tiles" | "table";
const VIEW_KEY = "picluster.view";

export function savedView(): ClusterView {
  try {
    return localStorage.getItem(VIEW_KEY) === "table" ? "table" : "tiles";
  } catch {
    return "tiles"; // Storage off (a private window with strict settings).
  }
}

export function saveView(view: ClusterView): void {
  try {
    localStorage.setItem(VIEW_KEY, view);
  } catch {
    // Storage off: the choice lasts until the page is closed.
  }
}
