/**
 * `Figure`: one picture with four renderings, returned as a Jupyter MIME bundle.
 *
 * - `application/vnd.plotly.v1+json`: the plotly figure, for front ends with a plotly renderer;
 * - `text/html`: the SVG, replaced by the interactive plot where scripts run (plotly_html.ts);
 * - `image/svg+xml`: the static SVG drawn in svg.ts;
 * - `text/plain`: a text rendering, also used by terminals through util.inspect.
 */
import { type PlotlyHtmlOptions, plotlyHtml, type PlotlySpec } from "./plotly_html.ts";
import type { TextOptions } from "./terminal.ts";

/** A Jupyter MIME bundle: MIME type to content (a string, or JSON for `+json` types). */
export type MimeBundle = Record<string, unknown>;

/** The MIME types of a figure's bundle. */
export const MIME = {
  plotly: "application/vnd.plotly.v1+json",
  html: "text/html",
  svg: "image/svg+xml",
  text: "text/plain",
} as const;

/** The method Deno's Jupyter kernel calls to get an object's MIME bundle. */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display");

/** The method util.inspect (Node, Deno and Bun) calls to get an object's text. */
export const INSPECT_CUSTOM: unique symbol = Symbol.for("nodejs.util.inspect.custom");

/** What a {@link Figure} is made from. */
export interface FigureInit {
  /** A short description, the first line of the text rendering. */
  title: string;
  plotly: PlotlySpec;
  svg: string;
  /** Size of the figure in CSS pixels. */
  width: number;
  height: number;
  /** Draws the text rendering, with or without ANSI colours. */
  text: (options: TextOptions) => string;
}

/** A figure with plotly, HTML, SVG and text renderings. Display it with `show(figure)`. */
export class Figure {
  readonly title: string;
  readonly plotly: PlotlySpec;
  readonly svg: string;
  readonly width: number;
  readonly height: number;
  readonly #text: (options: TextOptions) => string;

  constructor(init: FigureInit) {
    this.title = init.title;
    this.plotly = init.plotly;
    this.svg = init.svg;
    this.width = init.width;
    this.height = init.height;
    this.#text = init.text;
  }

  /** The text rendering; `colors` adds ANSI colour codes. */
  toText(options: TextOptions = { colors: false }): string {
    return this.#text(options);
  }

  /** The HTML rendering (see plotly_html.ts for how plotly.js is loaded). */
  toHTML(options: PlotlyHtmlOptions = {}): string {
    return plotlyHtml(this, options);
  }

  /** The plotly figure, so `JSON.stringify(figure)` gives what `Plotly.newPlot` takes. */
  toJSON(): PlotlySpec {
    return this.plotly;
  }

  /** The four renderings as a Jupyter MIME bundle. */
  toMimeBundle(options: PlotlyHtmlOptions = {}): MimeBundle {
    return {
      [MIME.plotly]: this.plotly,
      [MIME.html]: this.toHTML(options),
      [MIME.svg]: this.svg,
      [MIME.text]: this.toText({ colors: false }),
    };
  }

  [JUPYTER_DISPLAY](): MimeBundle {
    return this.toMimeBundle();
  }

  [INSPECT_CUSTOM](_depth: number, options?: { colors?: boolean }): string {
    return this.toText({ colors: Boolean(options?.colors) });
  }
}
