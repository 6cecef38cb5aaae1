"""Seeded synthetic cells: label images and microscope-like images, 2D and 3D.

Every generator here is deterministic: the same arguments and the same integer
``seed`` give bit-identical arrays, because all randomness comes from one
``np.random.default_rng(seed)`` per call, drawn in a fixed order.

Cell model
----------
A cell is an analytic implicit shape ``f_i(x) <= 1`` where ``f_i`` is a
*normalised distance*: 0 on the cell's skeleton (its centre, segment or arc)
and 1 on its outline.

- ``"disk"`` / ``"ellipse"``: ``f`` is the elliptical distance
  ``sqrt(sum_j (y_j / a_j)**2)`` in the cell's rotated frame ``y``
  (ellipsoids in 3D; a 3D ellipse is a prolate spheroid ``a, b, b``).
- ``"rod"``: a capsule (spherocylinder); ``f`` is the Euclidean distance to a
  straight segment divided by the tube radius.
- ``"line"``: the same capsule, but thin and very elongated (filament-like,
  with parallel sides, unlike a thin ellipse).
- ``"crescent"``: a tube around a circular arc (a bent rod), which is
  non-convex (banana / C shape); in 3D the arc lies in a random plane.
- ``"mixed"``: each cell is drawn at random from disk, ellipse and rod.

Sizes are given by an *equivalent radius* ``r`` (the radius of the disk or
ball of the same area or volume) and an *aspect ratio* ``A`` (length over
width).  Every shape is at least 2 px wide (half-width clamped to >= 1 px)
so that it stays face-connected when rasterised.

Overlap factor
--------------
Each cell has a reference centre ``c_i`` and a *bounding radius* ``R_i``, the
radius of the smallest ball around ``c_i`` that contains the cell (the
semi-major axis of an ellipse, half-length plus radius of a capsule; a
crescent's ``c_i`` is the point midway between its arc's apex and chord).
With overlap factor ``o`` in ``[0, 1)`` the centres are placed by rejection
sampling so that, for every pair,

    ``||c_i - c_j|| >= (1 - o) * (R_i + R_j)``.

So ``o = 0`` keeps the bounding balls disjoint (cells never overlap, they may
at most touch), ``o = 0.5`` lets two equal disks of radius ``r`` come as close
as ``r`` (overlapping by up to one radius), and ``o -> 1`` allows nearly
coincident centres.  This is our
own precise reading of the "overlap factor" of the synthetic scenarios of
the Cellpose-SAM course report [1]_ (its exact formula is not given there).

Occlusion models
----------------
Where cells overlap, a pixel can belong to one cell only.  Two models decide
which (``occlusion`` argument of :func:`random_cells`):

``"partition"``
    A pixel claimed by several cells goes to the one with the smallest
    ``f_i`` (ties to the lower id), giving the shared boundaries of a
    tessellation.  Each cell then keeps only its largest face-connected
    component (the rest becomes background).  Overlapping convex cells stay
    convex and their centroids stay deep inside them.
``"paint"``
    Cells are painted in order, id 1 first: cell ``i`` sets every pixel with
    ``f_i <= 1`` to ``i``, covering whatever earlier cells left there, as an
    opaque cell lying on top of another would.  A covered cell keeps only
    the pixels nobody painted later: it may become non-convex (a bite taken
    out), thin (a crescent), a ring (a smaller cell painted on its middle)
    or several fragments, all keeping its id.  Its centroid -- the mean of
    its visible pixels -- may then lie outside it, or next to a neighbour's.
    The paint order is the id order; ``paint_order="largest_first"`` gives
    the large cells the small ids, so small cells lie on top.

Under both models every cell must keep at least ``min_area_fraction`` of its
own rasterised area (all its fragments together, under painting); cells below
that are re-placed.  Every cell lies entirely inside the image.

What the overlap factor means under painting, for two equal disks of radius
``r`` (``R_i = R_j = r``, centres at least ``2 (1 - o) r`` apart): ``o = 0.1``
lets the later disk cover a cap of the earlier one at most ``0.2 r`` deep
(about 5% of its area: a shallow bite); ``o = 0.5`` lets it cover the
earlier disk's centre; ``o = 0.95`` allows centres ``0.1 r`` apart, so the
later disk hides all but a sliver -- which ``min_area_fraction`` then rejects,
making the visibility floor, not ``o``, the binding limit.  For unequal
cells, ``o`` large enough for ``||c_i - c_j|| <= R_i - R_j`` lets a small cell
be painted entirely inside a large earlier one, leaving a ring whose
centroid lies in the hole, i.e. on the other cell.

References
----------
.. [1] Course report on Cellpose-SAM with a from-scratch flow-field
   re-implementation, Sec. 4.1.3 (Table 4, scenarios Ex 1-7) and Sec. 4.1.4
   (20-cell high-overlap stress test, Fig. 5). .
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np
from scipy import ndimage

from ._validate import validate_labels, validate_number

__all__ = [
    "KINDS",
    "OCCLUSIONS",
    "PAINT_ORDERS",
    "SCENE_KNOBS",
    "SCENARIOS",
    "CellShape",
    "benchmark_scene",
    "nonconvex_cells",
    "rasterize_cells",
    "random_cells",
    "render_image",
    "scenario",
]

KINDS = ("disk", "ellipse", "rod", "line", "crescent", "mixed")
OCCLUSIONS = ("partition", "paint")
PAINT_ORDERS = ("random", "largest_first")

# Aspect-ratio range used when ``aspect_range`` is None.
DEFAULT_ASPECT = {
    "disk": (1.0, 1.0),
    "ellipse": (1.0, 2.0),
    "rod": (2.0, 4.0),
    "line": (8.0, 12.0),
    "crescent": (3.0, 5.0),
    "mixed": (1.0, 3.0),
}

_PRIMITIVE = {"disk": "ellipsoid", "ellipse": "ellipsoid", "rod": "capsule",
              "line": "capsule", "crescent": "arc"}
_MIN_HALF_WIDTH = 1.0  # px; keeps thin shapes face-connected on the grid
_BATCH = 128  # candidate centres tested at once during rejection sampling
_MAX_REDRAW_ROUNDS = 50
_NEW_CLUSTER = 0.25  # share of cells that start a new cluster (placement='clustered')


# --------------------------------------------------------------------------
# validation helpers (private)
# --------------------------------------------------------------------------

def _validate_shape(shape, name="shape"):
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(
            f"{name} must be a tuple of 2 or 3 positive integers, got {shape!r}") from None
    if len(dims) not in (2, 3):
        raise ValueError(f"{name} must have 2 or 3 entries (2D or 3D), got {len(dims)}: {dims!r}")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1:
            raise ValueError(f"{name} must contain positive integers, got {dims!r}")
    return tuple(int(d) for d in dims)


def _validate_range(pair, name, low, low_inclusive=True):
    try:
        lo, hi = pair
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high), got {pair!r}") from None
    lo = validate_number(lo, f"{name}[0]", low=low, low_inclusive=low_inclusive)
    hi = validate_number(hi, f"{name}[1]", low=low, low_inclusive=low_inclusive)
    if hi < lo:
        raise ValueError(f"{name} must satisfy low <= high, got {pair!r}")
    return lo, hi


def _validate_kind(kind):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}; got {kind!r}")
    return kind


def _validate_occlusion(occlusion):
    if occlusion not in OCCLUSIONS:
        raise ValueError(
            f"occlusion must be one of {', '.join(map(repr, OCCLUSIONS))}; got {occlusion!r}")
    return occlusion


def _validate_seed(seed):
    return validate_number(seed, "seed", low=0, integer=True)


# --------------------------------------------------------------------------
# cell geometry
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class CellShape:
    """One analytic cell ``f(x) <= 1`` in 2D or 3D.

    Parameters
    ----------
    kind : {"disk", "ellipse", "rod", "line", "crescent"}
        Cell type; disk/ellipse are ellipsoids, rod/line capsules, crescent an
        arc tube.
    centre : ndarray of shape (ndim,)
        Reference centre in pixel coordinates (pixel ``i`` sits at ``i``).
    axes : ndarray of shape (ndim, ndim)
        Orthonormal rows: the cell's body axes in image coordinates.  Row 0 is
        the long axis (for a crescent: the direction of the chord).
    semi_axes : ndarray of shape (ndim,)
        Ellipsoid semi-axes along ``axes`` (ellipsoids only).
    radius : float
        Tube radius (capsules and arcs).
    half_length : float
        Half length of the capsule's segment; for an arc, half its arc length.
    arc_radius, arc_half_angle : float
        Radius of the crescent's arc and half the angle it spans (radians).
    aspect : float
        Aspect ratio the cell was drawn with (length / width).
    equivalent_radius : float
        Radius of the disk (ball) with the cell's area (volume); 0 if not set.
        Shapes thickened to the 1 px minimum half-width are larger than this.
    """

    kind: str
    centre: np.ndarray
    axes: np.ndarray
    semi_axes: np.ndarray | None = None
    radius: float = 0.0
    half_length: float = 0.0
    arc_radius: float = 0.0
    arc_half_angle: float = 0.0
    aspect: float = 1.0
    equivalent_radius: float = 0.0

    def __post_init__(self):
        if self.kind not in _PRIMITIVE:
            raise ValueError(f"kind must be one of {', '.join(map(repr, _PRIMITIVE))}; "
                             f"got {self.kind!r}")
        centre = np.asarray(self.centre, float)
        if centre.ndim != 1 or centre.size not in (2, 3) or not np.all(np.isfinite(centre)):
            raise ValueError(
                f"centre must be a finite vector of length 2 or 3, got {self.centre!r}")
        axes = np.asarray(self.axes, float)
        if axes.shape != (centre.size, centre.size):
            raise ValueError(f"axes must have shape {(centre.size,) * 2}, got {axes.shape}")
        object.__setattr__(self, "centre", centre)
        object.__setattr__(self, "axes", axes)
        if self.primitive == "ellipsoid":
            semi = np.asarray(self.semi_axes if self.semi_axes is not None else [], float)
            if semi.shape != (centre.size,) or not np.all(semi > 0):
                raise ValueError(f"semi_axes must be {centre.size} positive numbers for a "
                                 f"{self.kind}, got {self.semi_axes!r}")
            object.__setattr__(self, "semi_axes", semi)
        elif not self.radius > 0:
            raise ValueError(f"radius must be > 0 for a {self.kind}, got {self.radius!r}")

    @property
    def ndim(self):
        return len(self.centre)

    @property
    def primitive(self):
        return _PRIMITIVE[self.kind]

    def _arc_offset(self):
        # The reference centre sits midway between the arc's apex and its
        # chord, i.e. a distance m in front of the arc's circle centre.
        return self.arc_radius * (1.0 + math.cos(self.arc_half_angle)) / 2.0

    @property
    def bounding_radius(self):
        """Radius of a ball around ``centre`` that contains the whole cell."""
        if self.primitive == "ellipsoid":
            return float(np.max(self.semi_axes))
        if self.primitive == "capsule":
            return self.half_length + self.radius
        rc, th = self.arc_radius, self.arc_half_angle
        # Distance from the centre grows with |angle| along the arc, so the
        # arc's end points are the farthest skeleton points.
        far = math.hypot(rc * math.sin(th), rc * (1.0 - math.cos(th)) / 2.0)
        return far + self.radius

    @property
    def half_extent(self):
        """Half side lengths of the cell's axis-aligned bounding box."""
        if self.primitive == "ellipsoid":
            return np.sqrt(((self.axes * self.semi_axes[:, None]) ** 2).sum(axis=0))
        if self.primitive == "capsule":
            return np.abs(self.axes[0]) * self.half_length + self.radius
        rc, th, rho = self.arc_radius, self.arc_half_angle, self.radius
        local = np.full(self.ndim, rho)
        local[0] += rc * math.sin(min(th, math.pi / 2))
        local[1] += rc * (1.0 - math.cos(th)) / 2.0
        return np.abs(self.axes).T @ local

    def normalised_distance(self, offsets):
        """Evaluate ``f`` at points given as per-axis offsets from the centre.

        Parameters
        ----------
        offsets : sequence of ndarray
            ``offsets[k]`` holds ``x_k - centre[k]``; the arrays broadcast
            against each other (e.g. from ``np.ogrid``).

        Returns
        -------
        f : ndarray
            Normalised distance, ``<= 1`` inside the cell.
        """
        local = [sum(self.axes[j, k] * offsets[k] for k in range(self.ndim))
                 for j in range(self.ndim)]
        if self.primitive == "ellipsoid":
            return np.sqrt(sum((y / a) ** 2 for y, a in zip(local, self.semi_axes)))
        transverse = sum(y ** 2 for y in local[2:]) if self.ndim > 2 else 0.0
        if self.primitive == "capsule":
            along = local[0] - np.clip(local[0], -self.half_length, self.half_length)
            return np.sqrt(along ** 2 + local[1] ** 2 + transverse) / self.radius
        rc, th = self.arc_radius, self.arc_half_angle
        q0 = np.abs(local[0])  # the arc is mirror-symmetric about axis 1
        q1 = local[1] + self._arc_offset()
        angle = np.arctan2(q0, q1)
        on_arc = (np.hypot(q0, q1) - rc) ** 2
        to_end = (q0 - rc * math.sin(th)) ** 2 + (q1 - rc * math.cos(th)) ** 2
        dist2 = np.where(angle <= th, on_arc, to_end) + transverse
        return np.sqrt(dist2) / self.radius


def _random_axes(rng, n, ndim):
    """``n`` uniformly random orthonormal frames, shape (n, ndim, ndim)."""
    if ndim == 2:
        alpha = rng.uniform(0.0, np.pi, n)
        c, s = np.cos(alpha), np.sin(alpha)
        return np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], axis=1)
    # Gram-Schmidt on Gaussian vectors gives Haar-uniform rotations.
    g = rng.standard_normal((n, 2, 3))
    e0 = g[:, 0] / np.linalg.norm(g[:, 0], axis=1, keepdims=True)
    e1 = g[:, 1] - (g[:, 1] * e0).sum(1, keepdims=True) * e0
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    return np.stack([e0, e1, np.cross(e0, e1)], axis=1)


def _unit_ball_volume(d):
    return math.pi ** (d / 2) / math.gamma(d / 2 + 1)


def _tube_radius(r, aspect, ndim):
    """Radius of a capsule with aspect ``aspect`` and the volume of an r-ball."""
    # capsule = ball of radius rho + cylinder of length 2 (A - 1) rho
    ball, disc = _unit_ball_volume(ndim), _unit_ball_volume(ndim - 1)
    return r * (ball / (ball + 2.0 * (aspect - 1.0) * disc)) ** (1.0 / ndim)


def _make_cell(kind, r, aspect, axes, arc_angle, ndim):
    centre = np.zeros(ndim)
    if kind in ("disk", "ellipse"):
        a = aspect if kind == "ellipse" else 1.0
        minor = max(r * a ** (-1.0 / ndim), _MIN_HALF_WIDTH)
        semi = np.full(ndim, minor)
        semi[0] = max(r * a ** ((ndim - 1.0) / ndim), minor)
        return CellShape(kind, centre, axes, semi_axes=semi, aspect=a, equivalent_radius=r)
    rho = max(_tube_radius(r, aspect, ndim), _MIN_HALF_WIDTH)
    half = (aspect - 1.0) * rho
    if kind in ("rod", "line"):
        return CellShape(kind, centre, axes, radius=rho, half_length=half, aspect=aspect,
                         equivalent_radius=r)
    # crescent: keep the arc radius >= 1.2 rho so the bend leaves a hollow
    theta = min(arc_angle, half / (1.2 * rho))
    rc = half / theta if theta > 0 else 0.0
    return CellShape(kind, centre, axes, radius=rho, half_length=half,
                     arc_radius=rc, arc_half_angle=theta, aspect=aspect, equivalent_radius=r)


def _draw_cells(rng, ndim, n, kind, radius_range, aspect_range):
    """Draw the geometry (all but the centres) of ``n`` cells, vectorised."""
    if kind == "mixed":
        kinds = np.array(["disk", "ellipse", "rod"])[rng.integers(0, 3, n)]
    else:
        kinds = np.full(n, kind)
    radii = rng.uniform(radius_range[0], radius_range[1], n)
    aspects = rng.uniform(aspect_range[0], aspect_range[1], n)
    frames = _random_axes(rng, n, ndim)
    arc_angles = rng.uniform(0.3 * np.pi, 0.5 * np.pi, n)
    return [_make_cell(str(k), r, a, f, t, ndim)
            for k, r, a, f, t in zip(kinds, radii, aspects, frames, arc_angles)]


# --------------------------------------------------------------------------
# placement and rasterisation
# --------------------------------------------------------------------------

def _place_centres(rng, cells, shape, overlap, todo, centres, placed, max_tries,
                   clustered):
    """Rejection-sample centres for ``cells[todo]`` against all placed ones."""
    bound = np.array([c.bounding_radius for c in cells])
    extent = np.array([c.half_extent for c in cells])
    upper = np.asarray(shape, float) - 1.0
    for i in todo:
        lo, hi = extent[i], upper - extent[i]
        if np.any(hi < lo):
            raise ValueError(
                f"cannot place cell {i + 1}: its bounding box (half extents "
                f"{np.round(extent[i], 1).tolist()}) does not fit inside shape {shape}; "
                "use a smaller radius_range or aspect_range")
        others = np.flatnonzero(placed)
        need = (1.0 - overlap) * (bound[i] + bound[others])
        tries = 0
        while tries < max_tries:
            batch = min(_BATCH, max_tries - tries)
            cand = rng.uniform(lo, hi, size=(batch, len(shape)))
            dist = np.sqrt(((cand[:, None, :] - centres[others][None]) ** 2).sum(-1))
            ok = np.all(dist >= need, axis=1)
            tries += batch
            if ok.any():
                pick = np.argmax(ok)
                # One cell in four seeds a new cluster; the others take the
                # valid candidate whose closest neighbour sits nearest a random
                # target ratio in [1 - overlap, 1], so they touch or overlap it.
                if clustered and others.size and rng.uniform() >= _NEW_CLUSTER:
                    ratio = (dist / (bound[i] + bound[others])).min(axis=1)
                    target = rng.uniform(1.0 - overlap, 1.0)
                    pick = np.argmin(np.where(ok, np.abs(ratio - target), np.inf))
                centres[i] = cand[pick]
                placed[i] = True
                break
        else:
            raise ValueError(
                f"could not place all {len(cells)} cells: cell {i + 1} found no free "
                f"position in {max_tries} tries (overlap={overlap}, shape={shape}); "
                "lower n_cells or radius_range, raise overlap or max_tries")


def _cell_box(cell, shape):
    lo = np.maximum(np.floor(cell.centre - cell.half_extent), 0).astype(int)
    hi = np.minimum(np.floor(cell.centre + cell.half_extent) + 1, shape).astype(int)
    return tuple(slice(a, b) for a, b in zip(lo, hi))


def _rasterise(shape, cells):
    """Labels (smallest ``f`` wins) and each cell's own pixel count."""
    labels = np.zeros(shape, np.int32)
    best = np.full(shape, np.inf)
    own = np.zeros(len(cells) + 1, np.int64)
    for idx, cell in enumerate(cells, start=1):
        box = _cell_box(cell, shape)
        grid = np.ogrid[box]
        f = cell.normalised_distance([g - c for g, c in zip(grid, cell.centre)])
        inside = f <= 1.0
        own[idx] = np.count_nonzero(inside)
        win = inside & (f < best[box])
        best[box][win] = f[win]
        labels[box][win] = idx
    return labels, own


def _paint(shape, cells):
    """Labels with later cells painted over earlier ones, and each cell's own pixel count."""
    labels = np.zeros(shape, np.int32)
    own = np.zeros(len(cells) + 1, np.int64)
    for idx, cell in enumerate(cells, start=1):
        box = _cell_box(cell, shape)
        grid = np.ogrid[box]
        inside = cell.normalised_distance([g - c for g, c in zip(grid, cell.centre)]) <= 1.0
        own[idx] = np.count_nonzero(inside)
        labels[box][inside] = idx
    return labels, own


def _keep_largest_components(labels):
    """Per label, set all but its largest face-connected component to 0."""
    for idx, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        mask = labels[box] == idx
        comp, n = ndimage.label(mask)
        if n > 1:
            sizes = np.bincount(comp.ravel())
            sizes[0] = 0
            labels[box][mask & (comp != np.argmax(sizes))] = 0
    return labels


def rasterize_cells(shape, cells, occlusion="partition"):
    """Rasterise analytic cells into a label image with touching overlaps.

    Parameters
    ----------
    shape : tuple of int
        2D or 3D output shape.
    cells : sequence of CellShape
        Cells with their centres set; cell ``i`` (0-based) gets id ``i + 1``.
    occlusion : {"partition", "paint"}, optional
        How overlaps are resolved (see the module notes).

    Returns
    -------
    labels : ndarray of int32
        ``"partition"``: a pixel belongs to every cell with ``f <= 1`` at its
        centre and is given to the one with the smallest ``f`` (ties to the
        lower id); each cell keeps only its largest face-connected component,
        the remaining fragments become background.  ``"paint"``: the cell
        with the highest id among those containing the pixel wins, and
        fragments keep their id.  A cell can lose pixels or, in extreme
        overlaps, vanish; :func:`random_cells` guards against that.

    Notes
    -----
    Each cell is evaluated on its own bounding box only, vectorised.

    Examples
    --------
    >>> import numpy as np
    >>> disk = CellShape("disk", np.array([5.0, 5.0]), np.eye(2), semi_axes=np.array([3.0, 3.0]))
    >>> labels = rasterize_cells((11, 11), [disk])
    >>> int(labels.sum()), int(labels[5, 5]), int(labels[5, 9])
    (29, 1, 0)
    """
    shape = _validate_shape(shape)
    for i, c in enumerate(cells):
        if not isinstance(c, CellShape):
            raise TypeError(f"cells[{i}] must be a CellShape, got {type(c).__name__}")
        if c.ndim != len(shape):
            raise ValueError(f"cells[{i}] is {c.ndim}D but shape {shape} is {len(shape)}D")
    occlusion = _validate_occlusion(occlusion)
    if occlusion == "paint":
        return _paint(shape, cells)[0]
    labels, _ = _rasterise(shape, cells)
    return _keep_largest_components(labels)


def random_cells(shape, n_cells, kind="ellipse", radius_range=(8, 14), aspect_range=None,
                 overlap=0.3, seed=0, max_tries=2000, min_area_fraction=0.2,
                 placement="uniform", return_cells=False, occlusion="partition",
                 paint_order="random"):
    """Seeded random label image of analytic cells that overlap by a set factor.

    Parameters
    ----------
    shape : tuple of int
        Image shape, 2D ``(rows, cols)`` or 3D ``(planes, rows, cols)``.
    n_cells : int
        Number of cells, ``>= 0``; all of them are placed or an error is raised.
    kind : {"disk", "ellipse", "rod", "line", "crescent", "mixed"}
        Cell shape (see the module docstring); ellipsoids and random 3D
        orientations in 3D.
    radius_range : (float, float)
        Range of the equivalent radius (disk/ball of equal area/volume), px.
    aspect_range : (float, float), optional
        Range of the aspect ratio (length / width, ``>= 1``).  ``None`` uses
        ``DEFAULT_ASPECT[kind]``.  Disks ignore it (always round).
    overlap : float
        Overlap factor in ``[0, 1)``: centres obey
        ``||c_i - c_j|| >= (1 - overlap) * (R_i + R_j)`` with ``R`` the
        bounding radius, so 0 means disjoint cells (touching at most).
    seed : int
        Seed for ``np.random.default_rng``; equal seeds give equal arrays.
    max_tries : int
        Candidate centres tried per cell before giving up.
    min_area_fraction : float
        In ``(0, 1]``; every cell must keep at least this fraction of its own
        rasterised area after overlaps are resolved, else it is re-placed
        (at most 50 rounds).
    placement : {"uniform", "clustered"}
        ``"uniform"``: each centre is the first valid candidate, i.e. uniform
        over the free space, so ``overlap`` only *allows* overlaps.
        ``"clustered"``: each cell, except about one in four (which start
        new clusters as in ``"uniform"``), takes from a batch of valid
        candidates the one whose nearest neighbour ``j`` gives
        ``||c_i - c_j|| / (R_i + R_j)`` closest to a target drawn uniformly
        from ``[1 - overlap, 1]``; cells then form touching, overlapping
        clusters.  The overlap bound holds in both modes.
    return_cells : bool
        Also return the list of :class:`CellShape` (cell ``i`` has id ``i + 1``).
    occlusion : {"partition", "paint"}
        How overlaps are resolved (module notes): shared boundaries with each
        cell kept whole-and-connected, or opaque painting in id order.
    paint_order : {"random", "largest_first"}
        Id (= paint) order under ``"paint"``: the order the cells were drawn
        in (independent of size), or by decreasing equivalent radius, so
        small cells lie on top.  Ignored by ``"partition"``.

    Returns
    -------
    labels : ndarray of int32
        Ids ``1..n_cells`` (0 = background), every cell lying fully inside
        the image.  Under ``"partition"`` every cell is one face-connected
        component; under ``"paint"`` a covered cell may be in fragments.
    cells : list of CellShape
        Only if ``return_cells``.

    Raises
    ------
    ValueError
        On bad arguments, or when the cells cannot all be placed.

    Notes
    -----
    Cells are drawn (type, size, aspect, orientation), then centres are
    placed largest bounding radius first by vectorised rejection sampling
    (batches of candidates, uniform over the positions that keep the cell in
    the image).  Under ``"partition"`` contested pixels go to the cell with
    the smallest normalised distance, so overlaps become shared boundaries,
    and each cell keeps its largest connected component; under ``"paint"``
    they go to the cell painted last.

    References
    ----------
    .. [1] Course report on Cellpose-SAM, Sec. 4.1.3, Table 4 .

    Examples
    --------
    >>> labels = random_cells((64, 64), 3, kind="disk", overlap=0.0, seed=1)
    >>> labels.shape, labels.dtype.name, sorted(set(labels.ravel().tolist()))
    ((64, 64), 'int32', [0, 1, 2, 3])
    >>> bool((labels == random_cells((64, 64), 3, kind="disk", overlap=0.0, seed=1)).all())
    True
    """
    shape = _validate_shape(shape)
    n = validate_number(n_cells, "n_cells", low=0, integer=True)
    kind = _validate_kind(kind)
    radius_range = _validate_range(radius_range, "radius_range", 0.0, low_inclusive=False)
    aspect_range = _validate_range(
        DEFAULT_ASPECT[kind] if aspect_range is None else aspect_range, "aspect_range", 1.0)
    overlap = validate_number(overlap, "overlap", low=0.0, high=1.0, high_inclusive=False)
    seed = _validate_seed(seed)
    max_tries = validate_number(max_tries, "max_tries", low=1, integer=True)
    min_area_fraction = validate_number(min_area_fraction, "min_area_fraction", low=0.0,
                                        high=1.0, low_inclusive=False)
    if placement not in ("uniform", "clustered"):
        raise ValueError(f"placement must be 'uniform' or 'clustered', got {placement!r}")
    occlusion = _validate_occlusion(occlusion)
    if paint_order not in PAINT_ORDERS:
        raise ValueError(f"paint_order must be one of {', '.join(map(repr, PAINT_ORDERS))}; "
                         f"got {paint_order!r}")

    rng = np.random.default_rng(seed)
    cells = _draw_cells(rng, len(shape), n, kind, radius_range, aspect_range)
    if occlusion == "paint" and paint_order == "largest_first":
        order = np.argsort([-c.equivalent_radius for c in cells], kind="stable")
        cells = [cells[i] for i in order]
    centres = np.zeros((n, len(shape)))
    placed = np.zeros(n, bool)
    bound = np.array([c.bounding_radius for c in cells])
    todo = np.argsort(-bound, kind="stable")
    for _ in range(_MAX_REDRAW_ROUNDS + 1):
        _place_centres(rng, cells, shape, overlap, todo, centres, placed, max_tries,
                       placement == "clustered")
        cells = [dataclasses.replace(c, centre=centres[i].copy()) for i, c in enumerate(cells)]
        if occlusion == "paint":
            labels, own = _paint(shape, cells)
        else:
            labels, own = _rasterise(shape, cells)
            labels = _keep_largest_components(labels)
        kept = np.bincount(labels.ravel(), minlength=n + 1)
        too_small = np.flatnonzero(kept[1:] < min_area_fraction * own[1:])
        if too_small.size == 0:
            return (labels, cells) if return_cells else labels
        placed[too_small] = False
        todo = too_small[np.argsort(-bound[too_small], kind="stable")]
    raise ValueError(
        f"could not give all {n} cells at least {min_area_fraction:.0%} of their area after "
        f"{_MAX_REDRAW_ROUNDS} re-draws (overlap={overlap}); lower overlap or n_cells")


# --------------------------------------------------------------------------
# image formation
# --------------------------------------------------------------------------

def _inner_borders(labels):
    """Cell pixels with a face neighbour of a different label."""
    border = np.zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        lo = [slice(None)] * labels.ndim
        hi = [slice(None)] * labels.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        differ = labels[tuple(lo)] != labels[tuple(hi)]
        border[tuple(lo)] |= differ
        border[tuple(hi)] |= differ
    return border & (labels > 0)


def _count_cells(labels):
    return int(np.count_nonzero(np.unique(labels))) if labels.max() > 4 * labels.size \
        else int(np.count_nonzero(np.bincount(labels.ravel())[1:]))


def _per_cell_values(labels, values):
    """Image holding ``values[k]`` on the k-th smallest cell id, 0 on background."""
    top = int(labels.max())
    if top <= 4 * labels.size:  # a lookup table is cheaper than sorting
        ids = np.flatnonzero(np.bincount(labels.ravel(), minlength=top + 1)[1:]) + 1
        lut = np.zeros(top + 1)
        lut[ids] = values
        return lut[labels]
    ids, inverse = np.unique(labels, return_inverse=True)
    lut = np.concatenate([[0.0], values]) if ids[0] == 0 else np.asarray(values, float)
    return lut[inverse.reshape(labels.shape)]


def _illumination_ramp(rng, shape):
    """Linear ramp in a random direction, scaled to [-1, 1] over the image."""
    direction = rng.standard_normal(len(shape))
    direction /= np.linalg.norm(direction)
    half = (np.asarray(shape) - 1) / 2.0
    scale = float(np.abs(direction) @ half)
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    ramp = sum(u * (g - h) for u, g, h in zip(direction, grid, half))
    return ramp / scale if scale > 0 else np.zeros(shape) + ramp


def render_image(labels, seed=0, snr=20.0, blur_sigma=1.0, texture=0.2, illumination=0.3,
                 background=0.2, border_contrast=0.35, brightness_range=(0.6, 1.0),
                 normalize=True):
    """Render a microscope-like image of a label image.

    Parameters
    ----------
    labels : array_like of int
        2D or 3D label image (0 = background).
    seed : int
        Seed for ``np.random.default_rng``.
    snr : float or None
        Signal-to-noise ratio at the mean cell intensity: mean over cell pixels
        of the noiseless image divided by the noise standard deviation there.
        Half the noise variance at that level is Poisson shot noise, half
        Gaussian read noise.  ``None`` renders without noise.
    blur_sigma : float
        Standard deviation (px) of the Gaussian point spread function.
    texture : float
        Relative amplitude of smooth intracellular texture, in ``[0, 1)``.
    illumination : float
        Relative amplitude of the linear illumination gradient, in ``[0, 1)``:
        the gain varies between ``1 - illumination`` and ``1 + illumination``.
    background : float
        Background intensity, ``>= 0``, relative to cell brightness ~ 1.
    border_contrast : float
        Fraction in ``[0, 1]`` by which cell-border pixels are dimmed, so that
        touching cells stay visible.
    brightness_range : (float, float)
        Range of the per-cell brightness.
    normalize : bool
        Map the 0.5th and 99.5th percentiles to 0 and 1 (without clipping).

    Returns
    -------
    image : ndarray of float32
        Same shape as ``labels``.

    Notes
    -----
    Model: ``(background + b_i * t(x) * border(x)) * gain(x)``, blurred by the
    PSF, then ``Poisson(signal / k) * k + Normal(0, s)`` where ``k`` and ``s``
    give the requested ``snr`` at the mean cell level.

    References
    ----------
    .. [1] Course report on Cellpose-SAM, Sec. 5 limitation 1 (synthetic data
       lacks noise, blur and contrast variation).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((32, 32), np.int32); labels[8:24, 8:24] = 1
    >>> image = render_image(labels, seed=0)
    >>> image.dtype.name, bool(image[labels == 1].mean() > image[labels == 0].mean())
    ('float32', True)
    """
    labels = validate_labels(labels)
    seed = _validate_seed(seed)
    if snr is not None:
        snr = validate_number(snr, "snr", low=0.0, low_inclusive=False)
    blur_sigma = validate_number(blur_sigma, "blur_sigma", low=0.0)
    texture = validate_number(texture, "texture", low=0.0, high=1.0, high_inclusive=False)
    illumination = validate_number(illumination, "illumination", low=0.0, high=1.0,
                                   high_inclusive=False)
    background = validate_number(background, "background", low=0.0)
    border_contrast = validate_number(border_contrast, "border_contrast", low=0.0, high=1.0)
    b_lo, b_hi = _validate_range(brightness_range, "brightness_range", 0.0, low_inclusive=False)

    rng = np.random.default_rng(seed)
    cells = _per_cell_values(labels, rng.uniform(b_lo, b_hi, _count_cells(labels)))
    # Drawn even when unused so that the later random draws do not depend on texture.
    noise = ndimage.gaussian_filter(rng.standard_normal(labels.shape), 2.0)
    if texture > 0:
        cells *= np.clip(1.0 + texture * noise / max(noise.std(), 1e-12), 0.0, None)
    cells[_inner_borders(labels)] *= 1.0 - border_contrast
    signal = (background + cells) * (1.0 + illumination * _illumination_ramp(rng, labels.shape))
    if blur_sigma > 0:
        signal = ndimage.gaussian_filter(signal, blur_sigma)
    if snr is not None:
        fg = labels > 0
        level = float(signal[fg].mean() if fg.any() else signal.mean())
        if level > 0:
            gain = level / (2.0 * snr ** 2)  # signal units per photon
            signal = rng.poisson(signal / gain) * gain
            signal += rng.normal(0.0, level / (snr * math.sqrt(2.0)), labels.shape)
    if normalize:
        lo, hi = np.percentile(signal, [0.5, 99.5])
        signal = (signal - lo) / (hi - lo if hi > lo else 1.0)
    return signal.astype(np.float32)


# --------------------------------------------------------------------------
# presets
# --------------------------------------------------------------------------

#: The one set of scene knobs shared by every preset of :data:`SCENARIOS`
#: (none is tuned per scenario):
#:
#: - ``shape`` 256 x 256 px: one field of view, so the 30 cells of Ex 5 are
#:   three times as dense as the 10 of Ex 2;
#: - ``radius_range`` 12-18 px equivalent radius (a cell of 25-35 px across),
#:   the same cell size for every shape, so elongated cells are longer, not
#:   bigger;
#: - ``placement="clustered"``: cells grow in colonies (three in four join a
#:   neighbour at a distance set by the overlap factor), as adherent cells do;
#: - ``occlusion="paint"`` with ``paint_order="largest_first"``: opaque cells
#:   painted large first, so smaller cells lie on top of larger ones;
#: - ``min_area_fraction=0.1``: a cell counts (and is annotated) while at least
#:   10% of it shows.
SCENE_KNOBS = {"shape": (256, 256), "radius_range": (12, 18), "placement": "clustered",
               "occlusion": "paint", "paint_order": "largest_first",
               "min_area_fraction": 0.1}


def _preset(description, n_cells, kind, aspect_range, overlap, source, paper_mean_iou=None):
    return {"description": description, **SCENE_KNOBS, "n_cells": n_cells, "kind": kind,
            "aspect_range": aspect_range, "overlap": overlap, "source": source,
            "paper_mean_iou": paper_mean_iou}


#: Synthetic scenarios of Le & Nguyen Table 4 (Ex 1-7) plus the 20-cell stress
#: test of its Fig. 5, as ``name -> dict``: the :func:`random_cells` arguments
#: (the shared :data:`SCENE_KNOBS` plus ``n_cells``, ``kind``,
#: ``aspect_range``, ``overlap``), a one-line ``description``, the ``source``
#: and the mean IoU the report gives for its flow-field method
#: (``paper_mean_iou``, None for the stress test).  Counts, shape types,
#: aspect ratios and overlap factors follow the report; everything else is
#: :data:`SCENE_KNOBS`, the same for all.
SCENARIOS = {
    "ex1": _preset("Baseline: 12 cells of mixed shapes, moderate overlap", 12, "mixed",
                   (1.0, 2.5), 0.6, "Le & Nguyen, Table 4, Ex 1", 0.994),
    "ex2": _preset("High-overlap ellipses: 10 cells", 10, "ellipse", (1.2, 2.5),
                   0.8, "Le & Nguyen, Table 4, Ex 2", 1.000),
    "ex3": _preset("Long thin cells: 8 ellipses with aspect ratio 4-6, low overlap", 8,
                   "ellipse", (4.0, 6.0), 0.2, "Le & Nguyen, Table 4, Ex 3", 0.987),
    "ex4": _preset("Highly elongated: 10 ellipses with aspect ratio 5-8", 10, "ellipse",
                   (5.0, 8.0), 0.3, "Le & Nguyen, Table 4, Ex 4", 0.980),
    "ex5": _preset("High density: 30 circular cells", 30, "disk", (1.0, 1.0), 0.7,
                   "Le & Nguyen, Table 4, Ex 5", 0.834),
    "ex6": _preset("Sparse line-like cells: 6 filaments with aspect ratio 8-12", 6, "line",
                   (8.0, 12.0), 0.1, "Le & Nguyen, Table 4, Ex 6", 0.891),
    "ex7": _preset("Extreme overlap: 10 cells of mixed shapes", 10, "mixed",
                   (1.0, 2.5), 0.95, "Le & Nguyen, Table 4, Ex 7", 0.976),
    "stress20": _preset("Stress test: 20 cells of mixed shapes with high overlap", 20,
                        "mixed", (1.0, 2.5), 0.9, "Le & Nguyen, Sec. 4.1.4, Fig. 5"),
}

_GENERATOR_KEYS = ("shape", "n_cells", "kind", "radius_range", "aspect_range", "overlap",
                   "placement", "occlusion", "paint_order", "min_area_fraction")


def scenario(name, seed=0, return_cells=False, occlusion=None):
    """Image and labels of a named preset from :data:`SCENARIOS`.

    Parameters
    ----------
    name : str
        ``"ex1"`` ... ``"ex7"`` (Le & Nguyen Table 4) or ``"stress20"``.
    seed : int
        Seed for both the cell layout and the rendering.
    occlusion : {"paint", "partition"}, optional
        Override the preset's occlusion model (:data:`SCENE_KNOBS`, painting)
        with the same cell layout: ``"partition"`` gives every overlap to the
        nearer centre, so every cell stays one convex region.
    return_cells : bool, optional
        Also return the analytic cells (e.g. to resolve their overlaps with
        the other occlusion model through :func:`rasterize_cells`).

    Returns
    -------
    image : ndarray of float32
        Rendered with :func:`render_image` defaults.
    labels : ndarray of int32
        Ids ``1..SCENARIOS[name]["n_cells"]``.
    cells : list of CellShape
        Only if ``return_cells``; cell ``i`` has id ``i + 1``.

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Table 4 and Fig. 5.

    Examples
    --------
    >>> image, labels = scenario("ex2", seed=3)
    >>> image.shape, int(labels.max())
    ((256, 256), 10)
    >>> _, painted, cells = scenario("ex7", seed=3, return_cells=True)
    >>> bool((rasterize_cells(painted.shape, cells, occlusion="paint") == painted).all())
    True
    >>> _, parted = scenario("ex7", seed=3, occlusion="partition")
    >>> int(parted.max()), bool((parted > 0).sum() == (painted > 0).sum())  # same layout
    (10, True)
    """
    if name not in SCENARIOS:
        raise ValueError(f"name must be one of {', '.join(map(repr, SCENARIOS))}; got {name!r}")
    seed = _validate_seed(seed)
    params = {k: SCENARIOS[name][k] for k in _GENERATOR_KEYS}
    if occlusion is not None:
        if occlusion not in ("paint", "partition"):
            raise ValueError(f"occlusion must be 'paint' or 'partition', got {occlusion!r}")
        params["occlusion"] = occlusion
    labels, cells = random_cells(seed=seed, return_cells=True, **params)
    if return_cells:
        return render_image(labels, seed=seed), labels, cells
    return render_image(labels, seed=seed), labels


#: Layouts of :func:`benchmark_scene`: (shape, n_cells, radius_range, aspect_range, overlap).
_BENCHMARK_LAYOUTS = {
    ("standard", 2): ((512, 512), 100, (20, 27), (1.0, 1.8), 0.45),
    ("standard", 3): ((64, 128, 128), 100, (9, 12), (1.0, 1.6), 0.45),
    # Larger cells packed closer: ~81 % foreground in 2D, ~60 % in 3D.
    ("dense", 2): ((512, 512), 100, (26, 33), (1.0, 1.8), 0.5),
    ("dense", 3): ((64, 128, 128), 108, (11, 14), (1.0, 1.6), 0.5),
}


def benchmark_scene(ndim, seed=0, density="standard"):
    """Scene of touching ellipses (2D) or ellipsoids (3D) for timing.

    Parameters
    ----------
    ndim : {2, 3}
        2 gives a 512 x 512 image, 3 a 64 x 128 x 128 volume.
    seed : int
        Seed for the layout and the rendering.
    density : {"standard", "dense"}
        ``"standard"``: 100 cells of equivalent radius 20-27 px (2D, about
        60 % foreground) or 9-12 px (3D, about 43 %). ``"dense"``: the scenes
        the comparison with Cellpose and Omnipose uses
        (``benchmarks/bench_peers.py``), 100 ellipses of radius 26-33 px
        covering about 81 % of the image, or 108 ellipsoids of radius
        11-14 px covering about 60 % of the volume. Larger cells make every
        per-cell solver and every flow-following step count work harder.

    Returns
    -------
    image : ndarray of float32
    labels : ndarray of int32
        Ids ``1..n`` (n = 100, or 108 for the dense 3D scene); most cells
        share a boundary with a neighbour.

    Examples
    --------
    >>> image, labels = benchmark_scene(2, seed=0)
    >>> labels.shape, int(labels.max())
    ((512, 512), 100)
    >>> _, dense = benchmark_scene(2, seed=0, density="dense")
    >>> int(dense.max()), round(float((dense > 0).mean()), 2)
    (100, 0.81)
    """
    ndim = validate_number(ndim, "ndim", integer=True)
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim}")
    seed = _validate_seed(seed)
    if density not in ("standard", "dense"):
        raise ValueError(f"density must be 'standard' or 'dense', got {density!r}")
    shape, n_cells, radius_range, aspect_range, overlap = _BENCHMARK_LAYOUTS[density, ndim]
    labels = random_cells(shape, n_cells, kind="ellipse", radius_range=radius_range,
                          aspect_range=aspect_range, overlap=overlap, seed=seed)
    return render_image(labels, seed=seed), labels


def nonconvex_cells(shape=(96, 96)):
    """Fixed teaching scene: a crescent, an elongated rod and two touching disks.

    Parameters
    ----------
    shape : tuple of int
        2D shape, each side at least 48; the layout scales with it.

    Returns
    -------
    labels : ndarray of int32
        1 = C-shaped crescent (left), 2 = elongated rod (top right),
        3 and 4 = two disks sharing a boundary (bottom right).

    Examples
    --------
    >>> labels = nonconvex_cells()
    >>> labels.shape, int(labels.max())
    ((96, 96), 4)
    """
    shape = _validate_shape(shape)
    if len(shape) != 2 or min(shape) < 48:
        raise ValueError(f"shape must be 2D with both sides >= 48, got {shape}")
    h, w = shape
    s = min(h, w) / 96.0
    rot = np.array([[np.cos(0.5), np.sin(0.5)], [-np.sin(0.5), np.cos(0.5)]])
    crescent = _make_cell("crescent", 15.0 * s, 4.5, np.array([[1.0, 0.0], [0.0, 1.0]]),
                          0.5 * np.pi, 2)
    rod = _make_cell("rod", 9.0 * s, 4.0, rot, 0.0, 2)
    disk_a = _make_cell("disk", 11.0 * s, 1.0, np.eye(2), 0.0, 2)
    disk_b = _make_cell("disk", 9.0 * s, 1.0, np.eye(2), 0.0, 2)
    centres = [(0.5 * h, 0.27 * w), (0.27 * h, 0.7 * w), (0.72 * h, 0.6 * w),
               (0.72 * h, 0.6 * w + 18.0 * s)]
    cells = [dataclasses.replace(c, centre=np.array(p, float))
             for c, p in zip((crescent, rod, disk_a, disk_b), centres)]
    return rasterize_cells(shape, cells)


# --------------------------------------------------------------------------
# stand-ins for a network's output, and neighbourhood counts (book helpers)
# --------------------------------------------------------------------------

def _smooth_unit_noise(shape, corr, seed, axes):
    # Gaussian white noise smoothed over ``axes`` with std ``corr`` px, rescaled to unit std.
    rng = np.random.default_rng(seed)
    sigma = [corr if ax in axes else 0.0 for ax in range(len(shape))]
    bumps = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    std = bumps.std()
    return bumps / std if std > 0 else bumps


def imitate_prediction(field, labels, noise=0.1, blur=1.5, corr=2.0, background=0.01, seed=0):
    """A stand-in for a network's scalar-field prediction: blurred ideal field plus smooth noise.

    Parameters
    ----------
    field : (M, N) or (P, M, N) array of float
        Ideal field (e.g. :func:`fieldseg_core.fields.poisson_field`).
    labels : array of int, same shape
        Instances; the noise amplitude is ``noise`` on cells, ``background`` elsewhere.
    noise, background : float
        Standard deviation (>= 0) of the added noise inside cells and on the background.
    blur : float
        Standard deviation (px, >= 0) of the Gaussian blur of the ideal field:
        a network's output is smoother than its target, valleys fill in.
    corr : float
        Correlation length (px, >= 0) of the noise: errors of a network are
        correlated over a few pixels (bumps on the domes, uneven peaks).
    seed : int
        Seed of the noise; the same seed gives the same array.

    Returns
    -------
    ndarray of float64
        ``max(G_blur * field + a * n, 0)`` with ``n`` smooth noise of unit
        standard deviation over the image and ``a`` the amplitude map.

    Notes
    -----
    Only a stand-in for a trained model, used where the book studies what a
    reader (watershed, clustering) does with an imperfect field; chapter 8
    trains real ones. The input is not modified.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((16, 16), int); lab[4:12, 4:12] = 1
    >>> u = np.where(lab > 0, 1.0, 0.0)
    >>> v = imitate_prediction(u, lab, noise=0.0, background=0.0, blur=0.0)
    >>> bool(np.array_equal(u, v))
    True
    >>> bool(np.array_equal(imitate_prediction(u, lab, seed=3), imitate_prediction(u, lab, seed=3)))
    True
    """
    field = np.asarray(field)
    if field.dtype == bool or not np.issubdtype(field.dtype, np.number) or field.ndim not in (2, 3):
        raise TypeError(f"field must be a real 2D or 3D array, got dtype {field.dtype}, {field.ndim}D")
    if not np.all(np.isfinite(field)):
        raise ValueError("field must be finite")
    labels = validate_labels(labels)
    if labels.shape != field.shape:
        raise ValueError(f"labels must have the shape of field {field.shape}, got {labels.shape}")
    noise = validate_number(noise, "noise", low=0)
    background = validate_number(background, "background", low=0)
    blur = validate_number(blur, "blur", low=0)
    corr = validate_number(corr, "corr", low=0)
    _validate_seed(seed)
    base = ndimage.gaussian_filter(field.astype(np.float64), blur) if blur > 0 else field.astype(np.float64)
    bumps = _smooth_unit_noise(field.shape, corr, seed, axes=range(field.ndim))
    amplitude = np.where(labels > 0, noise, background)
    return np.clip(base + amplitude * bumps, 0.0, None)


def imitate_flow_prediction(flows, labels, noise=0.3, corr=2.0, seed=0):
    """A stand-in for a network's flow prediction: ideal flows plus smooth noise inside cells.

    Parameters
    ----------
    flows : (ndim, *spatial) array of float
        Ideal flows (e.g. :func:`fieldseg_core.flows.heat_flows`), ndim = 2 or 3.
    labels : (*spatial) array of int
        Instances; the noisy flows are zero on the background.
    noise : float
        Amplitude (>= 0): the added noise has standard deviation ``noise``
        over the whole image before masking.
    corr : float
        Spatial correlation length (px, >= 0); components are independent.
    seed : int
        Seed of the noise.

    Returns
    -------
    ndarray of float32, shape of ``flows``
        ``flows + noise * n`` on cells, 0 on the background (``n`` smooth noise
        of unit standard deviation, smoothed over the spatial axes only).

    Notes
    -----
    The unit vectors are not renormalised: a network's flows are not unit
    vectors either. The input is not modified.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((12, 12), int); lab[2:10, 2:10] = 1
    >>> F = np.ones((2, 12, 12))
    >>> out = imitate_flow_prediction(F, lab, noise=0.0)
    >>> float(out[:, 0, 0].sum()), float(out[:, 5, 5].sum())
    (0.0, 2.0)
    """
    flows = np.asarray(flows)
    if flows.dtype == bool or not np.issubdtype(flows.dtype, np.number):
        raise TypeError(f"flows must be a real array, got dtype {flows.dtype}")
    if flows.ndim not in (3, 4) or flows.shape[0] != flows.ndim - 1:
        raise ValueError(f"flows must have shape (ndim, *spatial) with ndim 2 or 3, got {flows.shape}")
    if not np.all(np.isfinite(flows)):
        raise ValueError("flows must be finite")
    labels = validate_labels(labels)
    if labels.shape != flows.shape[1:]:
        raise ValueError(f"labels must have the spatial shape of flows {flows.shape[1:]}, got {labels.shape}")
    noise = validate_number(noise, "noise", low=0)
    corr = validate_number(corr, "corr", low=0)
    _validate_seed(seed)
    bumps = _smooth_unit_noise(flows.shape, corr, seed, axes=range(1, flows.ndim))
    return np.where(labels > 0, flows + noise * bumps, 0.0).astype(np.float32)


def _face_pairs(labels):
    # (a, b) id arrays of every face between two different cells, over all axes.
    a_all, b_all = [], []
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)[:-1].ravel()
        b = np.moveaxis(labels, axis, 0)[1:].ravel()
        sel = (a != b) & (a > 0) & (b > 0)
        a_all.append(a[sel])
        b_all.append(b[sel])
    return np.concatenate(a_all), np.concatenate(b_all)


def touching_pairs(labels):
    """The pairs of cells that share a face (2D: an edge, 3D: a face).

    Parameters
    ----------
    labels : (M, N) or (P, M, N) array of int
        Instances (0 = background).

    Returns
    -------
    ndarray of int64, shape (K, 2)
        Distinct pairs ``(smaller id, larger id)``, sorted; ``K = 0`` when no
        two cells touch. Diagonal contact does not count.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.array([[1, 1, 2, 0, 4],
    ...                 [3, 3, 2, 0, 4]])
    >>> touching_pairs(lab).tolist()
    [[1, 2], [1, 3], [2, 3]]
    """
    labels = validate_labels(labels)
    a, b = _face_pairs(labels)
    pairs = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1).astype(np.int64)
    return np.unique(pairs, axis=0) if pairs.size else pairs.reshape(0, 2)


def touching_count(labels):
    """Number of pixel (voxel) faces shared by two different cells.

    Parameters
    ----------
    labels : (M, N) or (P, M, N) array of int
        Instances (0 = background).

    Returns
    -------
    int
        How much cell-to-cell border the image has, in pixel faces: a
        measure of how crowded a scene is.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.array([[1, 1, 2, 0, 4],
    ...                 [3, 3, 2, 0, 4]])
    >>> touching_count(lab)
    4
    """
    labels = validate_labels(labels)
    return int(_face_pairs(labels)[0].size)


__all__ += ["imitate_prediction", "imitate_flow_prediction", "touching_pairs", "touching_count"]
