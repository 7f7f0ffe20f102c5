"""Render grade reports for people: a text summary per notebook and the course table."""

from __future__ import annotations

from .grade import Report


def fmt_points(x: float) -> str:
    return f"{x:g}"


def text_report(r: Report) -> str:
    head = f"{r.notebook}: {fmt_points(r.score)}/{fmt_points(r.max_score)} ({r.status}"
    head += f", {r.lesson} {r.framework}, {r.device}, {r.seconds:.1f} s)" if r.lesson else ")"
    lines = [head]
    lines += [f"  ! {n}" for n in r.notes]
    for ex in r.exercises:
        mark = "ok  " if ex.passed else "FAIL"
        lines.append(f"  {mark} {ex.id:<22} {fmt_points(ex.points)}/{fmt_points(ex.max_points)}  {ex.title}")
        lines += [f"       - {m}" for m in ex.messages]
    return "\n".join(lines)


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain fixed-width table; ``columns`` are (key, heading) pairs."""
    cells = [[str(row.get(k, "")) for k, _ in columns] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, (_, h) in enumerate(columns)]
    out = ["  ".join(h.ljust(w) for (_, h), w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(out)
