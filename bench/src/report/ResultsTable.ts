import type { Figures, ScenarioResult } from "../Scenario.ts";

/** One row per measured subject: scenario, role, subject, headline figure and the other figures. */
interface Row {
  readonly scenario: string;
  readonly role: string;
  readonly subject: string;
  readonly headline: string;
  readonly details: string;
}

/** Three significant digits, thousands grouped: enough for a noisy machine, easy to read. */
export const formatNumber = (n: number): string => {
  if (!Number.isFinite(n)) return "n/a";
  const abs = Math.abs(n);
  if (abs >= 1000) return Math.round(n).toLocaleString("en-US");
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  return n.toPrecision(2);
};

const describe = (figures: Figures, skip: string): string =>
  Object.entries(figures)
    .filter(([name]) => name !== skip)
    .map(([name, value]) => `${name}=${formatNumber(value)}`)
    .join(" ");

const rowsOf = (result: ScenarioResult): Array<Row> => {
  const { figure, unit } = result.headline;
  const row = (role: string, subject: string, figures: Figures | undefined): Row => ({
    scenario: result.scenario,
    role,
    subject,
    headline: figures?.[figure] === undefined ? "n/a" : `${formatNumber(figures[figure]!)} ${unit}`,
    details: figures === undefined ? "" : describe(figures, figure),
  });
  const rows: Array<Row> = [];
  if (result.tandem === null) {
    rows.push({
      scenario: result.scenario,
      role: "tandem",
      subject: "tandem",
      headline: "null",
      details: result.tandemUnavailable ?? "",
    });
  } else {
    for (const [variant, figures] of Object.entries(result.tandem)) rows.push(row("tandem", variant, figures));
  }
  for (const [name, figures] of Object.entries(result.baselines)) rows.push(row("baseline", name, figures));
  for (const [name, figures] of Object.entries(result.references)) rows.push(row("reference", name, figures));
  return rows;
};

const ratioLine = (result: ScenarioResult): string =>
  Object.entries(result.ratios)
    .map(([name, value]) => `${name} = ${value === null ? "null" : formatNumber(value)}`)
    .join(", ");

const targetLine = (result: ScenarioResult): string =>
  result.targets
    .map(
      (t) =>
        `${t.target}: ${t.value === null ? "not measured" : `${formatNumber(t.value)} ${t.met ? "met" : "MISSED"}`}`,
    )
    .join("; ");

/** A plain-text table for the terminal. */
export const textTable = (results: ReadonlyArray<ScenarioResult>): string => {
  const rows = results.flatMap(rowsOf);
  const header: Row = {
    scenario: "scenario",
    role: "role",
    subject: "subject",
    headline: "headline",
    details: "figures",
  };
  const all = [header, ...rows];
  const width = (key: keyof Row) => Math.max(...all.map((r) => r[key].length));
  const widths = {
    scenario: width("scenario"),
    role: width("role"),
    subject: width("subject"),
    headline: width("headline"),
  };
  const line = (r: Row) =>
    `${r.scenario.padEnd(widths.scenario)}  ${r.role.padEnd(widths.role)}  ${r.subject.padEnd(widths.subject)}  ${r.headline.padStart(widths.headline)}  ${r.details}`;
  const lines = [line(header), ...rows.map(line)];
  for (const result of results) {
    lines.push(`${result.scenario} ratios: ${ratioLine(result)}`);
    if (result.targets.length > 0) lines.push(`${result.scenario} targets: ${targetLine(result)}`);
  }
  return lines.join("\n");
};

/** The same results as Markdown, for `results/latest.md` and the README. */
export const markdownTable = (
  results: ReadonlyArray<ScenarioResult>,
  meta: Readonly<Record<string, string>>,
): string => {
  const out: Array<string> = [
    "# Benchmark results",
    "",
    ...Object.entries(meta).map(([k, v]) => `- ${k}: ${v}`),
    "",
    "| scenario | role | subject | headline | other figures |",
    "|---|---|---|---|---|",
  ];
  for (const r of results.flatMap(rowsOf)) {
    out.push(`| ${r.scenario} | ${r.role} | ${r.subject} | ${r.headline} | ${r.details.replaceAll("|", "/")} |`);
  }
  out.push("", "| scenario | ratios (this run) | targets |", "|---|---|---|");
  for (const result of results) out.push(`| ${result.scenario} | ${ratioLine(result)} | ${targetLine(result)} |`);
  const notes = results.flatMap((r) => r.notes.map((n) => `- ${r.scenario}: ${n}`));
  if (notes.length > 0) out.push("", "Notes:", "", ...notes);
  return `${out.join("\n")}\n`;
};
