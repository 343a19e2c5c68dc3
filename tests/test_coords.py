"""GCJ-02 / BD-09 ↔ WGS84: published vectors, exact inverses, round trips over China."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from carecheck import coords

GEOD = Geod(ellps="WGS84")

# Published in wandergis/coordtransform, test/app.js ("//result" block), for (116.404, 39.915):
# wgs84togcj02 and gcj02tobd09 are the closed-form forward maps, so these are exact.
PUBLISHED_FORWARD = [
    (coords.wgs84_to_gcj02, (116.41024449916938, 39.91640428150164)),
    (coords.gcj02_to_bd09, (116.41036949371029, 39.92133699351021)),
]
# The same file's inverses are the one-step approximations (2·target − f(target)); an exact
# inverse lies within a few metres of them.
PUBLISHED_ONE_STEP_INVERSE = [
    (coords.gcj02_to_wgs84, (116.39775550083061, 39.91359571849836)),
    (coords.bd09_to_gcj02, (116.39762729119315, 39.90865673957631)),
]


@pytest.mark.parametrize(("forward", "expected"), PUBLISHED_FORWARD)
def test_published_forward_vectors(forward, expected):
    lon, lat = forward(116.404, 39.915)
    assert float(lon) == pytest.approx(expected[0], abs=1e-12)
    assert float(lat) == pytest.approx(expected[1], abs=1e-12)


@pytest.mark.parametrize(("inverse", "approximate"), PUBLISHED_ONE_STEP_INVERSE)
def test_inverse_is_exact_and_near_the_one_step_approximation(inverse, approximate):
    lon, lat = inverse(116.404, 39.915)
    forward = coords.wgs84_to_gcj02 if inverse is coords.gcj02_to_wgs84 else coords.gcj02_to_bd09
    back = forward(lon, lat)
    assert float(back[0]) == pytest.approx(116.404, abs=1e-10)  # ~1e-5 m
    assert float(back[1]) == pytest.approx(39.915, abs=1e-10)
    _, _, metres = GEOD.inv(float(lon), float(lat), *approximate)
    assert 0.01 < metres < 10.0  # the one-step inverse is close, but not exact


def test_round_trips_over_china_are_well_under_half_a_metre():
    rng = np.random.default_rng(7)
    lon = rng.uniform(73.5, 135.0, 50_000)
    lat = rng.uniform(18.0, 53.5, 50_000)
    for forward, inverse in (
        (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84),
        (coords.wgs84_to_bd09, coords.bd09_to_wgs84),
    ):
        x, y = inverse(*forward(lon, lat))
        _, _, metres = GEOD.inv(lon, lat, x, y)
        assert metres.max() < 0.001


def test_gcj02_shift_in_ningbo_is_about_500_m():
    lon, lat = coords.wgs84_to_gcj02(121.55, 29.87)  # Haishu, Ningbo
    _, _, metres = GEOD.inv(121.55, 29.87, float(lon), float(lat))
    assert 400 < metres < 600


def test_outside_mainland_china_gcj02_is_wgs84():
    lon, lat = coords.wgs84_to_gcj02(np.array([2.35, 139.7]), np.array([48.85, 35.68]))
    assert lon.tolist() == [2.35, 139.7] and lat.tolist() == [48.85, 35.68]
    x, y = coords.gcj02_to_wgs84(np.array([2.35]), np.array([48.85]))
    assert x.tolist() == [2.35] and y.tolist() == [48.85]


def test_to_wgs84_dispatches_and_refuses_unknown_kinds():
    lon, lat = coords.to_wgs84("gcj02", *coords.wgs84_to_gcj02(121.5, 29.8))
    assert float(lon) == pytest.approx(121.5, abs=1e-10)
    assert float(lat) == pytest.approx(29.8, abs=1e-10)
    with pytest.raises(ValueError, match="unknown coordinate kind"):
        coords.to_wgs84("cgcs2000", 121.5, 29.8)
