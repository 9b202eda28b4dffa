"""The fixed parts of the HTML report's page: its Content Security Policy and its stylesheet (inline)."""

# Nothing may load or run: no script at all, styles only from the page itself, images only inline.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

STYLE = """
:root { color-scheme: light; --pass: #1a7f37; --fail: #cf222e; --error: #8250df; --muted: #57606a; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 16px 24px; color: #1f2328; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 0 0 6px; } h3 { font-size: 14px; }
code, pre, td, .tick, .axis { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.summary { font-size: 16px; margin: 0; } .meta, .settings, .note { color: var(--muted); margin: 4px 0; }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 6px 14px; }
nav a { color: inherit; text-decoration: none; }
.spec { border: 1px solid #d0d7de; border-left: 6px solid var(--pass); border-radius: 6px; padding: 12px 16px;
        margin: 14px 0; overflow-x: auto; }
.spec.fail { border-left-color: var(--fail); } .spec.error { border-left-color: var(--error); }
.badge { display: inline-block; font-size: 11px; font-weight: 700; padding: 1px 6px; border-radius: 10px;
         color: #fff; background: var(--pass); vertical-align: middle; }
.badge.fail { background: var(--fail); } .badge.error { background: var(--error); }
.path { color: var(--muted); font-size: 12px; word-break: break-all; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eaeef2; text-align: left; white-space: nowrap; }
table.params td:nth-child(n+3):nth-child(-n+7) { text-align: right; }
tr.fail td { background: #fff5f5; }
.findings li { margin: 3px 0; word-break: break-word; } .findings li.error { color: var(--fail); }
.findings li.warning { color: #9a6700; } .findings li.info { color: var(--muted); }
.figures { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
.figures h3 { flex-basis: 100%; margin: 10px 0 0; }
figure { margin: 0; max-width: 480px; } figcaption { font-size: 12px; color: var(--muted); margin-bottom: 4px; }
.tick { font-size: 10px; fill: var(--muted); } .axis { font-size: 11px; fill: var(--muted); }
.frame { fill: none; stroke: #d0d7de; } .grid { stroke: #eaeef2; }
.curve { fill: none; stroke: #0969da; stroke-width: 1.5; } .point { fill: #0969da; }
.chosen { stroke: var(--fail); stroke-dasharray: 4 3; stroke-width: 1.5; }
details { margin-top: 10px; } summary { cursor: pointer; font-weight: 600; }
pre { background: #f6f8fa; padding: 8px 12px; border-radius: 6px; overflow-x: auto; }
"""
