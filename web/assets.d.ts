declare module "*.css";
/** A source file as text (Vite's `?raw`); the web unit tests read the entry points with it. */
declare module "*?raw" {
  const text: string;
  export default text;
}
