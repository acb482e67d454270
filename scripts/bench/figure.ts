/** One figure a benchmark prints (and the README's performance section records). */
export type BenchFigure = { name: string; value: number; unit: string; target?: string; note?: string };
