"""Charts: question -> SQL -> guarded run -> ECharts option, the manual builder, and the data dictionary.

Modules: `dictionary` (the Markdown data dictionary of a portal's mirror), `guard` (what SQL may run),
`runner` (runs it as the portal's read-only role), `ai` (question -> LLM -> SQL, with corrections and a
cache; an RQ job), `render` (chart spec + rows -> ECharts option via pyecharts), `builder` (the manual
builder's SQL), `errors` (the exception tree), `models` (the question log).
"""
