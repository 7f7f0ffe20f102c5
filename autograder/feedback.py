"""Render grade reports for people: text for the terminal, HTML for learners, the course table."""

from __future__ import annotations

import html

from .grade import Report
from .protocol import plain


def fmt_points(x: float) -> str:
    return f"{x:g}"


def text_report(r: Report) -> str:
    head = f"{r.notebook}: {fmt_points(r.score)}/{fmt_points(r.max_score)} ({r.status}"
    head += f", {r.lesson} {r.framework}, {r.device}, {r.seconds:.1f} s)" if r.lesson else ")"
    lines = [head]
    lines += [f"  ! {plain(n)}" for n in r.notes]
    lines += [f"  | {line}" for line in r.grader_log.splitlines()[-15:]]  # the instructor's console only
    for ex in r.exercises:
        mark = "ok  " if ex.passed else "FAIL"
        lines.append(f"  {mark} {ex.id:<22} {fmt_points(ex.points)}/{fmt_points(ex.max_points)}  {ex.title}")
        lines += [f"       - {plain(m)}" for m in ex.messages]
    return "\n".join(lines)


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain fixed-width table; ``columns`` are (key, heading) pairs."""
    cells = [[str(row.get(k, "")) for k, _ in columns] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, (_, h) in enumerate(columns)]
    out = ["  ".join(h.ljust(w) for (_, h), w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def html_report(r: Report, learner: str) -> str:
    """A learner's feedback page: each exercise's points and messages; never test or solution code, nor the
    grader's own log."""

    def esc(text) -> str:  # a report written by an older grader may still hold terminal colour codes
        return html.escape(plain(text))

    rows = []
    for ex in r.exercises:
        msgs = "".join(f"<li>{esc(m)}</li>" for m in ex.messages)
        rows.append(f'<tr class="{"ok" if ex.passed else "fail"}"><td>{esc(ex.title)}</td>'
                    f"<td>{fmt_points(ex.points)} / {fmt_points(ex.max_points)}</td><td><ul>{msgs}</ul></td></tr>")
    notes = "".join(f"<p class=note>{esc(n)}</p>" for n in r.notes)
    title = f"{r.lesson or 'Unknown lesson'} ({r.framework or '?'}): {learner}"
    score = ("<p><b>Not graded yet</b></p>" if r.status == "grader_error" else
             f"<p><b>Score: {fmt_points(r.score)} / {fmt_points(r.max_score)}</b> &middot; status: {esc(r.status)}</p>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto}}td{{padding:.3em .8em;vertical-align:top}}
tr.ok td:first-child::before{{content:"\\2714  ";color:green}}
tr.fail td:first-child::before{{content:"\\2718  ";color:#b00}}
.note{{background:#fff4e0;padding:.5em}}</style></head><body>
<h1>{esc(title)}</h1>
{score}
{notes}<table><tr><th>Exercise</th><th>Points</th><th>What to look at</th></tr>
{"".join(rows)}</table>
<p><small>Graded on {esc(str(r.device))} with Python {esc(r.versions.get("python", "?"))}.</small></p>
</body></html>
"""
