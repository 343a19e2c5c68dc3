"""Checks that the geography of a scenario's layers makes the plan right: a working CRS that
keeps distances true, and no coordinate error that drags it away.

Reach is measured in the working CRS, so a CRS that stretches distances changes every radius.
Web Mercator (EPSG:3857) stretches them by 1/cos(latitude), about 15 % in Ningbo; a UTM zone
chosen from the mean longitude of points that include one row at (0, 0) lies 70° away from
the city. :func:`scale_errors` gives, per point, the largest relative error of a distance
measured in the CRS there (from pyproj's Tissot indicatrix: the semi-axes ``a`` and ``b`` of the
projected unit circle, error ``max(|a − 1|, |b − 1|)``); :func:`distortion_problems` refuses a
CRS in which it exceeds :data:`MAX_SCALE_ERROR` anywhere, naming the CRS, the distortion and the
worst rows. The automatic working CRS is the UTM zone of the *median* demand point
(:func:`median_utm`), so that a few wrong rows cannot move it; those rows then fail the scale
check by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import CRS, Proj

MAX_SCALE_ERROR = 0.01
_SHOWN = 5


@dataclass(frozen=True)
class PointSet:
    """One layer's points in longitude / latitude (WGS84 degrees), with row labels."""

    where: str
    labels: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


def median_utm(lon: np.ndarray, lat: np.ndarray) -> CRS:
    """The WGS84 UTM zone of the median point (north or south by the median latitude)."""
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    mid_lon = float(np.median(lon[ok])) if ok.any() else 0.0
    mid_lat = float(np.median(lat[ok])) if ok.any() else 0.0
    mid_lon = (mid_lon + 180.0) % 360.0 - 180.0
    zone = min(int((mid_lon + 180.0) // 6.0) + 1, 60)
    return CRS.from_epsg((32600 if mid_lat >= 0 else 32700) + zone)


def scale_errors(crs: CRS, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Per point, the largest relative error of a short distance measured in ``crs`` there
    (``inf`` where the projection is undefined)."""
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    if not len(lon):
        return np.zeros(0)
    factors = Proj(crs).get_factors(lon, lat, errcheck=False)
    a = np.asarray(factors.tissot_semimajor, float)
    b = np.asarray(factors.tissot_semiminor, float)
    error = np.maximum(np.abs(a - 1.0), np.abs(b - 1.0))
    return np.where(np.isfinite(error), error, np.inf)


def distortion_problems(crs: CRS, layers: list[PointSet], *, automatic: bool) -> list[str]:
    """One message per layer with points where ``crs`` distorts distances by more than
    :data:`MAX_SCALE_ERROR`, naming the worst rows; empty when all is well."""
    problems = []
    name = crs.to_string()
    for layer in layers:
        error = scale_errors(crs, layer.lon, layer.lat)
        bad = np.flatnonzero(error > MAX_SCALE_ERROR)
        if not len(bad):
            continue
        worst = bad[np.argsort(-error[bad], kind="stable")][:_SHOWN]
        rows = "; ".join(
            f"{layer.labels[k]} at ({layer.lon[k]:.6g}, {layer.lat[k]:.6g}): "
            + ("undefined" if not np.isfinite(error[k]) else f"{error[k]:.1%}")
            for k in worst
        )
        more = f" (and {len(bad) - len(worst)} more)" if len(bad) > len(worst) else ""
        if automatic:
            fix = (
                "these rows lie far from the others (the working CRS is the UTM zone of the "
                "median demand point): they are probable coordinate errors (0/0, swapped or "
                "shifted longitude/latitude); correct or delete them"
            )
        else:
            fix = (
                "give `crs:` a projected CRS made for this area (its UTM zone, or the "
                "CGCS2000 Gauss–Krüger zone), or leave `crs` out to use the UTM zone; if the "
                "CRS is right, these rows are probable coordinate errors"
            )
        problems.append(
            f"{layer.where}: the working CRS {name} distorts distances by more than "
            f"{MAX_SCALE_ERROR:.0%} at {len(bad)} row(s), so reach would be measured wrong: "
            f"{rows}{more}. {fix[0].upper()}{fix[1:]}"
        )
    return problems


_EARTH_M = 6_371_008.8
OUTLIER_FACTOR = 10.0
OUTLIER_MIN_M = 100_000.0


def _great_circle_m(lon: np.ndarray, lat: np.ndarray, lon0: float, lat0: float) -> np.ndarray:
    x, y = np.radians(np.asarray(lon, float)), np.radians(np.asarray(lat, float))
    x0, y0 = np.radians(lon0), np.radians(lat0)
    h = np.sin((y - y0) / 2) ** 2 + np.cos(y) * np.cos(y0) * np.sin((x - x0) / 2) ** 2
    return 2 * _EARTH_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def outlier_problems(layers: list[PointSet]) -> list[str]:
    """Rows far from all the others: farther from the median point of all layers than both
    :data:`OUTLIER_FACTOR` times the 95th-percentile distance and :data:`OUTLIER_MIN_M` — in a
    city's or a province's data, a probable coordinate error (0/0, a swapped pair, a missing
    digit). One message per layer, naming the rows and their distance."""
    lon = np.concatenate([layer.lon for layer in layers]) if layers else np.zeros(0)
    lat = np.concatenate([layer.lat for layer in layers]) if layers else np.zeros(0)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if ok.sum() < 10:
        return []
    lon0, lat0 = float(np.median(lon[ok])), float(np.median(lat[ok]))
    spread = float(np.percentile(_great_circle_m(lon[ok], lat[ok], lon0, lat0), 95))
    limit = max(OUTLIER_FACTOR * spread, OUTLIER_MIN_M)
    problems = []
    for layer in layers:
        far = _great_circle_m(layer.lon, layer.lat, lon0, lat0)
        bad = np.flatnonzero(~(far <= limit))
        if not len(bad):
            continue
        worst = bad[np.argsort(-np.nan_to_num(far[bad], nan=np.inf), kind="stable")][:_SHOWN]
        rows = "; ".join(
            f"{layer.labels[k]} at ({layer.lon[k]:.6g}, {layer.lat[k]:.6g}), "
            f"{far[k] / 1000:,.0f} km away"
            for k in worst
        )
        more = f" (and {len(bad) - len(worst)} more)" if len(bad) > len(worst) else ""
        problems.append(
            f"{layer.where}: {len(bad)} row(s) lie far from all the others (the points lie "
            f"within {spread / 1000:,.0f} km of their median ({lon0:.4f}, {lat0:.4f}), 95 % of "
            f"them): {rows}{more}. These are probable coordinate errors (0/0, swapped or "
            "shifted longitude/latitude, a missing digit); correct or delete them"
        )
    return problems


def sum_problems(weights: np.ndarray, labels: np.ndarray, where: str) -> list[str]:
    """Refuse weights whose sum overflows or passes 2**53 (beyond which a float sum loses
    integer precision and a solver's tolerances lose meaning)."""
    weights = np.asarray(weights, float)
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.sum(weights))
    if np.isfinite(total) and total < 2.0**53:
        return []
    worst = np.argsort(-weights, kind="stable")[:_SHOWN]
    shown = ", ".join(f"{labels[k]}={weights[k]:.6g}" for k in worst)
    return [
        f"{where}: the weights add up to {total:.6g}, more than 2^53 ≈ 9.0e15, beyond which "
        f"sums lose integer precision; the largest: {shown}. Weights are counts of people: "
        "check the column and its units"
    ]
