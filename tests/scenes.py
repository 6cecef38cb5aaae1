"""Label scenes for the tests, built without fieldseg_core.synthetic."""

import numpy as np


def voronoi_ellipses(shape, centres, radii):
    """Touching convex cells: each pixel goes to its nearest centre if inside that centre's ellipse."""
    grid = np.indices(shape).reshape(len(shape), -1).T.astype(float)
    centres = np.asarray(centres, float)
    radii = np.asarray(radii, float)
    d2 = ((grid[:, None, :] - centres[None]) ** 2).sum(-1)
    near = d2.argmin(1)
    inside = (((grid - centres[near]) / radii[near]) ** 2).sum(1) < 1
    return np.where(inside, near + 1, 0).reshape(shape).astype(np.int32)
