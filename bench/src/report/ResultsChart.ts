import type { Figures, ScenarioResult } from "../Scenario.ts";
import { formatNumber } from "./ResultsTable.ts";

/**
 * An SVG bar chart of the results: one panel per scenario, one bar per subject on the scenario's
 * headline figure, Tandem's bars coloured apart from the baselines'. Plain SVG strings: the
 * chart is a handful of rectangles, and this keeps it readable in any browser or on GitHub.
 */

const colors = { tandem: "#0f766e", baseline: "#64748b", reference: "#cbd5e1" } as const;
const width = 860;
const labelWidth = 230;
const valueWidth = 150;
const barHeight = 18;
const gap = 6;
const panelPadding = 36;

const escapeXml = (text: string): string =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

interface Bar {
  readonly label: string;
  readonly role: keyof typeof colors;
  readonly value: number | null;
  readonly note?: string;
}

const barsOf = (result: ScenarioResult): Array<Bar> => {
  const value = (figures: Figures) => figures[result.headline.figure] ?? null;
  const bars: Array<Bar> = [];
  if (result.tandem === null) {
    bars.push({ label: "tandem", role: "tandem", value: null, note: result.tandemUnavailable ?? "not measured" });
  } else {
    for (const [name, figures] of Object.entries(result.tandem))
      bars.push({ label: `tandem ${name}`, role: "tandem", value: value(figures) });
  }
  for (const [name, figures] of Object.entries(result.baselines))
    bars.push({ label: name, role: "baseline", value: value(figures) });
  for (const [name, figures] of Object.entries(result.references))
    bars.push({ label: name, role: "reference", value: value(figures) });
  return bars;
};

export const resultsChart = (results: ReadonlyArray<ScenarioResult>, title: string): string => {
  const parts: Array<string> = [];
  let y = 40;
  const plotWidth = width - labelWidth - valueWidth;
  for (const result of results) {
    const bars = barsOf(result);
    const max = Math.max(1e-9, ...bars.map((b) => b.value ?? 0));
    const better = result.headline.higherIsBetter ? "higher is better" : "lower is better";
    parts.push(
      `<text x="10" y="${y}" font-weight="bold">${escapeXml(result.scenario)}</text>`,
      `<text x="${labelWidth}" y="${y}" fill="#475569">${escapeXml(`${result.headline.unit} (${better})`)}</text>`,
    );
    y += 12;
    for (const bar of bars) {
      const barWidth = bar.value === null ? 0 : Math.max(1, (bar.value / max) * plotWidth);
      parts.push(`<text x="${labelWidth - 8}" y="${y + 13}" text-anchor="end">${escapeXml(bar.label)}</text>`);
      if (bar.value === null) {
        parts.push(
          `<text x="${labelWidth}" y="${y + 13}" fill="${colors.tandem}" font-style="italic">${escapeXml(`null: ${bar.note ?? ""}`.slice(0, 95))}</text>`,
        );
      } else {
        parts.push(
          `<rect x="${labelWidth}" y="${y}" width="${barWidth.toFixed(1)}" height="${barHeight}" fill="${colors[bar.role]}"/>`,
          `<text x="${labelWidth + barWidth + 6}" y="${y + 13}">${escapeXml(formatNumber(bar.value))}</text>`,
        );
      }
      y += barHeight + gap;
    }
    y += panelPadding;
  }
  const legend = (Object.entries(colors) as Array<[string, string]>)
    .map(
      ([role, color], i) =>
        `<rect x="${10 + i * 110}" y="${y - 14}" width="12" height="12" fill="${color}"/><text x="${26 + i * 110}" y="${y - 4}">${role}</text>`,
    )
    .join("");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" viewBox="0 0 ${width} ${y + 10}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    ...parts,
    legend,
    "</svg>",
    "",
  ].join("\n");
};
