/** The page's stylesheet, shared by report.html and compare.html. Sized for a laptop screen. */
export const PAGE_CSS = `
:root { --fg:#1f2937; --muted:#6b7280; --line:#e5e7eb; --bg:#ffffff; --panel:#f9fafb; --good:#166534; --good-bg:#dcfce7; --bad:#991b1b; --bad-bg:#fee2e2; --warn-bg:#fef9c3; --accent:#2563eb; }
* { box-sizing: border-box; }
html { font-size: 14px; }
body { margin: 0; color: var(--fg); background: var(--bg); font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; line-height: 1.45; }
main { max-width: 1280px; margin: 0 auto; padding: 0 20px 48px; }
header.top { border-bottom: 1px solid var(--line); padding: 16px 0 10px; margin-bottom: 12px; }
header.top h1 { font-size: 1.6rem; margin: 0 0 4px; }
header.top .meta { color: var(--muted); font-size: .93rem; }
nav.toc { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: .9rem; margin-top: 8px; }
nav.toc a { color: var(--accent); text-decoration: none; }
h2 { font-size: 1.25rem; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 18px 0 6px; }
p.note, figcaption, .muted { color: var(--muted); font-size: .9rem; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
pre { background: var(--panel); border: 1px solid var(--line); padding: 10px; overflow: auto; max-height: 520px; }
.banner { border: 1px solid var(--line); border-left: 6px solid var(--accent); background: var(--panel); padding: 10px 16px 12px; margin: 10px 0 8px; }
.banner h2 { border: none; margin: 4px 0 8px; }
.banner.has-errors { border-left-color: #dc2626; }
.banner.has-warnings { border-left-color: #ca8a04; }
#decision { border: 1px solid var(--line); border-left: 6px solid var(--good); background: var(--panel); padding: 10px 16px 12px; margin: 10px 0 8px; }
#decision.has-errors { border-left-color: #dc2626; }
#decision h2 { border: none; margin: 4px 0 8px; }
#decision p.design { margin: 6px 0; }
#decision ul.decision-problems { margin: 4px 0 8px; padding-left: 20px; color: var(--bad); font-weight: 600; }
#decision ul.decision-problems li::marker { content: "✖ "; }
#decision ul.section-verdicts { margin: 6px 0 0; padding-left: 20px; }
table.verdict td.winner { font-weight: 700; white-space: nowrap; }
.caveat { background: #eff6ff; border: 1px solid #bfdbfe; padding: 6px 10px; margin: 10px 0 4px; font-size: .92rem; }
.warnings ul { margin: 4px 0; padding-left: 20px; }
.warnings li { margin: 2px 0; }
.warnings li.error { color: var(--bad); }
.warnings li.error::marker { content: "✖ "; }
.warnings li.warn::marker { content: "⚠ "; }
.ok-line { color: var(--good); }
.tablewrap { overflow-x: auto; margin: 6px 0 12px; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px; text-align: left; vertical-align: top; }
thead th { background: var(--panel); vertical-align: bottom; }
table.side thead th, table.verdict thead th { white-space: nowrap; }
td:first-child { white-space: nowrap; }
td.sub { padding-left: 24px; }
.stages { display: flex; flex-wrap: wrap; gap: 0 22px; align-items: flex-start; }
.stages > div { min-width: 0; max-width: 100%; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.heading td { background: var(--panel); font-weight: 600; padding-top: 6px; }
td.good { color: var(--good); background: var(--good-bg); }
td.bad { color: var(--bad); background: var(--bad-bg); }
td.invalid, tr.invalid td { background: var(--warn-bg); }
td.muted { color: var(--muted); }
td.pass { color: var(--good); }
td.fail { color: var(--bad); font-weight: 600; }
.selbar { position: sticky; top: 0; z-index: 5; background: rgba(255,255,255,.96); border-bottom: 1px solid var(--line); padding: 8px 0; margin-top: 20px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
.selbar select { font-size: .95rem; padding: 3px 6px; max-width: 100%; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 14px 18px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 4px; padding: 8px 10px 6px; background: #fff; min-width: 0; }
figure.chart .box { position: relative; height: 320px; }
figure.chart figcaption { margin-top: 4px; }
td.strong { font-weight: 600; }
td.nowrap { white-space: nowrap; }
td.reasons { min-width: 260px; }
td.command { font-family: ui-monospace, monospace; font-size: .8rem; min-width: 260px; word-break: break-all; }
p.note.warn { color: var(--bad); }
ul.plain { margin: 0; padding-left: 16px; }
ul.plain li { margin: 1px 0; }
.claims { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px 16px; margin: 6px 0 14px; }
.claim { border: 1px solid var(--line); border-left: 4px solid #64748b; background: var(--panel); padding: 8px 12px; }
.claim p.quote { font-weight: 600; margin: 0 0 4px; }
.claim ul { margin: 0 0 6px; }
.claim p.note { margin: 0; font-size: .85rem; }
#capacity td.muted { white-space: normal; min-width: 260px; font-size: .85rem; }
#capacity td { white-space: normal; }
#capacity td:first-child, #capacity td.num { white-space: nowrap; }
dl.env { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 6px 0; }
dl.env dt { color: var(--muted); }
dl.env dd { margin: 0; word-break: break-word; }
@media (max-width: 700px) { .grid { grid-template-columns: 1fr; } main { padding: 0 10px 32px; } }
`;
