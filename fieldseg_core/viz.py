"""Figures for the book: plotly 3D topographic maps and volumes, matplotlib panels.

Importing this module registers a plotly renderer named ``"fieldseg"`` and makes
``"plotly_mimetype+fieldseg"`` the default. The first part gives JupyterLab its
live plotly figure; the second is plain HTML that *omits* plotly.js and
MathJax, so the built book loads both from its own ``_static`` folder
(plotly.js copied there by the book's ``_ext/offline.py`` extension, MathJax by
``sphinx-mathjax-offline``) and renders with no network at all.

Plotly figures here are interactive in the static book too: 3D views rotate,
and sliders (:func:`frames_slider`) step through precomputed frames.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer
from plotly.subplots import make_subplots

from ._labels import compact_labels
from ._validate import validate_field, validate_labels, validate_number, validate_same_shape

__all__ = [
    "setup_plotly_offline",
    "label_colors",
    "label_rgb",
    "field_surface",
    "field_surfaces",
    "volume_isosurfaces",
    "volume_slices",
    "frames_slider",
    "show_panels",
    "overlay",
    "table",
]

#: Qualitative palette for instances (label k gets PALETTE[(k - 1) % len]).
PALETTE = np.array([
    [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
    [140, 86, 75], [227, 119, 194], [188, 189, 34], [23, 190, 207], [174, 199, 232],
    [255, 187, 120], [152, 223, 138], [255, 152, 150], [197, 176, 213], [196, 156, 148],
    [247, 182, 210], [219, 219, 141], [158, 218, 229],
], dtype=np.uint8)


class _OfflineHtmlRenderer(MimetypeRenderer):
    """text/html without plotly.js or MathJax: the page supplies both."""

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(
            fig_dict, full_html=False, include_plotlyjs=False, include_mathjax=False,
            validate=False, config={"displaylogo": False},
            auto_play=False,  # a slider opens on its first frame, where the text starts
        )
        return {"text/html": html}


def setup_plotly_offline(default=True):
    """Register the ``"fieldseg"`` plotly renderer (and make it the default).

    Parameters
    ----------
    default : bool
        Also set ``plotly.io.renderers.default`` to
        ``"plotly_mimetype+fieldseg"``.
    """
    pio.renderers["fieldseg"] = _OfflineHtmlRenderer()
    if default:
        pio.renderers.default = "plotly_mimetype+fieldseg"


setup_plotly_offline()


def label_colors(n):
    """RGB colours (uint8, shape (n, 3)) for labels 1..n, cycling the palette."""
    n = validate_number(n, "n", low=0, integer=True)
    return PALETTE[np.arange(n) % len(PALETTE)]


def label_rgb(labels, background=(0, 0, 0)):
    """Colour a label image: uint8 RGB array of shape ``labels.shape + (3,)``."""
    labels = validate_labels(labels)
    lut = np.vstack([np.array(background, dtype=np.uint8), PALETTE])
    index = np.where(labels > 0, (labels - 1) % len(PALETTE) + 1, 0)
    return lut[index]


def _stride(shape, max_size):
    return max(1, int(np.ceil(max(shape) / max_size)))


def _instance_colorscale():
    """Discrete plotly colorscale: value 0 -> grey background, k -> palette colour."""
    n = len(PALETTE)
    colors = ["rgb(200,200,200)"] + [f"rgb({r},{g},{b})" for r, g, b in PALETTE]
    scale = []
    for i, c in enumerate(colors):
        scale += [[i / (n + 1), c], [(i + 1) / (n + 1), c]]
    return scale


def _surface_trace(field, labels, max_size, showscale, colorscale):
    step = _stride(field.shape, max_size)
    z = field[::step, ::step]
    y, x = np.mgrid[0:field.shape[0]:step, 0:field.shape[1]:step]
    kwargs = dict(x=x, y=y, z=z, showscale=showscale, hovertemplate="x %{x}, y %{y}<br>u = %{z:.3f}<extra></extra>")
    if labels is None:
        return go.Surface(colorscale=colorscale, cmin=0, cmax=1, **kwargs)
    lab = labels[::step, ::step]
    color_index = np.where(lab > 0, (lab - 1) % len(PALETTE) + 1, 0).astype(float)
    n = len(PALETTE)
    # Centre each index in its colour band so interpolation never crosses bands.
    return go.Surface(
        surfacecolor=(color_index + 0.5) / (n + 1), colorscale=_instance_colorscale(),
        cmin=0, cmax=1, **kwargs,
    )


def _scene_layout(zmax=1.05):
    return dict(
        xaxis_title="x", yaxis_title="y", zaxis_title="u",
        zaxis=dict(range=[0, zmax]), aspectmode="manual",
        aspectratio=dict(x=1, y=1, z=0.4), camera=dict(eye=dict(x=1.3, y=-1.5, z=1.0)),
    )


def field_surface(field, labels=None, title=None, max_size=160, colorscale="Viridis", height=480):
    """3D topographic map of a 2D field, coloured per instance when labels are given.

    Parameters
    ----------
    field : (M, N) array of float
        The field (height of the surface).
    labels : (M, N) array of int, optional
        Instances; each gets its own colour (background grey). Without labels
        the surface is coloured by height.
    title : str, optional
        Figure title.
    max_size : int
        Larger images are subsampled with a uniform stride to at most this
        many points per axis, which keeps the page light.
    colorscale : str
        Plotly colour scale for height colouring.
    height : int
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from fieldseg_core.fields import poisson_field
    >>> labels = np.zeros((20, 20), dtype=int); labels[4:16, 4:16] = 1
    >>> fig = field_surface(poisson_field(labels), labels)
    >>> fig.data[0].type
    'surface'
    """
    field = validate_field(field, "field", ndims=(2,))
    if labels is not None:
        labels = validate_labels(labels, ndims=(2,))
        validate_same_shape(field, labels, "field", "labels")
    max_size = validate_number(max_size, "max_size", low=2, integer=True)
    fig = go.Figure(_surface_trace(field, labels, max_size, labels is None, colorscale))
    fig.update_layout(
        title=title, height=height, margin=dict(l=0, r=0, t=40 if title else 10, b=0),
        scene=_scene_layout(max(1.05, float(field.max()) * 1.05)),
    )
    return fig


def _validate_field_dict(fields, labels):
    """A non-empty dict of same-shape 2D fields (and optional 2D labels of that shape)."""
    if not isinstance(fields, dict) or not fields:
        raise TypeError("fields must be a non-empty dict of title -> 2D field")
    arrays = {k: validate_field(v, f"fields[{k!r}]", ndims=(2,)) for k, v in fields.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1:
        raise ValueError(f"all fields must have the same shape, got {sorted(shapes)}")
    if labels is not None:
        labels = validate_labels(labels, ndims=(2,))
        validate_same_shape(next(iter(arrays.values())), labels, "fields", "labels")
    return arrays, labels


def field_surfaces(fields, labels=None, max_size=100, height=420):
    """Side-by-side 3D topographic maps of several 2D fields (one scene each).

    Parameters
    ----------
    fields : dict of str -> (M, N) array
        Titles and fields, all of the same shape.
    labels : (M, N) array of int, optional
        Instances for per-instance colouring.
    max_size, height : int
        As in :func:`field_surface`.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    arrays, labels = _validate_field_dict(fields, labels)
    n = len(arrays)
    fig = make_subplots(rows=1, cols=n, specs=[[{"type": "scene"}] * n], subplot_titles=list(arrays))
    zmax = max(1.05, max(float(a.max()) for a in arrays.values()) * 1.05)
    for i, a in enumerate(arrays.values(), start=1):
        fig.add_trace(_surface_trace(a, labels, max_size, False, "Viridis"), row=1, col=i)
        fig.layout[f"scene{'' if i == 1 else i}"].update(_scene_layout(zmax))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=40, b=0))
    return fig


def volume_isosurfaces(labels, field=None, level=0.5, max_cells=60, step=1, title=None, height=520):
    """3D view of a label volume: one coloured isosurface mesh per cell.

    Parameters
    ----------
    labels : (P, M, N) array of int
        Label volume.
    field : (P, M, N) array of float, optional
        When given, each cell's surface is the ``level`` isosurface of the
        field (e.g. 0.5 shows the inner half of a normalised field);
        otherwise the cell's boundary.
    level : float
        Iso level of ``field`` (ignored without a field).
    max_cells : int
        Draw at most this many cells (the largest), to keep the figure light.
    step : int
        Marching-cubes step size (2 halves the mesh resolution).
    title : str, optional
        Figure title.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    from scipy import ndimage as ndi
    from skimage.measure import marching_cubes

    labels = validate_labels(labels, ndims=(3,))
    if field is not None:
        field = validate_field(field, "field", ndims=(3,))
        validate_same_shape(labels, field, "labels", "field")
    max_cells = validate_number(max_cells, "max_cells", low=1, integer=True)
    step = validate_number(step, "step", low=1, integer=True)
    # Compact ids: find_objects and bincount are sized by the largest id.
    compact, original = compact_labels(labels)
    boxes = ndi.find_objects(compact)
    sizes = np.bincount(compact.ravel())
    # Largest first; ties keep id order (stable sort), and never background.
    order = np.argsort(-sizes[1:], kind="stable") + 1
    fig = go.Figure()
    for index in order[:max_cells]:
        cell_id = int(original[index - 1])
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in boxes[index - 1])
        inside = compact[box] == index
        vol = np.where(inside, field[box], 0.0) if field is not None else inside.astype(float)
        vol = np.pad(vol, 1)
        iso = level if field is not None else 0.5
        if vol.max() <= iso:
            continue
        verts, faces, _, _ = marching_cubes(vol, level=iso, step_size=step)
        verts += np.array([s.start - 1 for s in box])
        r, g, b = PALETTE[(cell_id - 1) % len(PALETTE)]
        fig.add_trace(go.Mesh3d(
            z=verts[:, 0], y=verts[:, 1], x=verts[:, 2], i=faces[:, 0], j=faces[:, 1], k=faces[:, 2],
            color=f"rgb({r},{g},{b})", opacity=1.0, flatshading=True, name=f"cell {cell_id}",
            hoverinfo="name",
        ))
    fig.update_layout(
        title=title, height=height, margin=dict(l=0, r=0, t=40 if title else 10, b=0),
        scene=dict(aspectmode="data", xaxis_title="x", yaxis_title="y", zaxis_title="z"),
    )
    return fig


def volume_slices(volume, labels=None, axis=0, title=None, colorscale="Viridis", height=460):
    """Browse a 3D field or label volume slice by slice with a plotly slider.

    Parameters
    ----------
    volume : (P, M, N) array
        Field (float) or label volume (int; shown with instance colours).
    labels : (P, M, N) array of int, optional
        When given with a field, cell borders are drawn as a contour overlay.
    axis : int
        Axis to slice along.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    vol = np.asarray(volume)
    is_labels = np.issubdtype(vol.dtype, np.integer)
    vol = validate_labels(vol, "volume", ndims=(3,)) if is_labels else validate_field(vol, "volume", ndims=(3,))
    axis = validate_number(axis, "axis", low=0, high=2, integer=True)
    if labels is not None:
        labels = validate_labels(labels, ndims=(3,))
        validate_same_shape(vol, labels, "volume", "labels")
    frames = [np.take(vol, k, axis=axis) for k in range(vol.shape[axis])]
    if is_labels:
        frames = [label_rgb(f) for f in frames]
        return frames_slider(frames, title=title, slider_label=f"slice (axis {axis})", height=height)
    contours = None
    if labels is not None:
        from skimage.segmentation import find_boundaries
        contours = [find_boundaries(np.take(labels, k, axis=axis)) for k in range(vol.shape[axis])]
    return frames_slider(frames, title=title, slider_label=f"slice (axis {axis})", colorscale=colorscale,
                         zmin=float(vol.min()), zmax=float(vol.max()), overlays=contours, height=height)


def frames_slider(frames, values=None, title=None, slider_label="frame", colorscale="Viridis",
                  zmin=None, zmax=None, overlays=None, points=None, height=460):
    """A plotly figure that steps through precomputed 2D frames with a slider.

    Works in the static HTML book (no kernel needed): every frame is stored in
    the figure.

    Parameters
    ----------
    frames : list of (M, N) arrays or (M, N, 3) uint8 RGB images
        The frames, all of the same shape.
    values : list, optional
        Slider tick labels (default 0..len-1).
    overlays : list of (M, N) bool arrays, optional
        Pixels drawn in white on top of each frame (e.g. cell borders).
    points : list of (K, 2) arrays, optional
        Scatter points (row, col) per frame, e.g. pixel positions during
        flow integration.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if len(frames) == 0:
        raise ValueError("frames must contain at least one frame")
    frames = [np.asarray(f) for f in frames]
    if len({f.shape for f in frames}) != 1:
        raise ValueError("all frames must have the same shape")
    values = list(range(len(frames))) if values is None else list(values)
    if len(values) != len(frames):
        raise ValueError(f"values must have one entry per frame ({len(frames)}), got {len(values)}")
    for name, extra in (("overlays", overlays), ("points", points)):
        if extra is not None and len(extra) != len(frames):
            raise ValueError(f"{name} must have one entry per frame ({len(frames)}), got {len(extra)}")
    rgb = frames[0].ndim == 3
    if zmin is None and not rgb:
        zmin = float(min(f.min() for f in frames))
    if zmax is None and not rgb:
        zmax = float(max(f.max() for f in frames))

    def traces(k):
        f = frames[k]
        if rgb:
            data = [go.Image(z=f)]
        else:
            data = [go.Heatmap(z=f, colorscale=colorscale, zmin=zmin, zmax=zmax, showscale=True)]
        if overlays is not None:
            ys, xs = np.nonzero(overlays[k])
            data.append(go.Scattergl(x=xs, y=ys, mode="markers", marker=dict(size=2, color="white"),
                                     hoverinfo="skip", showlegend=False))
        if points is not None:
            p = np.asarray(points[k])
            data.append(go.Scattergl(x=p[:, 1], y=p[:, 0], mode="markers",
                                     marker=dict(size=3, color="red"), hoverinfo="skip", showlegend=False))
        return data

    fig = go.Figure(data=traces(0), frames=[go.Frame(data=traces(k), name=str(k)) for k in range(len(frames))])
    steps = [dict(method="animate", label=str(v),
                  args=[[str(k)], dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))])
             for k, v in enumerate(values)]
    fig.update_layout(
        title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix=f"{slider_label}: "), pad=dict(t=30))],
        yaxis=dict(autorange="reversed", scaleanchor="x"), xaxis=dict(constrain="domain"),
    )
    return fig


def show_panels(images, ncols=None, cmap="viridis", size=3.2, titles=None, colorbar=False):
    """Matplotlib grid of images; label images (int) are shown with instance colours.

    Parameters
    ----------
    images : dict of str -> array or list of arrays
        2D arrays (a 3D array shows its middle slice).
    ncols : int, optional
        Columns of the grid (default: all in one row, at most 4).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if isinstance(images, dict):
        titles, arrays = list(images), list(images.values())
    else:
        arrays = list(images)
        titles = titles or [""] * len(arrays)
    if not arrays:
        raise ValueError("images must contain at least one image")
    ncols = ncols or min(len(arrays), 4)
    nrows = int(np.ceil(len(arrays) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax, title, a in zip(axes.ravel(), titles, arrays):
        a = np.asarray(a)
        if a.ndim == 3 and a.shape[-1] != 3:
            a = a[a.shape[0] // 2]
        if np.issubdtype(a.dtype, np.integer) and a.ndim == 2:
            ax.imshow(label_rgb(a), interpolation="nearest")
        else:
            im = ax.imshow(a, cmap=cmap, interpolation="nearest")
            if colorbar:
                fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title(title)
        ax.set_axis_off()
    for ax in axes.ravel()[len(arrays):]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def overlay(image, labels, ax=None, alpha=0.35, boundaries=True, title=None):
    """Draw instance colours (and borders) over a grayscale image with matplotlib.

    Parameters
    ----------
    image : (M, N) array
        Grayscale image.
    labels : (M, N) array of int
        Instances.
    ax : matplotlib Axes, optional
        Where to draw (a new figure otherwise).
    alpha : float
        Opacity of the instance colours.
    boundaries : bool
        Draw cell borders in white.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    image = validate_field(image, "image", ndims=(2,))
    labels = validate_labels(labels, ndims=(2,))
    validate_same_shape(image, labels, "image", "labels")
    alpha = validate_number(alpha, "alpha", low=0, high=1)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    lo, hi = np.percentile(image, [1, 99.5])
    gray = np.clip((image - lo) / max(hi - lo, 1e-12), 0, 1)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    colour = label_rgb(labels) / 255.0
    fg = labels > 0
    rgb[fg] = (1 - alpha) * rgb[fg] + alpha * colour[fg]
    if boundaries:
        rgb[find_boundaries(labels, mode="inner")] = 1.0
    ax.imshow(rgb, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def _format_cell(value, floatfmt):
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "—" if not np.isfinite(value) else format(float(value), floatfmt)
    return str(value).replace("|", "\\|")


def table(header, rows, floatfmt=".3f"):
    """A table of results as Markdown, rendered as a real table in Jupyter and the book.

    Parameters
    ----------
    header : sequence of str
        Column names.
    rows : sequence of sequences
        One sequence per row, as long as ``header``. Floats are formatted with
        ``floatfmt`` (non-finite ones as a dash), booleans as yes/no, anything
        else with ``str``.
    floatfmt : str
        Format specification for floats.

    Returns
    -------
    IPython.display.Markdown
        Displayed as a table when it is a cell's result; ``.data`` holds the text.

    Examples
    --------
    >>> print(table(["scene", "AP50"], [["ex1", 1.0], ["ex5", 0.8341]]).data)
    | scene | AP50 |
    |---|---|
    | ex1 | 1.000 |
    | ex5 | 0.834 |
    """
    from IPython.display import Markdown

    header = [str(h) for h in header]
    if not header:
        raise ValueError("header must name at least one column")
    rows = [list(r) for r in rows]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] has {len(row)} values, expected {len(header)} (one per header column)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_format_cell(v, floatfmt) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def line_profile(field, start, stop, n=200):
    """Field values along the straight segment ``start -> stop`` (linear interpolation).

    Parameters
    ----------
    field : (M, N) or (P, M, N) array of float
        The field to sample.
    start, stop : sequence of float
        End points in array (row, column[, ...]) coordinates, one per axis of ``field``.
    n : int
        Number of samples (>= 2), including both end points.

    Returns
    -------
    distance : ndarray of float64, shape (n,)
        Distance of each sample from ``start`` (px), 0 to ``|stop - start|``.
    values : ndarray of float64, shape (n,)
        Bilinearly (trilinearly) interpolated field values; points outside the
        array take the value of the nearest edge pixel.

    Examples
    --------
    >>> import numpy as np
    >>> rows, cols = np.mgrid[:5, :5]
    >>> d, v = line_profile(2.0 * rows + cols, (0, 0), (3, 4), n=3)
    >>> d.tolist(), v.round(6).tolist()
    ([0.0, 2.5, 5.0], [0.0, 5.0, 10.0])
    """
    from scipy import ndimage

    field = validate_field(field, "field")
    start = np.asarray(start, dtype=np.float64)
    stop = np.asarray(stop, dtype=np.float64)
    for name, point in (("start", start), ("stop", stop)):
        if point.shape != (field.ndim,) or not np.all(np.isfinite(point)):
            raise ValueError(f"{name} must hold {field.ndim} finite coordinates, got {point.tolist()}")
    n = validate_number(n, "n", low=2, integer=True)
    t = np.linspace(0.0, 1.0, n)
    points = np.outer(1.0 - t, start) + np.outer(t, stop)
    values = ndimage.map_coordinates(field.astype(np.float64), points.T, order=1, mode="nearest")
    return t * float(np.linalg.norm(stop - start)), values


__all__ += ["line_profile"]


def field_surface_menu(fields, labels=None, max_size=100, height=460):
    """Several 2D fields of one scene as one full-width 3D view, switched with buttons.

    The alternative to :func:`field_surfaces` when the page is narrow: side by
    side, three 3D scenes get a third of the width each; here every field gets
    the whole view and the same camera, and buttons above it choose the field.

    Parameters
    ----------
    fields : dict of str -> (M, N) array
        Button labels and fields, all of the same shape; the first is shown first.
    labels : (M, N) array of int, optional
        Instances for per-instance colouring.
    max_size, height : int
        As in :func:`field_surface`.

    Returns
    -------
    plotly.graph_objects.Figure
        One surface trace per field (only the first visible) and one button each.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((12, 12), int); lab[3:9, 3:9] = 1
    >>> fig = field_surface_menu({"a": lab * 1.0, "b": lab * 0.5}, lab)
    >>> [t.visible for t in fig.data], [b.label for b in fig.layout.updatemenus[0].buttons]
    ([True, False], ['a', 'b'])
    """
    arrays, labels = _validate_field_dict(fields, labels)
    max_size = validate_number(max_size, "max_size", low=2, integer=True)
    height = validate_number(height, "height", low=100, integer=True)
    names = list(arrays)
    fig = go.Figure()
    for i, (name, a) in enumerate(arrays.items()):
        trace = _surface_trace(a, labels, max_size, labels is None, "Viridis")
        trace.update(name=name, visible=i == 0)
        fig.add_trace(trace)
    buttons = [dict(label=name, method="update",
                    args=[{"visible": [j == i for j in range(len(names))]}, {"title.text": name}])
               for i, name in enumerate(names)]
    zmax = max(1.05, max(float(a.max()) for a in arrays.values()) * 1.05)
    fig.update_layout(
        title=dict(text=names[0], x=0.5, y=0.97), height=height, margin=dict(l=0, r=0, t=40, b=0),
        # closer than _scene_layout's camera: the surface fills the full-width view
        scene=dict(_scene_layout(zmax), camera=dict(eye=dict(x=0.95, y=-1.1, z=0.75), center=dict(x=0, y=0, z=-0.1))),
        updatemenus=[dict(type="buttons", direction="right", buttons=buttons, showactive=True,
                          x=0.0, xanchor="left", y=1.0, yanchor="top", pad=dict(l=4, t=4))],
        modebar=dict(orientation="v"),   # the toolbar down the right edge, not over the title
    )
    return fig


__all__ += ["field_surface_menu"]
