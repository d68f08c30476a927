"""Small server-side charts: inline SVG, no JavaScript library.

`daily_bars(points, series, currency)` draws one bar per day and series (side by side), a
y axis with three labelled gridlines and a few day labels. Each bar has a <title> (the
browser's tooltip, read by screen readers); the whole chart has an aria-label with the totals.
"""
from decimal import ROUND_CEILING, Decimal

from markupsafe import Markup, escape

from app.money import format_money

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 12, 28


def _nice_max(value: Decimal) -> Decimal:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above value (a round top for the y axis)."""
    if value <= 0:
        return Decimal(1)
    exp = value.adjusted()
    for step in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        top = step.scaleb(exp)
        if top >= value:
            return top
    return Decimal(10).scaleb(exp)


def daily_bars(points, series, currency: str, *, title: str = "Daily charges") -> Markup:
    """points: [(day, [value per series])]; series: [(label, css class)]."""
    n = max(len(points), 1)
    k = max(len(series), 1)
    values = [v for _, vs in points for v in vs]
    top = _nice_max(max(values, default=Decimal(0)))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bar_w = max(slot * 0.8 / k, 1)

    def y(v: Decimal) -> float:
        return TOP + plot_h - float(v / top) * plot_h

    totals = [sum((vs[i] for _, vs in points), Decimal(0)) for i in range(k)]
    label = f"{title}: " + "; ".join(f"{name} {format_money(t, currency)}" for (name, _), t in zip(series, totals))
    out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
           f'xmlns="http://www.w3.org/2000/svg">']
    for frac in (Decimal(0), Decimal("0.5"), Decimal(1)):
        v = (top * frac).quantize(Decimal("0.01"), rounding=ROUND_CEILING) if top >= 1 else top * frac
        yy = y(top * frac)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}"/>')
        out.append(f'<text class="axis" x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">'
                   f'{escape(format_money(v, currency))}</text>')
    every = max(1, -(-n // 8))
    for i, (day, vs) in enumerate(points):
        x0 = LEFT + i * slot + slot * 0.1
        for j, v in enumerate(vs):
            if v <= 0:
                continue
            yy = y(v)
            h = TOP + plot_h - yy
            out.append(f'<rect class="bar {series[j][1]}" x="{x0 + j * bar_w:.1f}" y="{yy:.1f}" width="{bar_w:.1f}" '
                       f'height="{max(h, 0.5):.1f}"><title>{day.isoformat()} {escape(series[j][0])}: '
                       f'{escape(format_money(v, currency))}</title></rect>')
        if i % every == 0 or (i == n - 1 and i % every > every // 2):
            out.append(f'<text class="axis" x="{LEFT + i * slot + slot / 2:.1f}" y="{HEIGHT - 8}" '
                       f'text-anchor="middle">{day.strftime("%d %b")}</text>')
    out.append("</svg>")
    legend = "".join(f'<span class="legend {css}">{escape(name)}</span>' for name, css in series)
    return Markup(f'<figure class="chart">{"".join(out)}<figcaption>{escape(title)} (UTC days) {legend}'
                  f'</figcaption></figure>')
