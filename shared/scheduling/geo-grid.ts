import { EARTH_RADIUS_KM, haversineKm, type Location } from "../geo/distance.js";

/**
 * A coarse latitude/longitude grid over the globe for the candidate index. Each cell knows its
 * centre and a radius that contains the whole cell, so the distance from any client to any point of
 * the cell is at least (distance to centre − radius) by the triangle inequality — the lower bound
 * that lets best-first search skip far cells without looking at their tabs.
 */
export class GeoGrid {
  readonly rows: number;
  readonly cols: number;
  private readonly centres: Location[] = [];
  private readonly radiiKm: number[] = [];

  constructor(readonly cellDegrees: number) {
    if (!(cellDegrees > 0 && 180 % cellDegrees === 0)) {
      throw new RangeError("cellDegrees must divide 180");
    }
    this.rows = 180 / cellDegrees;
    this.cols = 360 / cellDegrees;
    for (let r = 0; r < this.rows; r++) {
      const lat0 = -90 + r * cellDegrees;
      const lat1 = lat0 + cellDegrees;
      for (let c = 0; c < this.cols; c++) {
        const lon0 = -180 + c * cellDegrees;
        const centre = { lat: lat0 + cellDegrees / 2, lon: lon0 + cellDegrees / 2 };
        // Along a cell's edges the distance from its centre grows towards the corners, so the
        // farthest point is a corner; a small margin absorbs rounding.
        let radius = 0;
        for (const lat of [lat0, lat1]) {
          for (const lon of [lon0, lon0 + cellDegrees]) {
            radius = Math.max(radius, haversineKm(centre, { lat, lon }));
          }
        }
        this.centres.push(centre);
        this.radiiKm.push(radius * 1.01 + 1);
      }
    }
  }

  get cellCount(): number {
    return this.rows * this.cols;
  }

  cellOf(loc: Location): number {
    const r = Math.min(this.rows - 1, Math.max(0, Math.floor((loc.lat + 90) / this.cellDegrees)));
    const c = Math.min(this.cols - 1, Math.max(0, Math.floor((loc.lon + 180) / this.cellDegrees)));
    return r * this.cols + c;
  }

  /** The cell of `coarse` that contains fine cell `cell` (coarse cells must be a multiple). */
  parentCell(cell: number, coarse: GeoGrid): number {
    const k = Math.round(coarse.cellDegrees / this.cellDegrees);
    const row = Math.floor(cell / this.cols);
    const col = cell % this.cols;
    return Math.floor(row / k) * coarse.cols + Math.floor(col / k);
  }

  /** Lower bound of the great-circle distance from `loc` to any point in the cell. */
  minDistanceKm(loc: Location, cell: number): number {
    const centre = this.centres[cell];
    const radius = this.radiiKm[cell];
    if (centre === undefined || radius === undefined) throw new RangeError(`no cell ${cell}`);
    return Math.max(0, haversineKm(loc, centre) - radius);
  }
}

/** Half the circumference: no two points are farther apart. */
export const MAX_DISTANCE_KM = Math.PI * EARTH_RADIUS_KM;
