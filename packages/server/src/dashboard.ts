import { readFileSync } from "node:fs";

/** One file of the dashboard, read into memory. */
export interface DashboardAsset {
  readonly body: string;
  readonly contentType: string;
}

/**
 * The files under `dashboard/` that may be served, with their content types. Only names
 * in this list are ever looked up, so a request path cannot reach any other file.
 */
const assetTypes: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "dashboard.js": "text/javascript; charset=utf-8",
  "dashboard.css": "text/css; charset=utf-8",
};

/**
 * The dashboard's static files, read once (at startup): the page talks to the same
 * tRPC endpoints as any client, with the API key the operator types in.
 */
export const loadDashboardAssets = (): ReadonlyMap<string, DashboardAsset> =>
  new Map(
    Object.entries(assetTypes).map(([name, contentType]) => [
      name,
      { body: readFileSync(new URL(`./dashboard/${name}`, import.meta.url), "utf8"), contentType },
    ]),
  );

/**
 * Headers for every dashboard file: scripts and styles only from this origin, no framing,
 * and no caching across upgrades (the files are small).
 */
export const dashboardHeaders: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};
