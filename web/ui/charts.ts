import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

/**
 * The dashboard's two charts, drawn with uPlot (small, fast canvas time series): a live tokens/s
 * sparkline of recent jobs and a bar chart of tokens served per day for the last 30 days. Canvas
 * is invisible to assistive tools, so each chart has a text alternative next to it (see
 * dashboard.ts).
 */
const ACCENT = "#1f6feb";

function width(el: HTMLElement, fallback: number): number {
  return Math.max(160, Math.floor(el.clientWidth || fallback));
}

export interface Chart {
  set(xs: number[], ys: number[]): void;
}

export function sparkline(el: HTMLElement): Chart {
  const plot = new uPlot(
    {
      width: width(el, 320),
      height: 60,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false } },
      axes: [{ show: false }, { show: false }],
      series: [
        {},
        {
          stroke: ACCENT,
          width: 2,
          fill: "rgba(31,111,235,0.15)",
          points: { show: true, size: 4 },
        },
      ],
    },
    [[], []],
    el,
  );
  return { set: (xs, ys) => plot.setData([xs, ys]) };
}

export function dailyBars(el: HTMLElement): Chart {
  const bars = uPlot.paths.bars?.({ size: [0.7, 24] });
  const plot = new uPlot(
    {
      width: width(el, 600),
      height: 160,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false } },
      axes: [
        {
          values: (_u, splits) =>
            splits.map((i) => {
              const d = new Date();
              d.setDate(d.getDate() - (29 - i));
              return `${d.getMonth() + 1}/${d.getDate()}`;
            }),
          stroke: "currentColor",
        },
        { stroke: "currentColor", size: 56 },
      ],
      series: [
        {},
        {
          stroke: ACCENT,
          fill: "rgba(31,111,235,0.6)",
          ...(bars ? { paths: bars } : {}),
          points: { show: false },
        },
      ],
    },
    [[], []],
    el,
  );
  return { set: (xs, ys) => plot.setData([xs, ys]) };
}
