"""Fixtures shared by the flow and dynamics tests: scenes built without fieldseg_core.synthetic."""

import pytest
from scenes import voronoi_ellipses


@pytest.fixture(scope="module")
def scene2d():
    centres = [(14, 14), (14, 34), (30, 20), (34, 40), (48, 14), (50, 36), (20, 52)]
    radii = [(11, 9), (10, 12), (9, 10), (12, 9), (10, 10), (9, 13), (8, 7)]
    return voronoi_ellipses((62, 64), centres, radii)


@pytest.fixture(scope="module")
def scene3d():
    centres = [(8, 10, 10), (8, 10, 22), (8, 22, 14), (14, 20, 26)]
    radii = [(6, 7, 7), (6, 6, 7), (5, 7, 7), (5, 6, 6)]
    return voronoi_ellipses((20, 32, 34), centres, radii)
