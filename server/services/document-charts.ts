// Inline SVG charts for report documents (issue 13): drawn on the server from numbers, so that a report needs no
// script and loads nothing. Every label is escaped; every coordinate is a number this module computed.

const internals = {
    font: 'font-family="Helvetica, Arial, sans-serif"',
    colours: { covered: '#2e7d32', partial: '#f9a825', not_covered: '#c62828', untested: '#9e9e9e' } as Record<string, string>,
    palette: ['#1565c0', '#2e7d32', '#f9a825', '#c62828', '#9e9e9e', '#6a1b9a', '#00838f'],
    round: (value: number) => Math.round(value * 10) / 10
};


export const escapeXml = (value: string): string => value.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);


export interface StackedRow {
    label: string;
    parts: Record<string, number>;         // part name -> count (drawn in the order of `order`)
}


// Coverage by tactic: one horizontal bar per row, stacked by coverage status, with the covered share written after it
export const stackedBars = (rows: StackedRow[], order: string[], options: { title: string; width?: number }): string => {

    const width = options.width ?? 640;
    const labelWidth = 170;
    const barWidth = width - labelWidth - 60;
    const rowHeight = 18;
    const top = 24;
    const height = top + rows.length * rowHeight + 30;
    const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" role="img" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${internals.font} font-size="10">`,
        `<title>${escapeXml(options.title)}</title>`, `<text x="0" y="12" font-size="12" font-weight="bold">${escapeXml(options.title)}</text>`];

    rows.forEach((row, index) => {

        const y = top + index * rowHeight;
        const total = order.reduce((sum, part) => sum + (row.parts[part] ?? 0), 0);
        out.push(`<text x="${labelWidth - 6}" y="${y + 11}" text-anchor="end">${escapeXml(row.label)}</text>`);
        let x = labelWidth;
        for (const part of order) {
            const count = row.parts[part] ?? 0;
            if (!total || !count) {
                continue;
            }

            const w = internals.round(count / total * barWidth);
            out.push(`<rect x="${internals.round(x)}" y="${y + 2}" width="${w}" height="${rowHeight - 5}" fill="${internals.colours[part] ?? '#607d8b'}"/>`);
            x += count / total * barWidth;
        }

        const share = total ? Math.round((row.parts[order[0]!] ?? 0) / total * 100) : 0;
        out.push(`<text x="${labelWidth + barWidth + 6}" y="${y + 11}">${share}%</text>`);
    });

    out.push(legend(order, top + rows.length * rowHeight + 10, labelWidth));
    out.push('</svg>');
    return out.join('');
};


// Outcome distribution: one bar per outcome, its count above it
export const columns = (items: { label: string; value: number; colour?: string }[], options: { title: string; width?: number; unit?: string }): string => {

    const width = options.width ?? 640;
    const height = 190;
    const top = 30;
    const bottom = 30;
    const plot = height - top - bottom;
    const max = Math.max(1, ...items.map((item) => item.value));
    const slot = (width - 20) / Math.max(1, items.length);
    const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" role="img" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${internals.font} font-size="10">`,
        `<title>${escapeXml(options.title)}</title>`, `<text x="0" y="12" font-size="12" font-weight="bold">${escapeXml(options.title)}</text>`];

    items.forEach((item, index) => {

        const h = internals.round(item.value / max * plot);
        const x = internals.round(10 + index * slot + slot * 0.15);
        const w = internals.round(slot * 0.7);
        out.push(`<rect x="${x}" y="${internals.round(top + plot - h)}" width="${w}" height="${h}" fill="${item.colour ?? internals.palette[index % internals.palette.length]}"/>`);
        out.push(`<text x="${internals.round(x + w / 2)}" y="${internals.round(top + plot - h - 3)}" text-anchor="middle">${item.value}${escapeXml(options.unit ?? '')}</text>`);
        out.push(`<text x="${internals.round(x + w / 2)}" y="${height - bottom + 14}" text-anchor="middle">${escapeXml(item.label)}</text>`);
    });

    out.push('</svg>');
    return out.join('');
};


// Trend over time: one polyline per series over the same x labels (weeks)
export const lines = (labels: string[], series: { name: string; values: number[] }[], options: { title: string; width?: number }): string => {

    const width = options.width ?? 640;
    const height = 200;
    const left = 36;
    const top = 26;
    const bottom = 46;
    const plotWidth = width - left - 10;
    const plotHeight = height - top - bottom;
    const max = Math.max(1, ...series.flatMap((item) => item.values));
    const step = labels.length > 1 ? plotWidth / (labels.length - 1) : 0;
    const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" role="img" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${internals.font} font-size="9">`,
        `<title>${escapeXml(options.title)}</title>`, `<text x="0" y="12" font-size="12" font-weight="bold">${escapeXml(options.title)}</text>`,
        `<line x1="${left}" y1="${top + plotHeight}" x2="${width - 10}" y2="${top + plotHeight}" stroke="#999"/>`,
        `<text x="${left - 4}" y="${top + 4}" text-anchor="end">${max}</text>`, `<text x="${left - 4}" y="${top + plotHeight}" text-anchor="end">0</text>`];

    const every = Math.max(1, Math.ceil(labels.length / 8));
    labels.forEach((label, index) => {

        if (index % every === 0) {
            out.push(`<text x="${internals.round(left + index * step)}" y="${top + plotHeight + 12}" text-anchor="middle">${escapeXml(label)}</text>`);
        }
    });

    series.forEach((item, index) => {

        const points = item.values.map((value, i) => `${internals.round(left + i * step)},${internals.round(top + plotHeight - value / max * plotHeight)}`).join(' ');
        out.push(`<polyline fill="none" stroke="${internals.palette[index % internals.palette.length]}" stroke-width="2" points="${points}"/>`);
    });

    out.push(legend(series.map((item) => item.name), height - 14, left, series.map((_, index) => internals.palette[index % internals.palette.length]!)));
    out.push('</svg>');
    return out.join('');
};


const legend = (names: string[], y: number, x: number, colours?: string[]): string => names.map((name, index) =>
    `<rect x="${x + index * 110}" y="${y - 8}" width="9" height="9" fill="${colours?.[index] ?? internals.colours[name] ?? '#607d8b'}"/><text x="${x + index * 110 + 13}" y="${y}">${escapeXml(name.replace(/_/g, ' '))}</text>`).join('');
